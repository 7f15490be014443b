import { APPROVAL_FIELDS, applyApproval } from './new-payment';
import { PaymentEntity } from '../payments/payment.entity';
import { CHARGE_SUCCESS_FIELDS, periodAt, transition } from './transitions';
import { SubscriptionEntity } from './subscription.entity';

/**
 * The charge run records an approval by writing the fields these lists name, from memory, in one statement; the
 * general settle saves whatever the state functions changed. The lists must name exactly what the functions set, or
 * the two ways of settling would leave different rows.
 */
describe('the fields an approval writes', () => {
  /** Every field of an entity set to a value no state function would set. */
  function filled<E extends object>(entity: E, fields: string[]): E {
    for (const f of fields)
      (entity as Record<string, unknown>)[f] =
        f.endsWith('At') || f.startsWith('current') || f === 'trialEnd' ? new Date(1000) : f === 'metadata' ? {} : 'sentinel';
    return entity;
  }
  const changed = (before: Record<string, unknown>, after: Record<string, unknown>) =>
    Object.keys(after)
      .filter((k) => {
        const [a, b] = [before[k], after[k]];
        return a instanceof Date && b instanceof Date ? a.getTime() !== b.getTime() : a !== b;
      })
      .sort();

  it('should list exactly the subscription fields an approval sets (a re-anchoring one sets them all)', () => {
    const fields = [
      'id',
      'customerId',
      'planId',
      'billingKeyId',
      'status',
      'anchorAt',
      'periodIndex',
      'currentPeriodStart',
      'currentPeriodEnd',
      'trialEnd',
      'nextChargeAt',
      'cancelAtPeriodEnd',
      'cancelReason',
      'canceledAt',
      'endedAt',
      'pausedAt',
      'pauseReason',
      'resumeAt',
      'pendingPlanId',
      'dunningAttempts',
      'nextRetryAt',
      'pastDueSince',
      'lastFailureCode',
      'lastFailureMessage',
      'lockedBy',
      'lockedUntil',
      'metadata',
      'eventSeq',
      'createdAt',
      'updatedAt',
    ];
    const plan = { interval: 'month' as const, intervalCount: 1 };
    const now = new Date('2026-06-01T00:00:00Z');
    for (const reanchor of [true, false]) {
      const sub = filled(new SubscriptionEntity(), fields);
      // Not set to cancel at its period's end: an approval after that end is refused (see transitions.ts).
      Object.assign(sub, {
        status: 'unpaid',
        planId: 'plan',
        anchorAt: new Date('2026-01-01T00:00:00Z'),
        periodIndex: 2,
        creditBalance: 500,
        cancelAtPeriodEnd: false,
      });
      const before = { ...sub } as Record<string, unknown>;
      const period = reanchor ? periodAt(now, plan, 0, 'Asia/Seoul') : periodAt(sub.anchorAt, plan, 3, 'Asia/Seoul');
      const charge = {
        id: 'p',
        kind: 'period' as const,
        planId: 'plan',
        periodIndex: period.index,
        periodStart: period.start,
        periodEnd: period.end,
        creditApplied: reanchor ? 100 : 0,
      };
      const t = transition(
        sub,
        { type: 'charge_approved', charge },
        {
          now,
          tz: 'Asia/Seoul',
          plan,
          dunning: { retryDays: [1], finalAction: 'cancel' },
        },
      );
      expect(t.ok).toBe(true);
      const set = changed(before, { ...(t as { sub: SubscriptionEntity }).sub });
      if (reanchor) expect(set).toEqual([...CHARGE_SUCCESS_FIELDS].sort());
      else expect(CHARGE_SUCCESS_FIELDS).toEqual(expect.arrayContaining(set));
    }
  });

  it('should list exactly the payment fields applyApproval sets', () => {
    const fields = [
      'id',
      'subscriptionId',
      'customerId',
      'billingKeyId',
      'kind',
      'orderId',
      'orderName',
      'receiptId',
      'reserveId',
      'reserveExecuteAt',
      'amount',
      'taxFreeAmount',
      'vat',
      'balanceAmount',
      'refundedTaxFree',
      'status',
      'attempt',
      'periodIndex',
      'periodStart',
      'periodEnd',
      'planId',
      'failureCode',
      'failurePgCode',
      'failureMessage',
      'failureHard',
      'chargeRunId',
      'requestedAt',
      'approvedAt',
      'canceledAt',
      'cardCompany',
      'cardNoMasked',
      'receiptUrl',
      'createdAt',
      'updatedAt',
    ];
    const payment = filled(new PaymentEntity(), fields);
    const before = { ...payment } as Record<string, unknown>;
    const receipt = { receiptId: 'r1', purchasedAt: new Date(5000), cardCompany: 'KB', cardNoMasked: '1234****', receiptUrl: 'https://receipt' };
    applyApproval(payment, receipt as never, new Date(4000));
    expect(changed(before, { ...payment })).toEqual([...APPROVAL_FIELDS].sort());
  });
});
