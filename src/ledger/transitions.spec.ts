import { SubscriptionEntity, SubscriptionStatus } from './subscription.entity';
import { chargePeriod, dueBefore, nextPeriod, periodAt, SUBSCRIPTION_STATUSES, SubscriptionEvent, transition, TransitionContext } from './transitions';

const TZ = 'Asia/Seoul';
const PLAN = { interval: 'month' as const, intervalCount: 1 };
const ANCHOR = new Date('2026-01-10T01:00:00Z');
const NOW = new Date('2026-02-20T01:00:00Z'); // inside period 1 (Feb 10 .. Mar 10)
const ctx: TransitionContext = { now: NOW, tz: TZ, plan: PLAN, dunning: { retryDays: [1, 3], finalAction: 'cancel' } };

/** A subscription in `status`, as the service would hold it: paid through period 1 unless it never started. */
function sub(status: SubscriptionStatus, extra: Partial<SubscriptionEntity> = {}): SubscriptionEntity {
  const started = status !== 'incomplete' && status !== 'trialing';
  const p1 = periodAt(ANCHOR, PLAN, 1, TZ);
  return Object.assign(new SubscriptionEntity(), {
    id: 'sub',
    customerId: 'cus',
    planId: 'plan-a',
    billingKeyId: 'key-a',
    status,
    anchorAt: ANCHOR,
    periodIndex: started ? 1 : -1,
    currentPeriodStart: started ? p1.start : status === 'trialing' ? new Date('2026-01-01T01:00:00Z') : null,
    currentPeriodEnd: started ? p1.end : status === 'trialing' ? ANCHOR : null,
    trialEnd: status === 'trialing' ? ANCHOR : null,
    nextChargeAt: status === 'canceled' || status === 'paused' || status === 'unpaid' ? null : started ? p1.end : ANCHOR,
    cancelAtPeriodEnd: false,
    cancelReason: null,
    canceledAt: null,
    endedAt: null,
    pausedAt: status === 'paused' ? NOW : null,
    pauseReason: null,
    resumeAt: null,
    pendingPlanId: null,
    dunningAttempts: status === 'past_due' ? 1 : 0,
    nextRetryAt: null,
    pastDueSince: status === 'past_due' || status === 'unpaid' ? NOW : null,
    lastFailureCode: null,
    lastFailureMessage: null,
    lockedBy: null,
    lockedUntil: null,
    metadata: {},
    creditBalance: 0,
    eventSeq: 3,
    createdAt: new Date('2026-01-01T01:00:00Z'),
    updatedAt: new Date('2026-01-01T01:00:00Z'),
    ...extra,
  });
}

/** The charge the subscription waits for (its next period on its plan), as a payment would carry it. */
function dueCharge(s: SubscriptionEntity) {
  const p = nextPeriod(s, PLAN, TZ);
  return { id: 'pay', kind: 'period' as const, planId: s.planId, periodIndex: p.index, periodStart: p.start, periodEnd: p.end };
}

