import { Inject, Injectable, Logger, Optional } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { DataSource, EntityManager } from 'typeorm';
import { BillingKeysService } from '../../billing-keys/billing-keys.service';
import { Clock } from '../../common/clock';
import { withRetries } from '../../common/db-errors';
import { Runtime, RUNTIME } from '../../config/runtime';
import { FailureView } from '../../gateway/domain-errors';
import { GatewayReceipt, RECEIPT_STATUS } from '../../gateway/gateway.types';
import { ChargeMetricOutcome, MetricsService } from '../../metrics/metrics.service';
import { OPEN_PAYMENT_STATUSES, PaymentEntity } from '../../payments/payment.entity';
import { paymentView } from '../../payments/payment-view';
import { PlansService } from '../../plans/plans.service';
import { receiptMismatchOf, sameMaskedCard } from '../charge-records';
import { FinanceFlagsService } from '../finance-flags.service';
import { applyApproval } from '../new-payment';
import { RefundsService } from '../refunds.service';
import { EventActor, SubscriptionEventsService } from '../subscription-events.service';
import { SubscriptionEntity } from '../subscription.entity';
import { DeclinePolicy, snapshot, SubscriptionEvent, transition } from '../transitions';
import { approvalEvents, CHARGE_ATTEMPTS_LOG_CONTEXT, ChargeOutcome, SettleResult } from './attempt-shared';
import { ChargeEffects } from './charge-effects';

/**
 * Records a charge's outcome the general way (the payment, the subscription's new state as the transition
 * authority decides, the audit events, under row locks), and applies the events the charge run decides in its claim.
 */
@Injectable()
export class SettleChargeAction {
  private readonly logger = new Logger(CHARGE_ATTEMPTS_LOG_CONTEXT);

  constructor(
    @InjectDataSource() private readonly db: DataSource,
    private readonly clock: Clock,
    private readonly billingKeys: BillingKeysService,
    private readonly events: SubscriptionEventsService,
    private readonly plans: PlansService,
    private readonly flags: FinanceFlagsService,
    private readonly refunds: RefundsService,
    private readonly effects: ChargeEffects,
    @Inject(RUNTIME) private readonly runtime: Runtime,
    @Optional() private readonly metrics?: MetricsService,
  ) {}

  /**
   * Records an outcome: the payment row, the subscription's new state (as the transition authority decides) and the
   * audit events, in one transaction. Idempotent: a payment that is no longer open (settled by another worker or a
   * webhook) is left alone, except that an approval Bootpay shows for a payment recorded as not charged is money
   * that moved: it is recorded, and applied only if the subscription still waits for it (else refunded).
   * A receipt that does not fit its payment (price, tax-free part, status, payment id, card) is never applied: the
   * attempt is aborted and finance is told.
   */
  async settle(paymentId: string, outcome: ChargeOutcome, opts: { actor?: EventActor; onDecline?: DeclinePolicy } = {}): Promise<SettleResult> {
    const actor = opts.actor ?? 'system';
    // Settlements of charges on one billing key meet on its row (an ending deletes a key no longer used): a deadlock
    // between them aborts one, which is run again from the start (it re-reads everything under its locks).
    let recorded = false;
    const result = await withRetries(() => this.settleOnce(paymentId, outcome, opts, actor, () => (recorded = true)));
    if (recorded) this.metrics?.chargeRecorded(metricOutcomeOf(result.payment, outcome));
    await this.effects.afterSettle(result);
    return result;
  }

