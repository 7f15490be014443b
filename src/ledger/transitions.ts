import { addDays, BillingInterval, fromZonedParts, periodStart, zonedParts } from '../billing-math';
import { LIVE_STATUSES, SubscriptionEntity, SubscriptionStatus } from './subscription.entity';

export { LIVE_STATUSES };

/**
 * The one transition authority of a subscription: `transition(subscription, event, context)` answers the new state,
 * the audit events it makes and the effects that must follow, or a refusal naming the reason. Every writer asks it:
 * the charge run (claims, batch approvals), the settlement of a charge from any source (the run, the API, Bootpay's
 * webhook, a reservation lookup), and every action of the SaaS backend or the finance admin. It is pure: no database,
 * no clock, no gateway; the ledger applies its answer inside the transaction that holds the subscription's row lock.
 *
 * Periods: `period_index` is the last paid period (-1 before the first); the next charge is always for
 * period_index + 1, computed from `anchor_at` in the business time zone. A charge whose period no longer fits the
 * subscription (an old period, a period of a plan or anchor since replaced, a subscription paused or ended since) is
 * refused: when money moved for it, the ledger refunds it and flags it for finance; it is never applied blindly.
 */

export const SUBSCRIPTION_STATUSES: SubscriptionStatus[] = ['incomplete', 'trialing', 'active', 'past_due', 'paused', 'unpaid', 'canceled'];

/** The statuses each event may start from (the rest of the table is in {@link transition}). */
export const ALLOWED_FROM = {
  charge_approved: ['incomplete', 'trialing', 'active', 'past_due', 'unpaid'],
  charge_declined: ['incomplete', 'trialing', 'active', 'past_due', 'unpaid', 'paused', 'canceled'],
  cancel_now: ['incomplete', 'trialing', 'active', 'past_due', 'paused', 'unpaid'],
  cancel_at_period_end: ['trialing', 'active'],
  reactivate: ['trialing', 'active'],
  pause: ['trialing', 'active', 'past_due'],
  resume: ['paused'],
  change_plan: ['trialing', 'active'],
  change_plan_at_period_end: ['trialing', 'active'],
  credit_refunded: ['incomplete', 'trialing', 'active', 'past_due', 'paused', 'unpaid', 'canceled'],
  swap_billing_key: ['incomplete', 'trialing', 'active', 'past_due', 'paused', 'unpaid'],
  retry: ['past_due', 'unpaid'],
  period_end: ['trialing', 'active'],
  consent_missing: ['trialing', 'active'],
  migrate_plan: ['active'],
} as const satisfies Record<string, readonly SubscriptionStatus[]>;

export type TransitionAction = keyof typeof ALLOWED_FROM;

export interface PlanTerms {
  interval: BillingInterval;
  intervalCount: number;
}

export interface Period {
  index: number;
  start: Date;
  end: Date;
}

export function periodAt(anchor: Date, plan: PlanTerms, index: number, tz: string): Period {
  return {
    index,
    start: periodStart(anchor, plan.interval, plan.intervalCount, index, tz),
    end: periodStart(anchor, plan.interval, plan.intervalCount, index + 1, tz),
  };
}

/** The period the next charge pays for. */
export function nextPeriod(sub: Pick<SubscriptionEntity, 'anchorAt' | 'periodIndex'>, plan: PlanTerms, tz: string): Period {
  return periodAt(sub.anchorAt, plan, sub.periodIndex + 1, tz);
}

/**
 * The period a charge made now pays for. Normally the next period; but a past_due or unpaid subscription whose
 * outstanding period has already ended is re-anchored: the charge pays for a new period that starts now (index 0 of
 * a new anchor), so that a subscription is never made `active` with its paid period already over. The periods it
 * spent unpaid are not charged.
 */
export function chargePeriod(sub: Pick<SubscriptionEntity, 'anchorAt' | 'periodIndex' | 'status'>, plan: PlanTerms, now: Date, tz: string): Period {
  const next = nextPeriod(sub, plan, tz);
  if ((sub.status === 'past_due' || sub.status === 'unpaid') && next.end.getTime() <= now.getTime()) return periodAt(now, plan, 0, tz);
  return next;
}