type Row = Record<SubscriptionStatus, string>;
const events: Record<string, { event: (s: SubscriptionEntity) => SubscriptionEvent; expected: Row }> = {
  'charge approved (the period it waits for)': {
    event: (s) => ({ type: 'charge_approved', charge: dueCharge(s) }),
    expected: {
      incomplete: 'active',
      trialing: 'active',
      active: 'active',
      past_due: 'active',
      unpaid: 'active',
      paused: 'refused:charge_after_paused',
      canceled: 'refused:charge_after_canceled',
    },
  },
  'charge approved (an old period)': {
    // The period before the one it waits for (for one that never started: a period of an anchor since replaced).
    event: (s) => {
      const due = dueCharge(s);
      return {
        type: 'charge_approved',
        charge: {
          ...due,
          periodIndex: Math.max(0, due.periodIndex - 1),
          periodStart: new Date(due.periodStart.getTime() - 31 * 86_400_000),
          periodEnd: due.periodStart,
        },
      };
    },
    expected: {
      incomplete: 'refused:period_already_paid',
      trialing: 'refused:period_already_paid',
      active: 'refused:period_already_paid',
      past_due: 'refused:period_already_paid',
      unpaid: 'refused:period_already_paid',
      paused: 'refused:charge_after_paused',
      canceled: 'refused:charge_after_canceled',
    },
  },
  'charge approved (a plan it left)': {
    event: (s) => ({ type: 'charge_approved', charge: { ...dueCharge(s), planId: 'plan-old' } }),
    expected: {
      incomplete: 'refused:plan_changed',
      trialing: 'refused:plan_changed',
      active: 'refused:plan_changed',
      past_due: 'refused:plan_changed',
      unpaid: 'refused:plan_changed',
      paused: 'refused:charge_after_paused',
      canceled: 'refused:charge_after_canceled',
    },
  },
  'charge declined (soft)': {
    event: (s) => ({ type: 'charge_declined', charge: dueCharge(s), failure: { code: 'F051', message: 'insufficient funds', hard: false } }),
    expected: {
      incomplete: 'canceled',
      trialing: 'past_due',
      active: 'past_due',
      past_due: 'past_due',
      unpaid: 'past_due',
      paused: 'paused',
      canceled: 'canceled',
    },
  },
  'charge declined (hard)': {
    event: (s) => ({ type: 'charge_declined', charge: dueCharge(s), failure: { code: 'F043', message: 'stolen', hard: true } }),
    expected: {
      incomplete: 'canceled',
      trialing: 'canceled',
      active: 'canceled',
      past_due: 'canceled',
      unpaid: 'canceled',
      paused: 'paused',
      canceled: 'canceled',
    },
  },
  'cancel now': {
    event: () => ({ type: 'cancel_now', reason: 'bye' }),
    expected: {
      incomplete: 'canceled',
      trialing: 'canceled',
      active: 'canceled',
      past_due: 'canceled',
      unpaid: 'canceled',
      paused: 'canceled',
      canceled: 'refused:invalid_transition',
    },
  },
  'cancel at period end': {
    event: () => ({ type: 'cancel_at_period_end', reason: 'bye' }),
    expected: {
      incomplete: 'refused:invalid_transition',
      trialing: 'trialing',
      active: 'active',
      past_due: 'refused:invalid_transition',
      unpaid: 'refused:invalid_transition',
      paused: 'refused:invalid_transition',
      canceled: 'refused:invalid_transition',
    },
  },
  'reactivate (nothing scheduled)': {
    event: () => ({ type: 'reactivate' }),
    expected: {
      incomplete: 'refused:invalid_transition',
      trialing: 'refused:nothing_to_reactivate',
      active: 'refused:nothing_to_reactivate',
      past_due: 'refused:invalid_transition',
      unpaid: 'refused:invalid_transition',
      paused: 'refused:invalid_transition',
      canceled: 'refused:invalid_transition',
    },
  },
  pause: {
    event: () => ({ type: 'pause', reason: 'travel', resumeAt: null }),
    expected: {
      incomplete: 'refused:invalid_transition',
      trialing: 'paused',
      active: 'paused',
      past_due: 'paused',
      unpaid: 'refused:invalid_transition',
      paused: 'refused:invalid_transition',
      canceled: 'refused:invalid_transition',
    },
  },
  resume: {
    event: () => ({ type: 'resume' }),
    expected: {
      incomplete: 'refused:invalid_transition',
      trialing: 'refused:invalid_transition',
      active: 'refused:invalid_transition',
      past_due: 'refused:invalid_transition',
      unpaid: 'refused:invalid_transition',
      paused: 'active',
      canceled: 'refused:invalid_transition',
    },
  },
  'change plan now': {
    event: () => ({ type: 'change_plan', planId: 'plan-b' }),
    expected: {
      incomplete: 'refused:invalid_transition',
      trialing: 'trialing',
      active: 'active',
      past_due: 'refused:invalid_transition',
      unpaid: 'refused:invalid_transition',
      paused: 'refused:invalid_transition',
      canceled: 'refused:invalid_transition',
    },
  },
  'change plan at period end': {
    event: () => ({ type: 'change_plan_at_period_end', planId: 'plan-b' }),
    expected: {
      incomplete: 'refused:invalid_transition',
      trialing: 'trialing',
      active: 'active',
      past_due: 'refused:invalid_transition',
      unpaid: 'refused:invalid_transition',
      paused: 'refused:invalid_transition',
      canceled: 'refused:invalid_transition',
    },
  },
  'swap billing key': {
    event: () => ({ type: 'swap_billing_key', billingKeyId: 'key-b' }),
    expected: {
      incomplete: 'incomplete',
      trialing: 'trialing',
      active: 'active',
      past_due: 'past_due',
      unpaid: 'unpaid',
      paused: 'paused',
      canceled: 'refused:invalid_transition',
    },
  },
  retry: {
    event: () => ({ type: 'retry' }),
    expected: {
      incomplete: 'refused:invalid_transition',
      trialing: 'refused:invalid_transition',
      active: 'refused:invalid_transition',
      past_due: 'past_due',
      unpaid: 'unpaid',
      paused: 'refused:invalid_transition',
      canceled: 'refused:invalid_transition',
    },
  },
  'consent missing, cancel (trial end or price increase)': {
    event: () => ({ type: 'consent_missing', kind: 'trial_conversion', action: 'cancel' }),
    expected: {
      incomplete: 'refused:invalid_transition',
      trialing: 'canceled',
      active: 'canceled',
      past_due: 'refused:invalid_transition',
      unpaid: 'refused:invalid_transition',
      paused: 'refused:invalid_transition',
      canceled: 'refused:invalid_transition',
    },
  },
  'consent missing, pause': {
    event: () => ({ type: 'consent_missing', kind: 'price_increase', action: 'pause', changeId: 'mig' }),
    expected: {
      incomplete: 'refused:invalid_transition',
      trialing: 'paused',
      active: 'paused',
      past_due: 'refused:invalid_transition',
      unpaid: 'refused:invalid_transition',
      paused: 'refused:invalid_transition',
      canceled: 'refused:invalid_transition',
    },
  },
  'plan migration at renewal': {
    event: () => ({ type: 'migrate_plan', planId: 'plan-b', migrationId: 'mig', consentId: 'con' }),
    expected: {
      incomplete: 'refused:invalid_transition',
      trialing: 'refused:invalid_transition',
      active: 'active',
      past_due: 'refused:invalid_transition',
      unpaid: 'refused:invalid_transition',
      paused: 'refused:invalid_transition',
      canceled: 'refused:invalid_transition',
    },
  },
  'credit refunded (more than the balance)': {
    event: () => ({ type: 'credit_refunded', amount: 1 }),
    expected: {
      incomplete: 'refused:credit_exceeded',
      trialing: 'refused:credit_exceeded',
      active: 'refused:credit_exceeded',
      past_due: 'refused:credit_exceeded',
      unpaid: 'refused:credit_exceeded',
      paused: 'refused:credit_exceeded',
      canceled: 'refused:credit_exceeded',
    },
  },
  'period end (nothing scheduled)': {
    event: () => ({ type: 'period_end' }),
    expected: {
      incomplete: 'refused:invalid_transition',
      trialing: 'trialing',
      active: 'active',
      past_due: 'refused:invalid_transition',
      unpaid: 'refused:invalid_transition',
      paused: 'refused:invalid_transition',
      canceled: 'refused:invalid_transition',
    },
  },
};

