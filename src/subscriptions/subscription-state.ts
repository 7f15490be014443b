import { BillingInterval, periodStart } from '../billing-math';
import type { SubscriptionEntity, SubscriptionStatus } from './subscription.entity';

/**
 * The subscription state machine as pure functions: what each event does to a subscription.
 * Services apply these inside a transaction that holds the subscription's row lock.
 *
 * Periods: `period_index` is the last paid period (-1 before the first); the next charge is always for
 * period_index + 1, computed from `anchor_at` in the business time zone.
 */

export const LIVE_STATUSES: SubscriptionStatus[] = ['incomplete', 'trialing', 'active', 'past_due', 'paused', 'unpaid'];

/** The transitions the API allows, by action: the statuses an action may start from. */
export const ALLOWED_FROM: Record<string, SubscriptionStatus[]> = {
  cancel_now: ['incomplete', 'trialing', 'active', 'past_due', 'paused', 'unpaid'],
  cancel_at_period_end: ['trialing', 'active'],
  reactivate: ['trialing', 'active'],
  pause: ['trialing', 'active', 'past_due'],
  resume: ['paused'],
  change_plan: ['trialing', 'active'],
  swap_billing_key: ['incomplete', 'trialing', 'active', 'past_due', 'paused', 'unpaid'],
  retry: ['past_due', 'unpaid'],
};

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

export interface DunningPolicy {
  /** Days after the first failure at which retries happen, e.g. [1, 3, 5, 7]. */
  retryDays: number[];
  finalAction: 'cancel' | 'unpaid';
}

const DAY_MS = 24 * 60 * 60 * 1000;

/**
 * The fields applyChargeSuccess sets, and nothing else. The charge run records approvals by writing exactly these (and
 * the event sequence) from memory; a test holds the two together.
 */
export const CHARGE_SUCCESS_FIELDS = [
  'status',
  'periodIndex',
  'currentPeriodStart',
  'currentPeriodEnd',
  'nextChargeAt',
  'dunningAttempts',
  'nextRetryAt',
  'pastDueSince',
  'lastFailureCode',
  'lastFailureMessage',
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
export function applyChargeDecline(
  sub: SubscriptionEntity,
  failure: { code: string; message: string; hard: boolean },
  now: Date,
  policy: DunningPolicy,
): DeclineResult {
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
 * An immediate plan change inside a paid period: the period keeps its end, and from that end the new plan's own
 * periods run (the subscription is re-anchored there).
 */
export function applyPlanChangeNow(sub: SubscriptionEntity, planId: string, now: Date): void {
  sub.planId = planId;
  sub.pendingPlanId = null;
  if (sub.currentPeriodEnd) {
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
