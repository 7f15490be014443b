import type { BillingInterval } from '../billing-math';
import type { SubscriptionEntity, SubscriptionStatus } from './subscription.entity';

/** The vocabulary of the transition authority (transitions.ts): statuses, events, effects and answers. */

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
