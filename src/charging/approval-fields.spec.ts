import { APPROVAL_FIELDS, applyApproval } from '../payments/new-payment';
import { PaymentEntity } from '../payments/payment.entity';
import { applyChargeSuccess, CHARGE_SUCCESS_FIELDS } from '../subscriptions/subscription-state';
import { SubscriptionEntity } from '../subscriptions/subscription.entity';

/**
 * The charge run records an approval by writing the fields these lists name, from memory, in one statement; the
 * general settle saves whatever the state functions changed. The lists must name exactly what the functions set, or
 * the two ways of settling would leave different rows.
 */
describe('the fields an approval writes', () => {
  /** Every field of an entity set to a value no state function would set. */
  function filled<E extends object>(entity: E, fields: string[]): E {
    for (const f of fields) (entity as Record<string, unknown>)[f] = f.endsWith('At') || f.startsWith('current') || f === 'trialEnd' ? new Date(1000) : f === 'metadata' ? {} : 'sentinel';
    return entity;
  }
  const changed = (before: Record<string, unknown>, after: Record<string, unknown>) =>
    Object.keys(after)
      .filter((k) => {
        const [a, b] = [before[k], after[k]];
        return a instanceof Date && b instanceof Date ? a.getTime() !== b.getTime() : a !== b;
      })
      .sort();

  it('should list exactly the subscription fields applyChargeSuccess sets', () => {
    const fields = [
      'id', 'customerId', 'planId', 'billingKeyId', 'status', 'anchorAt', 'periodIndex', 'currentPeriodStart', 'currentPeriodEnd', 'trialEnd',
      'nextChargeAt', 'cancelAtPeriodEnd', 'cancelReason', 'canceledAt', 'endedAt', 'pausedAt', 'pauseReason', 'resumeAt', 'pendingPlanId',
      'dunningAttempts', 'nextRetryAt', 'pastDueSince', 'lastFailureCode', 'lastFailureMessage', 'lockedBy', 'lockedUntil', 'metadata',
      'eventSeq', 'createdAt', 'updatedAt',
    ];
    const sub = filled(new SubscriptionEntity(), fields);
    const before = { ...sub } as Record<string, unknown>;
    applyChargeSuccess(sub, { index: 7, start: new Date(2000), end: new Date(3000) }, new Date(4000));
    expect(changed(before, { ...sub })).toEqual([...CHARGE_SUCCESS_FIELDS].sort());
  });

  it('should list exactly the payment fields applyApproval sets', () => {
    const fields = [
      'id', 'subscriptionId', 'customerId', 'billingKeyId', 'kind', 'orderId', 'orderName', 'receiptId', 'reserveId', 'reserveExecuteAt', 'amount',
      'taxFreeAmount', 'vat', 'balanceAmount', 'refundedTaxFree', 'status', 'attempt', 'periodIndex', 'periodStart', 'periodEnd', 'planId',
      'failureCode', 'failurePgCode', 'failureMessage', 'failureHard', 'chargeRunId', 'requestedAt', 'approvedAt', 'canceledAt', 'cardCompany',
      'cardNoMasked', 'receiptUrl', 'createdAt', 'updatedAt',
    ];
    const payment = filled(new PaymentEntity(), fields);
    const before = { ...payment } as Record<string, unknown>;
    const receipt = { receiptId: 'r1', purchasedAt: new Date(5000), cardCompany: 'KB', cardNoMasked: '1234****', receiptUrl: 'https://receipt' };
    applyApproval(payment, receipt as never, new Date(4000));
    expect(changed(before, { ...payment })).toEqual([...APPROVAL_FIELDS].sort());
  });
});