  private async settleOnce(
    paymentId: string,
    outcome: ChargeOutcome,
    opts: { onDecline?: DeclinePolicy },
    actor: EventActor,
    markRecorded: () => void,
  ): Promise<SettleResult> {
    return this.db.transaction(async (m) => {
      const pre = await m.getRepository(PaymentEntity).findOneByOrFail({ id: paymentId });
      // Settlements of charges on one billing key go one after another (an ending may delete the key, under its row
      // lock): without this, two declines on a shared key deadlock.
      await m.query(`SELECT pg_advisory_xact_lock(hashtextextended($1, 7301010))`, [pre.billingKeyId]);
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
      const open = OPEN_PAYMENT_STATUSES.includes(payment.status);
      const lateApproval = payment.status === 'ABORTED' && outcome.kind === 'succeeded' && outcome.receipt !== null;
      const unchanged: SettleResult = { payment, subscription: sub, outcome, effects: [] };
      if (!open && !lateApproval) return unchanged;
      markRecorded();
      const now = this.clock.now();
      payment.updatedAt = now;

      switch (outcome.kind) {
        case 'succeeded': {
          const receipt = outcome.receipt;
          if (
            receipt &&
            receipt.status === RECEIPT_STATUS.CANCELLED &&
            !(await this.receiptMismatch(m, payment, { ...receipt, status: RECEIPT_STATUS.COMPLETED }))
          ) {
            // Approved and then fully refunded at Bootpay before this service learnt of the approval: the payment
            // records both, the subscription is not advanced by it (the period stays due), and finance is told.
            applyApproval(payment, receipt, now);
            Object.assign(payment, {
              balanceAmount: payment.amount - receipt.cancelledPrice,
              refundedTaxFree: receipt.cancelledTaxFree,
              status: 'CANCELED',
              canceledAt: receipt.cancelledAt ?? now,
              notApplied: 'refunded_before_settled',
            });
            await m.getRepository(PaymentEntity).save(payment);
            await this.events.record(m, sub, 'payment.not_applied', actor, {
              reason: 'approved and fully refunded at Bootpay before it was settled here',
              data: { payment_id: payment.id, code: 'refunded_before_settled' },
            });
            await this.flags.raise(m, {
              kind: 'charge_not_applied',
              subscriptionId: sub.id,
              paymentId: payment.id,
              message: `Payment ${payment.id} was approved and fully refunded at Bootpay (receipt ${receipt.receiptId}) before it was settled here; the period was not applied and stays due`,
            });
            return { payment, subscription: sub, outcome, effects: [] };
          }
          if (outcome.receipt) {
            const mismatch = await this.receiptMismatch(m, payment, outcome.receipt);
            if (mismatch) {
              await this.flags.raise(m, {
                kind: 'receipt_mismatch',
                subscriptionId: sub.id,
                paymentId: payment.id,
                message: `Bootpay's receipt ${outcome.receipt.receiptId} does not fit payment ${payment.id}: ${mismatch}`,
                data: {
                  receipt_id: outcome.receipt.receiptId,
                  price: outcome.receipt.price,
                  tax_free: outcome.receipt.taxFree,
                  status: outcome.receipt.status,
                },
              });
              if (open) {
                this.abort(payment, {
                  code: 'receipt_mismatch',
                  pg_code: null,
                  message: `Bootpay's receipt does not fit this payment: ${mismatch}`,
                  hard: false,
                });
                await m.getRepository(PaymentEntity).save(payment);
                await this.events.record(m, sub, 'payment.failed', actor, {
                  data: { payment_id: payment.id, failure: { code: 'receipt_mismatch', message: mismatch }, attempt: payment.attempt, charged: null },
                  object: { ...paymentView(payment) },
                });
              }
              this.logger.warn({
                message: 'receipt does not fit its payment; not applied',
                payment_id: payment.id,
                receipt_id: outcome.receipt.receiptId,
                mismatch,
              });
              return unchanged;
            }
          }
          payment.failureCode = null;
          payment.failurePgCode = null;
          payment.failureMessage = null;
          payment.failureHard = null;
          applyApproval(payment, outcome.receipt, now);
          const before = snapshot(sub);
          const t = transition(sub, { type: 'charge_approved', charge: payment }, await this.context(sub.planId, m));
          // Money moved either way: the payment is recorded as approved; one the subscription refused is marked not
          // applied (it does not count as its period's payment, and is refunded).
          payment.notApplied = t.ok ? null : t.code.slice(0, 64);
          await m.getRepository(PaymentEntity).save(payment);
          if (t.ok) {
            // The subscription is written first, so every event of this change tells it as it now stands.
            await m.getRepository(SubscriptionEntity).save(t.sub);
            await this.events.record(m, t.sub, 'payment.succeeded', actor, approvalEvents(payment, t.sub, null)[0].opts);
            for (const e of t.events) await this.events.record(m, t.sub, e.type, actor, { reason: e.reason, data: e.data, before, after: snapshot(t.sub) });
            return { payment, subscription: t.sub, outcome, effects: t.effects };
          }
          await this.events.record(m, sub, 'payment.succeeded', actor, approvalEvents(payment, sub, null)[0].opts);
          await this.refuseApproval(m, sub, payment, t, actor);
          return { payment, subscription: sub, outcome, effects: t.effects };
        }
        case 'declined':
        case 'not_charged':
        case 'local_fault': {
          this.abort(payment, outcome.failure, outcome.kind === 'declined' ? outcome.failure.hard : false);
          await m.getRepository(PaymentEntity).save(payment);
          const failed = {
            data: { payment_id: payment.id, failure: outcome.failure, attempt: payment.attempt, charged: false },
            object: { ...paymentView(payment) },
          };
          // Bootpay never saw a card decision (or nothing was sent): the subscription stays as it was, still due.
          const t =
            outcome.kind === 'declined'
              ? transition(
                  sub,
                  { type: 'charge_declined', charge: payment, failure: outcome.failure, policy: opts.onDecline },
                  await this.context(sub.planId, m),
                )
              : null;
          if (!t || !t.ok) {
            await this.events.record(m, sub, 'payment.failed', actor, failed);
            return { payment, subscription: sub, outcome, effects: [] };
          }
          const before = snapshot(sub);
          // The subscription is written first, so every event of this change tells it as it now stands.
          await m.getRepository(SubscriptionEntity).save(t.sub);
          await this.events.record(m, t.sub, 'payment.failed', actor, failed);
          for (const e of t.events) await this.events.record(m, t.sub, e.type, actor, { reason: e.reason, data: e.data, before, after: snapshot(t.sub) });
          let retireBillingKeyId: string | undefined;
          if (t.effects.some((e) => e.kind === 'retire_billing_key') && (await this.billingKeys.markForDeletionIfUnused(m, t.sub.billingKeyId))) {
            retireBillingKeyId = t.sub.billingKeyId;
          }
          return { payment, subscription: t.sub, outcome, effects: t.effects, retireBillingKeyId };
        }
        case 'unknown': {
          payment.status = 'UNKNOWN';
          await m.getRepository(PaymentEntity).save(payment);
          return { payment, subscription: sub, outcome, effects: [] };
        }
      }
    });
  }