/**
 * Due by business day: a charge (renewal, trial end, retry) due at any time of a business date is made by the first
 * run on that date, whatever the time of day of its anchor. The run charges what falls due before this instant: the
 * start of the business day after `at`, in the business time zone.
 */
export function dueBefore(at: Date, tz: string): Date {
  const p = zonedParts(at, tz);
  return addDays(fromZonedParts({ year: p.year, month: p.month, day: p.day }, tz), 1, tz);
}

/** The pause reason of a trial that ended without the consent its paid conversion needs (resumed only with one). */
export const CONSENT_PAUSE_REASON = 'no consent to the paid conversion';

/** A consent counts only when obtained within this many days before the change it covers (시행령 제20조의2). */
export const CONSENT_WINDOW_DAYS = 30;

export interface DunningPolicy {
  /** Days after the first failure at which retries happen, e.g. [1, 3, 5, 7]. */
  retryDays: number[];
  finalAction: 'cancel' | 'unpaid';
}

/**
 * What a decline does: `dunning` (renewals: past_due, retries, final action), `end` (the first charge of a new
 * subscription: it ends), `record` (manual retries and prorated charges: only the failure is noted).
 */
export type DeclinePolicy = 'dunning' | 'end' | 'record';

/** What a transition needs to know of a charge. */
export interface ChargeRef {
  id: string;
  kind: 'period' | 'proration';
  /** The subscription's credit the charge used (taken from its balance when the charge is applied). */
  creditApplied?: number;
  planId: string;
  periodIndex: number;
  periodStart: Date;
  periodEnd: Date;
}

export interface Failure {
  code: string;
  message: string;
  hard: boolean;
}

export type SubscriptionEvent =
  | { type: 'charge_approved'; charge: ChargeRef }
  | { type: 'charge_declined'; charge: ChargeRef; failure: Failure; policy?: DeclinePolicy }
  | { type: 'cancel_now'; reason: string | null }
  /** `renewalPaidAhead`: the renewal of the coming period was charged already (the due day's early run). */
  | { type: 'cancel_at_period_end'; reason: string; renewalPaidAhead?: { paymentId: string; previousPeriodStart: Date } }
  | { type: 'reactivate' }
  | { type: 'pause'; reason: string; resumeAt: Date | null }
  | { type: 'resume' }
  /**
   * A plan change that applies now without a charge (a prorated one applies with its approval: see charge_approved).
   * `reanchor`: plans of different intervals: a new period of the new plan starts then (paid: by the credit).
   */
  | { type: 'change_plan'; planId: string; reanchor?: { start: Date; end: Date; paid: boolean } | null; credit?: number }
  /** Finance refunded (part of) the subscription's credit balance. */
  | { type: 'credit_refunded'; amount: number }
  | { type: 'change_plan_at_period_end'; planId: string }
  | { type: 'swap_billing_key'; billingKeyId: string }
  | { type: 'retry' }
  /** The charge run reached a due subscription that is set to cancel at its period's end or has a pending plan. */
  | { type: 'period_end' }
  /**
   * The charge run reached a paid conversion (a trial's end) or a price increase (a plan migration) for which no valid
   * consent was recorded (전자상거래법 제13조 제6항): nothing is charged; the subscription ends at the end of the time it
   * had (`cancel`) or is paused (`pause`).
   */
  | { type: 'consent_missing'; kind: ConsentKind; action: 'cancel' | 'pause'; changeId?: string | null }
  /** The charge run reached the renewal at which a plan migration moves the subscription to its new plan. */
  | { type: 'migrate_plan'; planId: string; migrationId: string; consentId?: string | null };

export type ConsentKind = 'trial_conversion' | 'price_increase';

export type Effect =
  /** Cancel the subscription's outstanding Bootpay reservations (after commit). */
  | { kind: 'cancel_reservations' }
  /** Delete the billing key at Bootpay when no live subscription uses it any more. */
  | { kind: 'retire_billing_key' }
  /** Register reservations for the coming periods (reservation mode). */
  | { kind: 'top_up_reservations' }
  /** Charge the next period now (resume after the paid time ended). */
  | { kind: 'charge_now' }
  /** Money moved that the subscription does not owe: refund it in full and flag it for finance. */
  | { kind: 'refund_payment'; paymentId: string; reason: string };

