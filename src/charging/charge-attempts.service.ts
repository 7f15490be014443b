import { Inject, Injectable, Logger } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { DataSource, EntityManager } from 'typeorm';
import { BillingKeysService } from '../billing-keys/billing-keys.service';
import { Clock } from '../common/clock';
import { failureOf, FailureView } from '../common/gateway-errors';
import { ConflictError } from '../common/errors';
import { BootpayGateway } from '../gateway/bootpay.gateway';
import {
  GatewayDeclinedError,
  GatewayDuplicateError,
  GatewayError,
  GatewayInvalidBillingKeyError,
  GatewayUnknownOutcomeError,
} from '../gateway/gateway.errors';
import type { GatewayReceipt } from '../gateway/gateway.types';
import { OPEN_PAYMENT_STATUSES, PaymentEntity } from '../payments/payment.entity';
import { paymentView } from '../payments/payment-view';
import { newPayment } from '../payments/new-payment';
import type { PlanEntity } from '../plans/plan.entity';
import { Runtime, RUNTIME } from '../runtime';
import { SubscriptionEventsService, EventActor } from '../subscriptions/subscription-events.service';
import { applyCancelNow, applyChargeDecline, applyChargeSuccess, applyPlanChangeNow, applyUnpaid, nextPeriod, snapshot } from '../subscriptions/subscription-state';
import { SubscriptionEntity } from '../subscriptions/subscription.entity';
import { orderIdFor } from './order-id';
import { ReservationsService } from './reservations.service';

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
  | { kind: 'not_charged'; failure: FailureView };

/**
 * What a decline does to the subscription: `dunning` (renewals: past_due, retries, final action), `end` (the first
 * charge at creation: the subscription ends), `record` (manual retries and prorated charges: only the failure is
 * noted on the subscription).
 */
export type DeclinePolicy = 'dunning' | 'end' | 'record';

export interface SettleResult {
  payment: PaymentEntity;
  subscription: SubscriptionEntity;
  outcome: ChargeOutcome;
  /** A billing key that no live subscription uses any more and must be deleted at Bootpay (after commit). */
  retireBillingKeyId?: string;
}

export { orderIdFor } from './order-id';

@Injectable()
export class ChargeAttemptsService {
  private readonly logger = new Logger(ChargeAttemptsService.name);

  constructor(
    @InjectDataSource() private readonly db: DataSource,
    private readonly clock: Clock,
    private readonly gateway: BootpayGateway,
    private readonly billingKeys: BillingKeysService,
    private readonly events: SubscriptionEventsService,
    private readonly reservations: ReservationsService,
    @Inject(RUNTIME) private readonly runtime: Runtime,
  ) {}

  /** Plans' charge modes never change (a plan's terms are fixed), so they can be remembered. */
  private readonly chargeModes = new Map<string, string>();

  private async chargeMode(planId: string): Promise<string> {
    let mode = this.chargeModes.get(planId);
    if (!mode) {
      const [row] = await this.db.query(`SELECT charge_mode FROM plans WHERE id = $1`, [planId]);
      mode = (row?.charge_mode as string | undefined) ?? 'scheduler';
      this.chargeModes.set(planId, mode);
    }
    return mode;
  }

  /**
   * What follows a settled charge, after commit: a subscription that ended has its reservations canceled and then,
   * when no live subscription uses it, its billing key deleted; a paid reservation-mode subscription is topped up.
   */
  async afterSettle(result: { subscription: SubscriptionEntity; retireBillingKeyId?: string; outcome: ChargeOutcome }): Promise<void> {
    const sub = result.subscription;
    if (sub.status === 'canceled') {
      await this.reservations.cancelOutstanding(sub.id).catch(() => undefined);
    } else if (result.outcome.kind === 'succeeded' && (await this.chargeMode(sub.planId)) === 'reservation') {
      await this.reservations.topUp(sub.id).catch(() => undefined);
    }
    if (result.retireBillingKeyId) await this.billingKeys.destroyAtGatewayQuietly(result.retireBillingKeyId);
  }