  /**
   * An approval the subscription refused (see the transition table): the money is owed back. A full refund is
   * recorded now, in this transaction, and sent after commit (the run retries it until Bootpay answers); finance
   * is told either way.
   */
  private async refuseApproval(
    m: EntityManager,
    sub: SubscriptionEntity,
    payment: PaymentEntity,
    t: { code: string; message: string },
    actor: EventActor,
  ): Promise<void> {
    await this.events.record(m, sub, 'payment.not_applied', actor, { reason: t.message, data: { payment_id: payment.id, code: t.code } });
    const refund = payment.receiptId
      ? await this.refunds.recordOwed(m, payment, {
          amount: payment.balanceAmount,
          taxFreeAmount: payment.taxFreeAmount - payment.refundedTaxFree,
          reason: `not applied: ${t.message}`,
        })
      : null;
    await this.flags.raise(m, {
      kind: refund ? 'charge_not_applied' : 'refund_needed',
      subscriptionId: sub.id,
      paymentId: payment.id,
      message: refund
        ? `${t.message}; refunded in full (refund ${refund.id})`
        : `${t.message}; not refunded automatically (${payment.receiptId ? 'another refund of the payment is in flight' : "Bootpay's receipt is not known yet"})`,
      data: { code: t.code, amount: payment.amount, refund_id: refund?.id ?? null },
    });
    this.logger.warn({
      message: 'approved charge not applied to its subscription',
      payment_id: payment.id,
      subscription_id: sub.id,
      code: t.code,
      refunded: Boolean(refund),
    });
  }