export interface AuditEvent {
  type: string;
  reason?: string | null;
  data?: Record<string, unknown> | null;
}

export type Transition =
  | { ok: true; sub: SubscriptionEntity; events: AuditEvent[]; effects: Effect[] }
  | { ok: false; code: string; message: string; allowedFrom: readonly SubscriptionStatus[]; effects: Effect[] };

export interface TransitionContext {
  now: Date;
  tz: string;
  /** Terms of the subscription's current plan. */
  plan: PlanTerms;
  dunning: DunningPolicy;
}

const DAY_MS = 24 * 60 * 60 * 1000;

const VERBS: Record<TransitionAction, string> = {
  charge_approved: 'apply a charge to',
  charge_declined: 'apply a decline to',
  cancel_now: 'cancel',
  cancel_at_period_end: 'cancel at period end',
  reactivate: 'reactivate',
  pause: 'pause',
  resume: 'resume',
  change_plan: 'change the plan of',
  change_plan_at_period_end: 'change the plan of',
  credit_refunded: 'refund the credit of',
  swap_billing_key: 'change the billing key of',
  retry: 'retry',
  period_end: 'end the period of',
  consent_missing: 'end without consent',
  migrate_plan: 'migrate the plan of',
};

function refuse(sub: SubscriptionEntity, action: TransitionAction, code = 'invalid_transition', message?: string, effects: Effect[] = []): Transition {
  const allowedFrom = ALLOWED_FROM[action];
  return {
    ok: false,
    code,
    message: message ?? `Cannot ${VERBS[action]} a ${sub.status} subscription; allowed from: ${allowedFrom.join(', ')}`,
    allowedFrom,
    effects,
  };
}

function allowed(sub: SubscriptionEntity, action: TransitionAction): boolean {
  return (ALLOWED_FROM[action] as readonly SubscriptionStatus[]).includes(sub.status);
}

/**
 * The whole table: status × event → outcome. `sub` is not changed; the answer carries a new object.
 */
