import { LIVE_STATUSES, SubscriptionEntity, SubscriptionStatus } from './subscription.entity';
import { nextPeriod } from './subscription-periods';
import { applyCancelNow, applyChargeDecline, applyChargeSuccess, applyPlanChangeNow, applyUnpaid } from './state-changes';
import {
  ALLOWED_FROM,
  AuditEvent,
  CONSENT_PAUSE_REASON,
  ChargeRef,
  Effect,
  SubscriptionEvent,
  Transition,
  TransitionAction,
  TransitionContext,
} from './transition-types';

export { LIVE_STATUSES };
export * from './transition-types';
export * from './subscription-periods';
export { CHARGE_SUCCESS_FIELDS, applyChargeSuccess, snapshot } from './state-changes';
export type { DeclineResult } from './state-changes';

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
 *
 * This file holds the table itself; its vocabulary (statuses, events, effects) is in transition-types.ts, the field
 * changes it applies in state-changes.ts, and the periods it reasons about in subscription-periods.ts.
 */

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
