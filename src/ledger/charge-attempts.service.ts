import { Injectable } from '@nestjs/common';
import { EntityManager } from 'typeorm';
import { GatewayReceipt } from '../gateway/gateway.types';
import { PaymentEntity } from '../payments/payment.entity';
import type { PlanEntity } from '../plans/plan.entity';
import { ApplyReceiptAction } from './charge-attempts/apply-receipt';
import { ChargeOutcome, ClaimedCharge, DueSubscription, OpenedBatch, SettleResult } from './charge-attempts/attempt-shared';
import { ChargeEffects } from './charge-attempts/charge-effects';
import { OpenAttemptAction } from './charge-attempts/open-attempt';
import { ResolveOpenAction } from './charge-attempts/resolve-open';
import { SendChargeAction } from './charge-attempts/send-charge';
import { SettleBatchAction } from './charge-attempts/settle-batch';
import { SettleChargeAction } from './charge-attempts/settle-charge';
import { EventActor } from './subscription-events.service';
import { SubscriptionEntity } from './subscription.entity';
import { DeclinePolicy, Effect, SubscriptionEvent } from './transitions';

export { chargeAmounts, receiptMismatchOf } from './charge-records';
export type { ChargeOutcome, ClaimedCharge, DueSubscription, OpenedBatch, SettleResult } from './charge-attempts/attempt-shared';
export type { DeclinePolicy } from './transitions';
export { orderIdFor } from './order-id';

/**
 * The charge attempts of the API, the charge run and Bootpay's webhook: each action in its own file under
 * `charge-attempts/` (opening, sending, settling one or a batch, resolving what was left open, applying receipts,
 * and the effects that follow a commit).
 */
@Injectable()
export class ChargeAttemptsService {
  constructor(
    private readonly effects: ChargeEffects,
    private readonly opening: OpenAttemptAction,
    private readonly sender: SendChargeAction,
    private readonly settlement: SettleChargeAction,
    private readonly batch: SettleBatchAction,
    private readonly resolving: ResolveOpenAction,
    private readonly receipts: ApplyReceiptAction,
  ) {}

  // ------------------------------------------------------------------ effects

  /** What follows a settled charge, after commit: the transition's effects (see {@link runEffects}). */
  afterSettle(result: Pick<SettleResult, 'subscription' | 'effects' | 'retireBillingKeyId'>): Promise<void> {
    return this.effects.afterSettle(result);
  }

  /** Carries out a transition's effects after its commit; a failure is logged and retried by the charge run. */
  runEffects(subscriptionId: string, effects: Effect[], retireBillingKeyId?: string): Promise<void> {
    return this.effects.runEffects(subscriptionId, effects, retireBillingKeyId);
  }

  // ------------------------------------------------------------------ opening

  /** Records the attempt for the subscription's next period, in the caller's transaction; null when one is open. */
  tryOpen(m: EntityManager, sub: SubscriptionEntity, plan: PlanEntity, opts: { chargeRunId?: string | null } = {}): Promise<PaymentEntity | null> {
    return this.opening.tryOpen(m, sub, plan, opts);
  }

  /** tryOpen for the API's own charges: a concurrent attempt is a 409, never a second charge. */
  open(m: EntityManager, sub: SubscriptionEntity, plan: PlanEntity): Promise<PaymentEntity> {
    return this.opening.open(m, sub, plan);
  }

  /** Records the attempts for a batch of due subscriptions in one statement, in the caller's transaction. */
  openBatch(m: EntityManager, due: DueSubscription[], chargeRunId: string): Promise<OpenedBatch> {
    return this.opening.openBatch(m, due, chargeRunId);
  }

  // ------------------------------------------------------------------ sending

  /** Sends a claimed charge, its billing key decrypted just now and forgotten right after. */
  sendClaimed(claim: ClaimedCharge): Promise<ChargeOutcome> {
    return this.sender.sendClaimed(claim);
  }

  /** Sends an open attempt to Bootpay; a re-send uses the same order_id, so it can never charge twice. */
  send(payment: PaymentEntity): Promise<ChargeOutcome> {
    return this.sender.send(payment);
  }

  // ------------------------------------------------------------------ settling

  /** Records an outcome: the payment, the subscription's new state and the audit events, in one transaction. */
  settle(paymentId: string, outcome: ChargeOutcome, opts: { actor?: EventActor; onDecline?: DeclinePolicy } = {}): Promise<SettleResult> {
    return this.settlement.settle(paymentId, outcome, opts);
  }

  /** Applies an event the charge run decided for a subscription it claimed, in the claim's transaction. */
  applyInClaim(
    m: EntityManager,
    sub: SubscriptionEntity,
    event: SubscriptionEvent,
  ): Promise<{ sub: SubscriptionEntity; retireBillingKeyId?: string } | { refused: string }> {
    return this.settlement.applyInClaim(m, sub, event);
  }

  /** Unknown outcomes of claimed charges, in one statement: they stay open and are resolved by a later run. */
  markUnknown(paymentIds: string[]): Promise<void> {
    return this.batch.markUnknown(paymentIds);
  }

  /** Approvals of claimed charges, in one statement; answers the payments recorded (the others: settle()). */
  settleSucceededBatch(items: { claim: ClaimedCharge; receipt: GatewayReceipt | null }[]): Promise<Set<string>> {
    return this.batch.settleSucceededBatch(items);
  }

  /** What follows a claimed charge's approval recorded by settleSucceededBatch, after commit. */
  afterBatchSuccess(claim: ClaimedCharge): Promise<void> {
    return this.batch.afterBatchSuccess(claim);
  }

  // ------------------------------------------------------------------ resolving

  /** Takes attempts left open longer than a charge can take, under a short lease, for the run to resolve. */
  leaseStaleAttempts(staleBefore: Date, now: Date, limit: number): Promise<PaymentEntity[]> {
    return this.resolving.leaseStaleAttempts(staleBefore, now, limit);
  }

  /** Settles what can be settled of a subscription's open payments before an action changes it, by asking Bootpay. */
  resolveOpenFor(subscriptionId: string, opts: { resend?: boolean } = {}): Promise<void> {
    return this.resolving.resolveOpenFor(subscriptionId, opts);
  }

  /** A reservation whose execution time has come, resolved from Bootpay; answers whether the payment left READY. */
  resolveReservation(p: PaymentEntity, opts: { sendUnconfirmed: boolean }): Promise<boolean> {
    return this.resolving.resolveReservation(p, opts);
  }

  // ------------------------------------------------------------------ receipts

  /** Applies what Bootpay says about a receipt to the payment with its order_id. */
  applyReceipt(receipt: GatewayReceipt): Promise<'settled' | 'updated' | 'unchanged' | 'unmatched'> {
    return this.receipts.applyReceipt(receipt);
  }
}