export function transition(current: SubscriptionEntity, event: SubscriptionEvent, ctx: TransitionContext): Transition {
  const sub = Object.assign(Object.create(Object.getPrototypeOf(current)) as SubscriptionEntity, current);
  const { now } = ctx;
  const ok = (events: AuditEvent[], effects: Effect[] = []): Transition => {
    sub.updatedAt = now;
    return { ok: true, sub, events, effects };
  };

  switch (event.type) {
    case 'charge_approved':
      return approve(sub, event.charge, ctx, ok);

    case 'charge_declined': {
      if (!allowed(sub, 'charge_declined')) return refuse(sub, 'charge_declined');
      // A decline changes nothing but the record of the failure when the subscription is no longer waiting for
      // this charge (paused, ended, or the charge was a prorated one or a manual retry).
      if (sub.status === 'paused' || sub.status === 'canceled' || event.charge.kind === 'proration' || event.policy === 'record') {
        if (sub.status === 'canceled') return ok([]);
        sub.lastFailureCode = event.failure.code.slice(0, 64);
        sub.lastFailureMessage = event.failure.message.slice(0, 500);
        return ok([]);
      }
      const policy = event.policy ?? (sub.status === 'incomplete' ? 'end' : 'dunning');
      if (policy === 'end') {
        applyCancelNow(sub, 'first payment failed', now);
        sub.lastFailureCode = event.failure.code.slice(0, 64);
        sub.lastFailureMessage = event.failure.message.slice(0, 500);
        return ok([{ type: 'subscription.canceled', reason: 'first payment failed' }], [{ kind: 'cancel_reservations' }]);
      }
      const wasPastDue = sub.status === 'past_due';
      const decision = applyChargeDecline(sub, event.failure, now, ctx.dunning);
      if (decision.action === 'retry') return ok(wasPastDue ? [] : [{ type: 'subscription.past_due' }]);
      if (decision.finalAction === 'cancel') {
        applyCancelNow(sub, event.failure.hard ? `hard decline: ${event.failure.code}` : 'dunning exhausted', now);
        return ok([{ type: 'subscription.canceled', reason: sub.cancelReason }], [{ kind: 'cancel_reservations' }, { kind: 'retire_billing_key' }]);
      }
      applyUnpaid(sub, now);
      return ok([{ type: 'subscription.unpaid' }], [{ kind: 'cancel_reservations' }]);
    }

    case 'cancel_now':
      if (!allowed(sub, 'cancel_now')) return refuse(sub, 'cancel_now');
      applyCancelNow(sub, event.reason, now);
      return ok([{ type: 'subscription.canceled', reason: event.reason }], [{ kind: 'cancel_reservations' }, { kind: 'retire_billing_key' }]);

    case 'cancel_at_period_end': {
      if (!allowed(sub, 'cancel_at_period_end')) return refuse(sub, 'cancel_at_period_end');
      if (sub.cancelAtPeriodEnd)
        return refuse(sub, 'cancel_at_period_end', 'cancel_already_scheduled', 'This subscription is already set to cancel at the end of its period');
      const effects: Effect[] = [{ kind: 'cancel_reservations' }];
      const data: Record<string, unknown> = {};
      const ahead = event.renewalPaidAhead;
      if (ahead && sub.currentPeriodStart && sub.currentPeriodStart.getTime() > now.getTime()) {
        // The due day's run charged the coming period before the old one ended: the customer cancelled in time, so
        // that renewal is refunded in full and the subscription ends when the old period ends.
        const end = sub.currentPeriodStart;
        sub.periodIndex = Math.max(-1, sub.periodIndex - 1);
        sub.currentPeriodEnd = end;
        sub.currentPeriodStart = ahead.previousPeriodStart;
        sub.nextChargeAt = end;
        effects.push({ kind: 'refund_payment', paymentId: ahead.paymentId, reason: 'renewal charged before a cancel at period end' });
        data.refunded_renewal_payment_id = ahead.paymentId;
      }
      sub.cancelAtPeriodEnd = true;
      sub.cancelReason = event.reason;
      sub.canceledAt = now;
      return ok([{ type: 'subscription.cancel_scheduled', reason: event.reason, data: Object.keys(data).length ? data : null }], effects);
    }

    case 'reactivate':
      if (!allowed(sub, 'reactivate')) return refuse(sub, 'reactivate');
      if (!sub.cancelAtPeriodEnd)
        return refuse(sub, 'reactivate', 'nothing_to_reactivate', 'Only a subscription set to cancel at the end of its period can be reactivated');
      sub.cancelAtPeriodEnd = false;
      sub.canceledAt = null;
      sub.cancelReason = null;
      return ok([{ type: 'subscription.reactivated' }], [{ kind: 'top_up_reservations' }]);

    case 'pause':
      if (!allowed(sub, 'pause')) return refuse(sub, 'pause');
      sub.status = 'paused';
      sub.pausedAt = now;
      sub.pauseReason = event.reason;
      sub.resumeAt = event.resumeAt;
      sub.nextChargeAt = null;
      sub.nextRetryAt = null;
      return ok([{ type: 'subscription.paused', reason: event.reason }], [{ kind: 'cancel_reservations' }]);

    case 'resume': {
      if (!allowed(sub, 'resume')) return refuse(sub, 'resume');
      Object.assign(sub, { pausedAt: null, pauseReason: null, resumeAt: null, dunningAttempts: 0, nextRetryAt: null, pastDueSince: null });
      const inPaidTime = sub.currentPeriodEnd !== null && now.getTime() < sub.currentPeriodEnd.getTime();
      if (inPaidTime) {
        const inTrial = sub.periodIndex === -1 && sub.trialEnd !== null && sub.trialEnd.getTime() === sub.currentPeriodEnd!.getTime();
        sub.status = inTrial ? 'trialing' : 'active';
        sub.nextChargeAt = sub.currentPeriodEnd;
        return ok([{ type: 'subscription.resumed' }], [{ kind: 'top_up_reservations' }]);
      }
      // The paid time ended while paused: a cancel at period end takes effect now, nothing is charged.
      if (sub.cancelAtPeriodEnd) {
        applyCancelNow(sub, sub.cancelReason, now);
        return ok(
          [{ type: 'subscription.resumed' }, { type: 'subscription.canceled', reason: sub.cancelReason, data: { at_period_end: true } }],
          [{ kind: 'cancel_reservations' }, { kind: 'retire_billing_key' }],
        );
      }
      // Otherwise a new period starts now, on the plan that was to apply from the period's end, and is charged now.
      const events: AuditEvent[] = [{ type: 'subscription.resumed' }];
      if (sub.pendingPlanId) {
        events.push({ type: 'subscription.plan_changed', data: { from_plan_id: sub.planId, to_plan_id: sub.pendingPlanId, proration: 'period_end' } });
        sub.planId = sub.pendingPlanId;
        sub.pendingPlanId = null;
      }
      Object.assign(sub, { status: 'active', anchorAt: now, periodIndex: -1, currentPeriodStart: null, currentPeriodEnd: null, nextChargeAt: now });
      return ok(events, [{ kind: 'charge_now' }]);
    }

    case 'change_plan': {
      if (!allowed(sub, 'change_plan')) return refuse(sub, 'change_plan');
      if (event.planId === sub.planId) return refuse(sub, 'change_plan', 'same_plan', 'The subscription is already on this plan');
      const from = sub.planId;
      if (sub.status === 'trialing') {
        // In a trial nothing was paid: the new plan simply applies from the trial's end.
        sub.planId = event.planId;
        sub.pendingPlanId = null;
      } else {
        applyPlanChangeNow(sub, event.planId, now, event.reanchor ?? null);
      }
      // A downgrade's credit is kept as a balance, applied to the next charges before the card.
      if (event.credit && event.credit > 0) sub.creditBalance = (sub.creditBalance ?? 0) + event.credit;
      return ok(
        [{ type: 'subscription.plan_changed', data: { from_plan_id: from, to_plan_id: event.planId, ...(event.credit ? { credit: event.credit } : {}) } }],
        [{ kind: 'cancel_reservations' }, { kind: 'top_up_reservations' }],
      );
    }

    case 'credit_refunded': {
      if (!(event.amount > 0) || event.amount > (sub.creditBalance ?? 0)) {
        return refuse(sub, 'credit_refunded', 'credit_exceeded', `The subscription's credit balance is ${sub.creditBalance ?? 0} won`);
      }
      sub.creditBalance -= event.amount;
      return ok([{ type: 'subscription.credit_refunded', data: { amount: event.amount } }]);
    }

    case 'change_plan_at_period_end':
      if (!allowed(sub, 'change_plan_at_period_end')) return refuse(sub, 'change_plan_at_period_end');
      if (event.planId === sub.planId) return refuse(sub, 'change_plan_at_period_end', 'same_plan', 'The subscription is already on this plan');
      sub.pendingPlanId = event.planId;
      return ok(
        [{ type: 'subscription.plan_change_scheduled', data: { from_plan_id: sub.planId, to_plan_id: event.planId } }],
        [{ kind: 'cancel_reservations' }],
      );

    case 'swap_billing_key':
      if (!allowed(sub, 'swap_billing_key')) return refuse(sub, 'swap_billing_key');
      if (event.billingKeyId === sub.billingKeyId) return refuse(sub, 'swap_billing_key', 'same_billing_key', 'The subscription already uses this billing key');
      sub.billingKeyId = event.billingKeyId;
      // past_due: the outstanding period is charged at once with the new key.
      return ok(
        [{ type: 'subscription.billing_key_changed' }],
        [{ kind: 'cancel_reservations' }, ...(sub.status === 'past_due' ? [{ kind: 'charge_now' } as const] : [{ kind: 'top_up_reservations' } as const])],
      );

    case 'retry':
      if (!allowed(sub, 'retry')) return refuse(sub, 'retry');
      return ok([{ type: 'subscription.retry_requested' }], [{ kind: 'charge_now' }]);

    case 'period_end': {
      if (!allowed(sub, 'period_end')) return refuse(sub, 'period_end');
      if (sub.cancelAtPeriodEnd) {
        // The due day's run ends it (nothing is charged); it ended, for the record, when its paid period did.
        const periodEnd = sub.currentPeriodEnd;
        applyCancelNow(sub, sub.cancelReason, now);
        if (periodEnd) sub.endedAt = periodEnd;
        return ok(
          [{ type: 'subscription.canceled', reason: sub.cancelReason, data: { at_period_end: true } }],
          [{ kind: 'cancel_reservations' }, { kind: 'retire_billing_key' }],
        );
      }
      if (sub.pendingPlanId) {
        const from = sub.planId;
        applyPlanChangeNow(sub, sub.pendingPlanId, now, null);
        return ok([{ type: 'subscription.plan_changed', data: { from_plan_id: from, to_plan_id: sub.planId, proration: 'period_end' } }]);
      }
      return ok([]);
    }

    case 'consent_missing': {
      if (!allowed(sub, 'consent_missing')) return refuse(sub, 'consent_missing');
      const reason = event.kind === 'trial_conversion' ? CONSENT_PAUSE_REASON : 'no consent to the price increase';
      const data = { consent_missing: event.kind, change_id: event.changeId ?? null };
      if (event.action === 'pause') {
        sub.status = 'paused';
        sub.pausedAt = now;
        sub.pauseReason = reason;
        sub.resumeAt = null;
        sub.nextChargeAt = null;
        sub.nextRetryAt = null;
        return ok([{ type: 'subscription.paused', reason, data }], [{ kind: 'cancel_reservations' }]);
      }
      // It ended, for the record, when the time it had (the trial, or the period paid at the old price) did.
      const end = sub.currentPeriodEnd;
      applyCancelNow(sub, reason, now);
      if (end) sub.endedAt = end;
      return ok([{ type: 'subscription.canceled', reason, data }], [{ kind: 'cancel_reservations' }, { kind: 'retire_billing_key' }]);
    }

    case 'migrate_plan': {
      if (!allowed(sub, 'migrate_plan')) return refuse(sub, 'migrate_plan');
      if (event.planId === sub.planId) return refuse(sub, 'migrate_plan', 'same_plan', 'The subscription is already on this plan');
      const from = sub.planId;
      // The period paid at the old price keeps its end; the new plan's periods run from there.
      applyPlanChangeNow(sub, event.planId, now, null);
      return ok([
        {
          type: 'subscription.plan_changed',
          data: { from_plan_id: from, to_plan_id: event.planId, proration: 'period_end', migration_id: event.migrationId, consent_id: event.consentId ?? null },
        },
      ]);
    }
  }
}