  private abort(payment: PaymentEntity, failure: FailureView, hard = false): void {
    payment.status = 'ABORTED';
    payment.failureCode = failure.code.slice(0, 64);
    payment.failurePgCode = failure.pg_code?.slice(0, 64) ?? null;
    payment.failureMessage = failure.message.slice(0, 500);
    payment.failureHard = hard;
  }

  /** Why Bootpay's receipt does not fit the payment it names, or null when it does. */
  async receiptMismatch(m: EntityManager, payment: PaymentEntity, receipt: GatewayReceipt): Promise<string | null> {
    const mismatch = receiptMismatchOf(payment, receipt);
    if (mismatch) return mismatch;
    if (receipt.cardNoMasked) {
      const [key] = await m.query(`SELECT card_no_masked FROM billing_keys WHERE id = $1`, [payment.billingKeyId]);
      if (key?.card_no_masked && !sameMaskedCard(key.card_no_masked, receipt.cardNoMasked)) return `card ${receipt.cardNoMasked} is not the billing key's card`;
    }
    return null;
  }

  /**
   * Applies an event the charge run decided for a subscription it claimed (its period's end, a consent decision), in
   * the claim's transaction (which holds the row lock): the transition, its audit events, and the billing key marked
   * for deletion when an ending leaves it unused (the caller deletes it at Bootpay after commit).
   */
  async applyInClaim(
    m: EntityManager,
    sub: SubscriptionEntity,
    event: SubscriptionEvent,
  ): Promise<{ sub: SubscriptionEntity; retireBillingKeyId?: string } | { refused: string }> {
    const terms = await this.plans.terms(sub.planId, m);
    if (!terms) return { refused: 'plan_not_found' };
    const t = transition(sub, event, { now: this.clock.now(), tz: this.runtime.config.businessTimeZone, plan: terms, dunning: this.runtime.config.dunning });
    if (!t.ok) return { refused: t.code };
    const before = snapshot(sub);
    await m.getRepository(SubscriptionEntity).save(t.sub);
    for (const e of t.events) await this.events.record(m, t.sub, e.type, 'system', { reason: e.reason, before, after: snapshot(t.sub), data: e.data });
    const retire = t.effects.some((e) => e.kind === 'retire_billing_key') && (await this.billingKeys.markForDeletionIfUnused(m, t.sub.billingKeyId));
    return { sub: t.sub, retireBillingKeyId: retire ? t.sub.billingKeyId : undefined };
  }

  /** What the transition authority needs besides the subscription: time, time zone, plan terms, dunning policy. */
  async context(planId: string, m: EntityManager) {
    const terms = await this.plans.terms(planId, m);
    if (!terms) throw new Error(`plan ${planId} not found`);
    return { now: this.clock.now(), tz: this.runtime.config.businessTimeZone, plan: terms, dunning: this.runtime.config.dunning };
  }
}

/** How a settled charge counts in the metrics (billing_charges_total). */
function metricOutcomeOf(payment: PaymentEntity, outcome: ChargeOutcome): ChargeMetricOutcome {
  if (payment.status === 'UNKNOWN') return 'unknown';
  if (payment.notApplied) return 'not_applied';
  if (payment.status === 'DONE' || payment.status === 'PARTIAL_CANCELED') return 'approved';
  if (outcome.kind === 'declined') return outcome.failure.hard ? 'declined_hard' : 'declined_soft';
  if (outcome.kind === 'local_fault') return 'local_fault';
  return 'aborted';
}
