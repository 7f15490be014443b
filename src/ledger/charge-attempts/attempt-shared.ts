import type { FailureView } from '../../gateway/domain-errors';
import type { GatewayReceipt } from '../../gateway/gateway.types';
import type { PaymentEntity } from '../../payments/payment.entity';
import { paymentView } from '../../payments/payment-view';
import type { PlanEntity } from '../../plans/plan.entity';
import type { EventDetails } from '../subscription-events.service';
import type { SubscriptionEntity } from '../subscription.entity';
import { Effect, snapshot } from '../transitions';

/*
 * What the charge attempt actions beside this file share: the types ChargeAttemptsService answers with (it
 * re-exports them), the events an approval records, and the log context.
 */

/** The log context of every charge attempt action: the service's, so their log lines read as before. */
export const CHARGE_ATTEMPTS_LOG_CONTEXT = 'ChargeAttemptsService';

/**
 * What Bootpay said about one attempt.
 * - succeeded: approved (receipt known, or `duplicate`: a re-send of the same order_id was refused because the
 *   first one was approved; the receipt then arrives by webhook);
 * - declined: the card or key was refused (hard or soft);
 * - unknown: sent, no answer: resolved later by re-sending the same order_id, never treated as a decline;
 * - not_charged: Bootpay refused the request itself (we could not reach or authenticate): nothing was charged and
 *   the subscription is left as it was, still due.
 */
export type ChargeOutcome =
  | { kind: 'succeeded'; receipt: GatewayReceipt | null }
  | { kind: 'declined'; failure: FailureView }
  | { kind: 'unknown'; reason: string }
  | { kind: 'not_charged'; failure: FailureView }
  /** A fault of this service (a billing key that cannot be decrypted, a setting): nothing was sent. Never a decline. */
  | { kind: 'local_fault'; failure: FailureView };

export interface SettleResult {
  payment: PaymentEntity;
  subscription: SubscriptionEntity;
  outcome: ChargeOutcome;
  /** What must follow the commit (the transition's effects). */
  effects: Effect[];
  /** A billing key that no live subscription uses any more and must be deleted at Bootpay (after commit). */
  retireBillingKeyId?: string;
}

/** A due subscription claimed by a charge run, with its attempt recorded and everything needed to send and settle it. */
export interface ClaimedCharge {
  payment: PaymentEntity;
  /** The subscription as it was when claimed (under its row lock). */
  subscription: SubscriptionEntity;
  plan: PlanEntity;
  /** The billing key as stored (encrypted), decrypted only when sent; null when the key is gone. */
  keyCiphertext: string | null;
  /**
   * The subscription row's version (PostgreSQL's xmin) when claimed. The outcome is recorded in one statement that
   * applies only if the row is still that version; otherwise (an admin acted meanwhile) it is settled the general way.
   * Null: always settle the general way.
   */
  rowVersion: string | null;
}

/** What openBatch recorded: the charges to send, and how many periods the subscriptions' credit paid entirely. */
export interface OpenedBatch {
  charges: ClaimedCharge[];
  /** Periods paid by credit: recorded DONE and applied in the claim's transaction, never sent. */
  paidByCredit: number;
}

/** A subscription row as the charge run's claim query returns it. */
export interface DueSubscription {
  subscription: SubscriptionEntity;
  plan: PlanEntity;
  keyCiphertext: string | null;
  rowVersion: string | null;
  /** The consent this charge relies on (a paid conversion, or the first charge at a migrated price), recorded on it. */
  consentId?: string | null;
}

/**
 * What an approval tells, in order: the payment, then the subscription's activation when it was not active before
 * (`before`: its state then; null when it was active). Both ways of settling record exactly these.
 */
export function approvalEvents(
  payment: PaymentEntity,
  sub: SubscriptionEntity,
  before: Record<string, unknown> | null,
): { type: string; opts: EventDetails }[] {
  const events: { type: string; opts: EventDetails }[] = [
    {
      type: 'payment.succeeded',
      opts: {
        data: { payment_id: payment.id, amount: payment.amount, period_start: payment.periodStart.toISOString(), attempt: payment.attempt },
        object: { ...paymentView(payment) },
      },
    },
  ];
  if (before && sub.status === 'active') events.push({ type: 'subscription.activated', opts: { before, after: snapshot(sub) } });
  return events;
}