/**
 * An approved charge. A period charge applies only to the period the subscription waits for, on its current plan:
 * the next period from its anchor, or (past_due, unpaid, incomplete) a re-anchored period starting at or after it.
 * A prorated charge applies only inside the period it was computed for, while the subscription is still on the old
 * plan. Anything else is refused, and since money moved, the ledger refunds it.
 */
function approve(sub: SubscriptionEntity, charge: ChargeRef, ctx: TransitionContext, ok: (events: AuditEvent[], effects?: Effect[]) => Transition): Transition {
  const refund = (code: string, message: string): Transition =>
    refuse(sub, 'charge_approved', code, message, [{ kind: 'refund_payment', paymentId: charge.id, reason: message }]);
  if (!allowed(sub, 'charge_approved')) {
    return refund(`charge_after_${sub.status}`, `A charge approved for a ${sub.status} subscription is not applied`);
  }
  const now = ctx.now;
  if (charge.kind === 'proration') {
    // Index -1: it paid the new plan for the rest of the current period; index 0: a new period of the new plan that
    // starts inside the current one (a re-anchored change between different intervals).
    const reanchor = charge.periodIndex === 0;
    const start = sub.currentPeriodStart?.getTime() ?? NaN;
    const end = sub.currentPeriodEnd?.getTime() ?? NaN;
    const fits = reanchor
      ? charge.periodStart.getTime() >= start && charge.periodStart.getTime() < end
      : charge.periodStart.getTime() === start && charge.periodEnd.getTime() === end;
    if (sub.status !== 'active' || !fits) return refund('stale_proration', 'A prorated charge for a period the subscription is no longer in is not applied');
    if (sub.planId === charge.planId) return refund('stale_proration', 'The subscription is already on the plan this prorated charge was for');
    const from = sub.planId;
    applyPlanChangeNow(sub, charge.planId, now, reanchor ? { start: charge.periodStart, end: charge.periodEnd, paid: true } : null);
    return ok(
      [{ type: 'subscription.plan_changed', data: { from_plan_id: from, to_plan_id: charge.planId, proration_payment_id: charge.id } }],
      [{ kind: 'top_up_reservations' }],
    );
  }
  if (charge.planId !== sub.planId) return refund('plan_changed', 'A charge for a plan the subscription has left is not applied');
  const expected = nextPeriod(sub, ctx.plan, ctx.tz);
  const start = charge.periodStart.getTime();
  // Set to cancel at its period's end: nothing after that end is owed (a reservation Bootpay executes anyway, one it
  // never confirmed and so could not be canceled, is refunded).
  if (sub.cancelAtPeriodEnd && sub.currentPeriodEnd && start >= sub.currentPeriodEnd.getTime()) {
    return refund('canceled_at_period_end', 'A charge for a period after a cancel at period end is not applied');
  }
  const fitsNext = charge.periodIndex === expected.index && start === expected.start.getTime();
  // See chargePeriod: a past_due or unpaid subscription whose outstanding period ended is charged for a new one.
  const reanchored = charge.periodIndex === 0 && (sub.status === 'past_due' || sub.status === 'unpaid') && start > expected.start.getTime();
  if (!fitsNext && !reanchored) {
    if (start < expected.start.getTime()) return refund('period_already_paid', 'A charge for a period that was already paid or replaced is not applied');
    return refund('period_not_due', 'A charge for a period the subscription does not wait for is not applied');
  }
  const wasActive = sub.status === 'active';
  if (!fitsNext) sub.anchorAt = charge.periodStart;
  applyChargeSuccess(sub, { index: charge.periodIndex, start: charge.periodStart, end: charge.periodEnd }, now);
  if (charge.creditApplied) sub.creditBalance = Math.max(0, (sub.creditBalance ?? 0) - charge.creditApplied);
  return ok(wasActive ? [] : [{ type: 'subscription.activated' }], [{ kind: 'top_up_reservations' }]);
}