describe('transition: the whole table, status × event', () => {
  const cases = Object.entries(events).flatMap(([name, e]) => SUBSCRIPTION_STATUSES.map((status) => [name, status, e.expected[status]] as const));

  it('covers every status for every event', () => {
    for (const e of Object.values(events)) expect(Object.keys(e.expected).sort()).toEqual([...SUBSCRIPTION_STATUSES].sort());
  });

  it.each(cases)('%s from %s → %s', (name, status, expected) => {
    const before = sub(status);
    const frozen = JSON.stringify(before);
    const t = transition(before, events[name].event(before), ctx);
    expect(t.ok ? t.sub.status : `refused:${t.code}`).toBe(expected);
    // Pure: the subscription it was given is never changed.
    expect(JSON.stringify(before)).toBe(frozen);
    if (!t.ok) expect(t.message).toMatch(/\S/);
  });
});

describe('transition: what late and stale events meet', () => {
  it('an approval refused after a pause or cancel asks for a refund of that payment', () => {
    for (const status of ['paused', 'canceled'] as const) {
      const s = sub(status);
      const t = transition(s, { type: 'charge_approved', charge: dueCharge(s) }, ctx);
      expect(t.ok).toBe(false);
      expect(t.effects).toEqual([{ kind: 'refund_payment', paymentId: 'pay', reason: expect.any(String) }]);
    }
  });

  it('an approval for an old period after a re-anchor (resume after the period) is refunded, not applied', () => {
    const resumed = transition(sub('paused', { currentPeriodEnd: new Date('2026-02-01T00:00:00Z') }), { type: 'resume' }, ctx);
    expect(resumed.ok && resumed.sub.anchorAt).toEqual(NOW);
    const s = (resumed as { sub: SubscriptionEntity }).sub;
    const old = periodAt(ANCHOR, PLAN, 1, TZ);
    const t = transition(
      s,
      { type: 'charge_approved', charge: { id: 'old', kind: 'period', planId: 'plan-a', periodIndex: 1, periodStart: old.start, periodEnd: old.end } },
      ctx,
    );
    expect(!t.ok && t.code).toBe('period_already_paid');
  });

  it('an approval for the period after a scheduled cancel (a reservation Bootpay executed anyway) is refunded, not applied', () => {
    const s = sub('active');
    const scheduled = transition(s, { type: 'cancel_at_period_end', reason: 'leaving' }, ctx);
    expect(scheduled.ok).toBe(true);
    const t = transition((scheduled as { sub: SubscriptionEntity }).sub, { type: 'charge_approved', charge: dueCharge(s) }, ctx);
    expect(!t.ok && t.code).toBe('canceled_at_period_end');
    expect(!t.ok && t.effects).toEqual([expect.objectContaining({ kind: 'refund_payment', paymentId: 'pay' })]);
    // Without the scheduled cancel the same approval renews.
    expect(transition(s, { type: 'charge_approved', charge: dueCharge(s) }, ctx).ok).toBe(true);
  });

  it('a reservation result after a plan change is refunded, not applied', () => {
    const s = sub('active');
    const changed = transition(s, { type: 'change_plan', planId: 'plan-b' }, ctx);
    const t = transition((changed as { sub: SubscriptionEntity }).sub, { type: 'charge_approved', charge: dueCharge(s) }, ctx);
    expect(!t.ok && t.code).toBe('plan_changed');
  });

  it('resume after the paid period ends a pending cancel at period end instead of charging', () => {
    const s = sub('paused', { cancelAtPeriodEnd: true, cancelReason: 'leaving', currentPeriodEnd: new Date('2026-02-15T00:00:00Z') });
    const t = transition(s, { type: 'resume' }, ctx);
    expect(t.ok && t.sub.status).toBe('canceled');
    expect(t.effects.map((e) => e.kind)).not.toContain('charge_now');
  });

  it('resume after the paid period applies a pending plan change and charges the new plan now', () => {
    const s = sub('paused', { pendingPlanId: 'plan-b', currentPeriodEnd: new Date('2026-02-15T00:00:00Z') });
    const t = transition(s, { type: 'resume' }, ctx);
    expect(t.ok && [t.sub.status, t.sub.planId, t.sub.pendingPlanId]).toEqual(['active', 'plan-b', null]);
    expect(t.effects.map((e) => e.kind)).toContain('charge_now');
  });

  it('resume inside the paid period goes on without a charge', () => {
    const t = transition(sub('paused'), { type: 'resume' }, ctx);
    expect(t.ok && t.sub.status).toBe('active');
    expect(t.effects.map((e) => e.kind)).not.toContain('charge_now');
  });

  it('a cancel at period end after the renewal was charged ahead rolls the period back and refunds the renewal', () => {
    const p1 = periodAt(ANCHOR, PLAN, 1, TZ);
    const p2 = periodAt(ANCHOR, PLAN, 2, TZ);
    const early = new Date(p2.start.getTime() - 6 * 3600_000); // the due day's 03:00 run charged period 2
    const s = sub('active', { periodIndex: 2, currentPeriodStart: p2.start, currentPeriodEnd: p2.end, nextChargeAt: p2.end });
    const t = transition(
      s,
      { type: 'cancel_at_period_end', reason: 'bye', renewalPaidAhead: { paymentId: 'renewal', previousPeriodStart: p1.start } },
      { ...ctx, now: early },
    );
    expect(t.ok && [t.sub.periodIndex, t.sub.currentPeriodStart, t.sub.currentPeriodEnd, t.sub.cancelAtPeriodEnd]).toEqual([1, p1.start, p2.start, true]);
    expect(t.effects).toContainEqual({ kind: 'refund_payment', paymentId: 'renewal', reason: expect.any(String) });
  });
});

