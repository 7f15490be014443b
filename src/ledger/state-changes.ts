import type { SubscriptionEntity } from './subscription.entity';
import type { DunningPolicy, Failure, Period } from './transition-types';

/**
 * The changes of state the transition authority (transitions.ts) applies to a subscription, field by field; only
 * it calls them (CHARGE_SUCCESS_FIELDS and applyChargeSuccess are also read by the charge run's batch approval).
 */

const DAY_MS = 24 * 60 * 60 * 1000;

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
export function applyChargeDecline(sub: SubscriptionEntity, failure: Failure, now: Date, policy: DunningPolicy): DeclineResult {
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
export function applyCancelNow(sub: SubscriptionEntity, reason: string | null, now: Date): void {
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
export function applyPlanChangeNow(sub: SubscriptionEntity, planId: string, now: Date, reanchor: { start: Date; end: Date; paid: boolean } | null): void {
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

export function applyUnpaid(sub: SubscriptionEntity, now: Date): void {
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