/**
 * The fields applyChargeSuccess (and a re-anchor) set, and nothing else. The charge run records approvals by writing
 * exactly these (and the event sequence) from memory; a test holds the two together.
 */
export const CHARGE_SUCCESS_FIELDS = [
  'status',
  'anchorAt',
  'periodIndex',
  'currentPeriodStart',
  'currentPeriodEnd',
  'nextChargeAt',
  'dunningAttempts',
  'nextRetryAt',
  'pastDueSince',
  'lastFailureCode',
  'lastFailureMessage',
  'creditBalance',
  'updatedAt',
] as const satisfies readonly (keyof SubscriptionEntity)[];

/** A successful charge for `period`: the subscription is active and paid through the period's end. */
export function applyChargeSuccess(sub: SubscriptionEntity, period: Period, now: Date): void {
  sub.status = 'active';
  sub.periodIndex = period.index;
  sub.currentPeriodStart = period.start;
  sub.currentPeriodEnd = period.end;
  sub.nextChargeAt = period.end;
  sub.dunningAttempts = 0;
  sub.nextRetryAt = null;
  sub.pastDueSince = null;
  sub.lastFailureCode = null;
  sub.lastFailureMessage = null;
  sub.updatedAt = now;
}

export type DeclineResult = { action: 'retry'; retryAt: Date } | { action: 'final'; finalAction: 'cancel' | 'unpaid' };