describe('transition: consent before a paid conversion or a price increase', () => {
  it('a trial ending without consent ends when the trial did, charges nothing and retires the key', () => {
    const s = sub('trialing');
    const t = transition(s, { type: 'consent_missing', kind: 'trial_conversion', action: 'cancel' }, ctx);
    expect(t.ok && [t.sub.status, t.sub.endedAt, t.sub.nextChargeAt, t.sub.cancelReason]).toEqual([
      'canceled',
      ANCHOR,
      null,
      'no consent to the paid conversion',
    ]);
    expect(t.ok && t.events).toEqual([
      { type: 'subscription.canceled', reason: 'no consent to the paid conversion', data: { consent_missing: 'trial_conversion', change_id: null } },
    ]);
    expect(t.effects.map((e) => e.kind)).toEqual(['cancel_reservations', 'retire_billing_key']);
  });

  it('a price increase without consent pauses when the action is pause, with nothing left to charge', () => {
    const t = transition(sub('active'), { type: 'consent_missing', kind: 'price_increase', action: 'pause', changeId: 'mig' }, ctx);
    expect(t.ok && [t.sub.status, t.sub.nextChargeAt, t.sub.planId]).toEqual(['paused', null, 'plan-a']);
    expect(t.ok && t.events.map((e) => e.type)).toEqual(['subscription.paused']);
  });

  it('a migration switches the plan at the period end: the next charge is the new plan’s first period, from the old end', () => {
    const s = sub('active');
    const t = transition(s, { type: 'migrate_plan', planId: 'plan-b', migrationId: 'mig', consentId: 'con' }, ctx);
    expect(t.ok && [t.sub.planId, t.sub.anchorAt, t.sub.periodIndex, t.sub.nextChargeAt]).toEqual(['plan-b', s.currentPeriodEnd, -1, s.currentPeriodEnd]);
    expect(t.ok && t.events[0].data).toMatchObject({ migration_id: 'mig', consent_id: 'con', to_plan_id: 'plan-b' });
  });
});