  /**
   * Records the attempt for the subscription's next period, in the caller's transaction (which holds the
   * subscription's row lock). The unique indexes on payments make a second open attempt, or a second success for the
   * same period, impossible whatever the callers do: when another worker recorded one first, nothing is inserted and
   * this answers null (the caller skips the subscription).
   */
  async tryOpen(
    m: EntityManager,
    sub: SubscriptionEntity,
    plan: PlanEntity,
    opts: { chargeRunId?: string | null } = {},
  ): Promise<PaymentEntity | null> {
    const period = nextPeriod(sub, plan, this.runtime.config.businessTimeZone);
    const [{ n }] = await m.query(
      `SELECT count(*)::int AS n FROM payments WHERE subscription_id = $1 AND kind = 'period' AND period_start = $2`,
      [sub.id, period.start],
    );
    const attempt = n + 1;
    const now = this.clock.now();
    const payment = newPayment(
      {
        subscriptionId: sub.id,
        customerId: sub.customerId,
        billingKeyId: sub.billingKeyId,
        kind: 'period',
        orderId: orderIdFor(sub.id, 'period', period.start, attempt),
        orderName: plan.name.slice(0, 100),
        amount: plan.amount,
        taxFreeAmount: plan.taxFreeAmount,
        status: 'IN_PROGRESS',
        attempt,
        periodIndex: period.index,
        periodStart: period.start,
        periodEnd: period.end,
        planId: plan.id,
        chargeRunId: opts.chargeRunId ?? null,
      },
      now,
    );
    const inserted = await m.createQueryBuilder().insert().into(PaymentEntity).values(payment).orIgnore().returning(['id']).execute();
    return (inserted.raw as unknown[]).length ? payment : null;
  }

  /** tryOpen for the API's own charges: a concurrent attempt is a 409, never a second charge. */
  async open(m: EntityManager, sub: SubscriptionEntity, plan: PlanEntity): Promise<PaymentEntity> {
    const payment = await this.tryOpen(m, sub, plan);
    if (!payment) {
      throw new ConflictError('charge_in_progress', 'A charge for this subscription is already in progress; try again once it is settled');
    }
    return payment;
  }

  /**
   * Sends an open attempt to Bootpay. A re-send of an attempt whose first send had no answer uses the same
   * order_id: Bootpay refuses it as a duplicate if the first went through, so this can never charge twice.
   */
  async send(payment: PaymentEntity): Promise<ChargeOutcome> {
    let key: string;
    try {
      key = await this.billingKeys.reveal(payment.billingKeyId);
    } catch {
      return { kind: 'declined', failure: { code: 'billing_key_deleted', pg_code: null, message: 'The billing key was deleted', hard: true } };
    }
    try {
      const receipt = await this.gateway.charge({
        billingKey: key,
        orderId: payment.orderId,
        orderName: payment.orderName,
        price: payment.amount,
        taxFree: payment.taxFreeAmount,
        feedbackUrl: this.runtime.config.publicBaseUrl ? `${this.runtime.config.publicBaseUrl}/v1/webhooks/bootpay` : undefined,
        metadata: { subscription_id: payment.subscriptionId, payment_id: payment.id },
      });
      return { kind: 'succeeded', receipt };
    } catch (err) {
      return this.classify(err);
    }
  }

  private classify(err: unknown): ChargeOutcome {
    if (err instanceof GatewayDuplicateError) return { kind: 'succeeded', receipt: null };
    if (err instanceof GatewayDeclinedError || err instanceof GatewayInvalidBillingKeyError) {
      return { kind: 'declined', failure: failureOf(err) };
    }
    if (err instanceof GatewayUnknownOutcomeError) return { kind: 'unknown', reason: err.reason };
    if (err instanceof GatewayError) return { kind: 'not_charged', failure: failureOf(err) };
    // Anything unexpected after the request may have left: treat as unknown, never as a decline.
    this.logger.error({ message: 'unexpected error while charging', error_name: err instanceof Error ? err.name : typeof err });
    return { kind: 'unknown', reason: 'unexpected_error' };
  }