/**
 * A declined charge. The first failure makes the subscription past_due; retries follow the policy (counted from
 * the first failure); a hard decline, or a failure after the last retry, ends dunning with the final action.
 */
function applyChargeDecline(sub: SubscriptionEntity, failure: Failure, now: Date, policy: DunningPolicy): DeclineResult {
  sub.lastFailureCode = failure.code.slice(0, 64);
  sub.lastFailureMessage = failure.message.slice(0, 500);
  sub.dunningAttempts += 1;
  if (sub.status !== 'past_due') {
    sub.status = 'past_due';
    sub.pastDueSince = now;
  }
  sub.updatedAt = now;
  const retryIndex = sub.dunningAttempts - 1;
  if (!failure.hard && retryIndex < policy.retryDays.length) {
    const since = sub.pastDueSince ?? now;
    const retryAt = new Date(since.getTime() + policy.retryDays[retryIndex] * DAY_MS);
    sub.nextRetryAt = retryAt;
    sub.nextChargeAt = retryAt;
    return { action: 'retry', retryAt };
  }
  sub.nextRetryAt = null;
  sub.nextChargeAt = null;
  return { action: 'final', finalAction: policy.finalAction };
}

/** Ends the subscription now. */
function applyCancelNow(sub: SubscriptionEntity, reason: string | null, now: Date): void {
  sub.status = 'canceled';
  sub.canceledAt = sub.canceledAt ?? now;
  sub.endedAt = now;
  sub.cancelReason = reason ?? sub.cancelReason;
  sub.cancelAtPeriodEnd = false;
  sub.nextChargeAt = null;
  sub.nextRetryAt = null;
  sub.resumeAt = null;
  sub.pendingPlanId = null;
  sub.updatedAt = now;
}

