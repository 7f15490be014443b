import type { SubscriptionResponseDto } from './dto/subscription.dto';
import type { SubscriptionEntity } from './subscription.entity';

/** A subscription as the API (and its webhooks) show it. */
export function subscriptionView(sub: SubscriptionEntity): Omit<SubscriptionResponseDto, 'latest_payment'> {
  return {
    id: sub.id,
    customer_id: sub.customerId,
    plan_id: sub.planId,
    billing_key_id: sub.billingKeyId,
    status: sub.status,
    anchor_at: sub.anchorAt.toISOString(),
    current_period_start: sub.currentPeriodStart?.toISOString() ?? null,
    current_period_end: sub.currentPeriodEnd?.toISOString() ?? null,
    next_charge_at: sub.nextChargeAt?.toISOString() ?? null,
    trial_end: sub.trialEnd?.toISOString() ?? null,
    cancel_at_period_end: sub.cancelAtPeriodEnd,
    canceled_at: sub.canceledAt?.toISOString() ?? null,
    cancel_reason: sub.cancelReason,
    ended_at: sub.endedAt?.toISOString() ?? null,
    pause: sub.pausedAt ? { paused_at: sub.pausedAt.toISOString(), reason: sub.pauseReason, resume_at: sub.resumeAt?.toISOString() ?? null } : null,
    pending_plan_id: sub.pendingPlanId,
    credit_balance: sub.creditBalance ?? 0,
    dunning: {
      attempts: sub.dunningAttempts,
      next_retry_at: sub.nextRetryAt?.toISOString() ?? null,
      past_due_since: sub.pastDueSince?.toISOString() ?? null,
      last_failure: sub.lastFailureCode ? { code: sub.lastFailureCode, message: sub.lastFailureMessage } : null,
    },
    metadata: sub.metadata,
    created_at: sub.createdAt.toISOString(),
    updated_at: sub.updatedAt.toISOString(),
  };
}