describe('chargePeriod and dueBefore', () => {
  it('re-anchors a past_due or unpaid subscription whose outstanding period already ended', () => {
    const s = sub('unpaid', { periodIndex: 0 }); // owes period 1, which ended on Mar 10
    const later = new Date('2026-06-01T05:00:00Z');
    expect(chargePeriod(s, PLAN, later, TZ)).toEqual(periodAt(later, PLAN, 0, TZ));
    expect(chargePeriod(s, PLAN, NOW, TZ)).toEqual(periodAt(ANCHOR, PLAN, 1, TZ));
    // and the re-anchored approval makes it active with its paid period running
    const t = transition(
      s,
      { type: 'charge_approved', charge: { id: 'p', kind: 'period', planId: 'plan-a', ...toRef(periodAt(later, PLAN, 0, TZ)) } },
      { ...ctx, now: later },
    );
    expect(t.ok && t.sub.currentPeriodEnd!.getTime() > later.getTime()).toBe(true);
  });

  it('everything due on the run’s business date is due at its 03:00 run (Asia/Seoul)', () => {
    const run = new Date('2026-02-27T18:00:00Z'); // 2026-02-28 03:00 KST
    expect(dueBefore(run, TZ).toISOString()).toBe('2026-02-28T15:00:00.000Z'); // 2026-03-01 00:00 KST
    // a renewal at 10:00 KST that day is due; one at 00:00 the next day is not
    expect(new Date('2026-02-28T01:00:00Z') < dueBefore(run, TZ)).toBe(true);
    expect(new Date('2026-02-28T15:00:00Z') < dueBefore(run, TZ)).toBe(false);
  });
});

function toRef(p: { index: number; start: Date; end: Date }) {
  return { periodIndex: p.index, periodStart: p.start, periodEnd: p.end };
}

describe('transition: credit balance', () => {
  it('keeps a downgrade credit, takes what a charge used, and refunds no more than the balance', () => {
    const changed = transition(sub('active'), { type: 'change_plan', planId: 'plan-b', credit: 5000 }, ctx);
    expect(changed.ok && changed.sub.creditBalance).toBe(5000);
    const s = (changed as { sub: SubscriptionEntity }).sub;
    const paid = transition(s, { type: 'charge_approved', charge: { ...dueCharge(s), planId: 'plan-b', creditApplied: 3000 } }, ctx);
    expect(paid.ok && paid.sub.creditBalance).toBe(2000);
    const refunded = transition((paid as { sub: SubscriptionEntity }).sub, { type: 'credit_refunded', amount: 2000 }, ctx);
    expect(refunded.ok && refunded.sub.creditBalance).toBe(0);
    expect(transition((paid as { sub: SubscriptionEntity }).sub, { type: 'credit_refunded', amount: 2001 }, ctx)).toMatchObject({
      ok: false,
      code: 'credit_exceeded',
    });
  });
});