/**
 * A plan change that applies now. Inside a paid period without re-anchoring, the period keeps its end and from
 * that end the new plan's own periods run (the subscription is re-anchored there). With `reanchor` (plans of
 * different intervals: the new plan's price paid for a new period starting then), the new period starts then.
 */
function applyPlanChangeNow(sub: SubscriptionEntity, planId: string, now: Date, reanchor: { start: Date; end: Date; paid: boolean } | null): void {
  sub.planId = planId;
  sub.pendingPlanId = null;
  if (reanchor) {
    sub.anchorAt = reanchor.start;
    if (reanchor.paid) {
      // The new period is paid (by the prorated charge, or by the credit): it runs now, the next charge at its end.
      sub.periodIndex = 0;
      sub.currentPeriodStart = reanchor.start;
      sub.currentPeriodEnd = reanchor.end;
      sub.nextChargeAt = reanchor.end;
    } else {
      sub.periodIndex = -1;
      sub.nextChargeAt = reanchor.start;
    }
  } else if (sub.currentPeriodEnd) {
    sub.anchorAt = sub.currentPeriodEnd;
    sub.periodIndex = -1;
    sub.nextChargeAt = sub.status === 'active' ? sub.currentPeriodEnd : sub.nextChargeAt;
  }
  sub.updatedAt = now;
}

function applyUnpaid(sub: SubscriptionEntity, now: Date): void {
  sub.status = 'unpaid';
  sub.nextChargeAt = null;
  sub.nextRetryAt = null;
  sub.updatedAt = now;
}

/** The view of a subscription kept in audit events (before/after). */
export function snapshot(sub: SubscriptionEntity): Record<string, unknown> {
  return {
    status: sub.status,
    plan_id: sub.planId,
    billing_key_id: sub.billingKeyId,
    period_index: sub.periodIndex,
    current_period_start: sub.currentPeriodStart?.toISOString() ?? null,
    current_period_end: sub.currentPeriodEnd?.toISOString() ?? null,
    next_charge_at: sub.nextChargeAt?.toISOString() ?? null,
    cancel_at_period_end: sub.cancelAtPeriodEnd,
    pending_plan_id: sub.pendingPlanId,
    paused_at: sub.pausedAt?.toISOString() ?? null,
    resume_at: sub.resumeAt?.toISOString() ?? null,
    dunning_attempts: sub.dunningAttempts,
  };
}