  /**
   * Records an outcome: the payment row, the subscription's new state and the audit events, in one transaction.
   * Settling is idempotent: a payment that is no longer open (settled by another worker or a webhook) is left alone.
   */
  async settle(
    paymentId: string,
    outcome: ChargeOutcome,
    opts: { actor?: EventActor; onDecline?: DeclinePolicy } = {},
  ): Promise<SettleResult> {
    const actor = opts.actor ?? 'system';
    const result = await this.db.transaction(async (m) => {
      const pre = await m.getRepository(PaymentEntity).findOneByOrFail({ id: paymentId });
      const sub = await m
        .getRepository(SubscriptionEntity)
        .createQueryBuilder('s')
        .setLock('pessimistic_write')
        .where('s.id = :id', { id: pre.subscriptionId })
        .getOneOrFail();
      const payment = await m
        .getRepository(PaymentEntity)
        .createQueryBuilder('p')
        .setLock('pessimistic_write')
        .where('p.id = :id', { id: paymentId })
        .getOneOrFail();
      if (!OPEN_PAYMENT_STATUSES.includes(payment.status)) return { payment, subscription: sub, outcome };
      const now = this.clock.now();
      const before = snapshot(sub);
      let retireBillingKeyId: string | undefined;
      payment.updatedAt = now;

      switch (outcome.kind) {
        case 'succeeded': {
          payment.status = 'DONE';
          payment.approvedAt = outcome.receipt?.purchasedAt ?? now;
          if (outcome.receipt) {
            payment.receiptId = outcome.receipt.receiptId;
            payment.cardCompany = outcome.receipt.cardCompany;
            payment.cardNoMasked = outcome.receipt.cardNoMasked;
            payment.receiptUrl = outcome.receipt.receiptUrl;
          }
          await m.getRepository(PaymentEntity).save(payment);
          const wasActive = sub.status === 'active';
          if (payment.kind === 'proration') {
            if (sub.status !== 'canceled' && sub.planId !== payment.planId) {
              const fromPlanId = sub.planId;
              applyPlanChangeNow(sub, payment.planId, now);
              await m.getRepository(SubscriptionEntity).save(sub);
              await this.events.record(m, sub, 'subscription.plan_changed', actor, { before, after: snapshot(sub), data: { from_plan_id: fromPlanId, to_plan_id: payment.planId, proration_payment_id: payment.id } });
            }
          } else if (sub.status !== 'canceled') {
            applyChargeSuccess(sub, { index: payment.periodIndex, start: payment.periodStart, end: payment.periodEnd }, now);
          }
          await m.getRepository(SubscriptionEntity).save(sub);
          await this.events.record(m, sub, 'payment.succeeded', actor, {
            data: { payment_id: payment.id, amount: payment.amount, period_start: payment.periodStart.toISOString(), attempt: payment.attempt },
            object: { ...paymentView(payment) },
          });
          if (!wasActive && sub.status === 'active') {
            await this.events.record(m, sub, 'subscription.activated', actor, { before, after: snapshot(sub) });
          }
          break;
        }
        case 'declined':
        case 'not_charged': {
          payment.status = 'ABORTED';
          payment.failureCode = outcome.failure.code.slice(0, 64);
          payment.failurePgCode = outcome.failure.pg_code?.slice(0, 64) ?? null;
          payment.failureMessage = outcome.failure.message.slice(0, 500);
          payment.failureHard = outcome.kind === 'declined' ? outcome.failure.hard : false;
          await m.getRepository(PaymentEntity).save(payment);
          await this.events.record(m, sub, 'payment.failed', actor, {
            data: { payment_id: payment.id, failure: outcome.failure, attempt: payment.attempt, charged: false },
            object: { ...paymentView(payment) },
          });
          if (outcome.kind === 'not_charged') break; // Bootpay never saw a card decision: the subscription stays due.
          if (opts.onDecline === 'record' || payment.kind === 'proration') {
            sub.lastFailureCode = payment.failureCode;
            sub.lastFailureMessage = payment.failureMessage;
            sub.updatedAt = now;
            await m.getRepository(SubscriptionEntity).save(sub);
            break;
          }
          // Without a policy: a subscription that never started (incomplete) ends; any other enters dunning.
          if ((opts.onDecline ?? (sub.status === 'incomplete' ? 'end' : 'dunning')) === 'end') {
            applyCancelNow(sub, 'first payment failed', now);
            sub.lastFailureCode = payment.failureCode;
            sub.lastFailureMessage = payment.failureMessage;
            await m.getRepository(SubscriptionEntity).save(sub);
            await this.events.record(m, sub, 'subscription.canceled', actor, { reason: 'first payment failed', before, after: snapshot(sub) });
            break;
          }
          const decision = applyChargeDecline(sub, outcome.failure, now, this.runtime.config.dunning);
          if (decision.action === 'final') {
            if (decision.finalAction === 'cancel') {
              applyCancelNow(sub, outcome.failure.hard ? `hard decline: ${outcome.failure.code}` : 'dunning exhausted', now);
              await m.getRepository(SubscriptionEntity).save(sub);
              await this.events.record(m, sub, 'subscription.canceled', actor, { reason: sub.cancelReason, before, after: snapshot(sub) });
              retireBillingKeyId = (await this.billingKeys.markForDeletionIfUnused(m, sub.billingKeyId)) ? sub.billingKeyId : undefined;
            } else {
              applyUnpaid(sub, now);
              await m.getRepository(SubscriptionEntity).save(sub);
              await this.events.record(m, sub, 'subscription.unpaid', actor, { before, after: snapshot(sub) });
            }
          } else {
            await m.getRepository(SubscriptionEntity).save(sub);
            if (before.status !== 'past_due') {
              await this.events.record(m, sub, 'subscription.past_due', actor, { before, after: snapshot(sub) });
            }
          }
          break;
        }
        case 'unknown': {
          payment.status = 'UNKNOWN';
          await m.getRepository(PaymentEntity).save(payment);
          break;
        }
      }
      return { payment, subscription: sub, outcome, retireBillingKeyId };
    });
    await this.afterSettle(result);
    return result;
  }
}
