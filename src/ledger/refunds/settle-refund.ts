import { Injectable, Logger } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { DataSource, EntityManager } from 'typeorm';
import { Clock } from '../../common/clock';
import type { GatewayReceipt } from '../../gateway/gateway.types';
import { PaymentEntity } from '../../payments/payment.entity';
import { EventActor, SubscriptionEventsService } from '../subscription-events.service';
import { SubscriptionEntity } from '../subscription.entity';
import { IN_FLIGHT_REFUND_STATUSES, RefundEntity } from '../refund.entity';
import { refundView } from '../refund-view';
import { REFUNDS_LOG_CONTEXT } from './refund-shared';
import type { RefundFailure } from './send-cancel';

/**
 * Settles a refund's outcome: succeeded (the payment set from Bootpay's receipt), unknown (left for resolveUnknown)
 * or failed; and the row locks, in the order every refund write takes them (subscription, payment, refund).
 */
@Injectable()
export class RefundSettlement {
  private readonly logger = new Logger(REFUNDS_LOG_CONTEXT);

  constructor(
    @InjectDataSource() private readonly db: DataSource,
    private readonly clock: Clock,
    private readonly events: SubscriptionEventsService,
  ) {}

  /**
   * Records a refund Bootpay cancelled. The payment's balance and refunded tax-free amount are set from the
   * receipt's cumulative figures (never added to, never moved backwards), so a webhook that got there first, or a
   * repeated settle, changes nothing twice. Idempotent: a refund no longer in flight is left alone.
   */
  async settleSucceeded(refundId: string, receipt: GatewayReceipt, opts: { resolved: boolean }): Promise<RefundEntity> {
    return this.db.transaction(async (m) => {
      // Lock order everywhere: subscription, payment, refund (as charge settlement does).
      const pre = await m.getRepository(RefundEntity).findOneByOrFail({ id: refundId });
      const sub = await this.lockSubscription(m, pre.subscriptionId);
      const payment = await m
        .getRepository(PaymentEntity)
        .createQueryBuilder('p')
        .setLock('pessimistic_write')
        .where('p.id = :id', { id: pre.paymentId })
        .getOneOrFail();
      const refund = await this.lockRefund(m, refundId);
      if (!IN_FLIGHT_REFUND_STATUSES.includes(refund.status)) return refund;
      if (receipt.receiptId !== payment.receiptId || receipt.cancelledPrice > payment.amount || receipt.cancelledTaxFree > payment.taxFreeAmount) {
        throw new Error(`Bootpay's receipt does not fit payment ${payment.id}; the refund stays unresolved`);
      }
      const now = this.clock.now();
      if (receipt.cancelledPrice >= payment.amount - payment.balanceAmount) {
        payment.balanceAmount = payment.amount - receipt.cancelledPrice;
        payment.refundedTaxFree = receipt.cancelledTaxFree;
        payment.status = payment.balanceAmount === 0 ? 'CANCELED' : 'PARTIAL_CANCELED';
        payment.canceledAt = receipt.cancelledAt ?? now;
        payment.updatedAt = now;
        await m.getRepository(PaymentEntity).update(
          { id: payment.id },
          {
            balanceAmount: payment.balanceAmount,
            refundedTaxFree: payment.refundedTaxFree,
            status: payment.status,
            canceledAt: payment.canceledAt,
            updatedAt: now,
          },
        );
      } else {
        this.logger.warn({
          message: "Bootpay's receipt shows less cancelled than recorded; payment left as it is",
          payment_id: payment.id,
          refund_id: refund.id,
        });
      }
      Object.assign(refund, {
        status: 'succeeded',
        completedAt: now,
        lockedUntil: null,
        updatedAt: now,
        failureCode: null,
        failurePgCode: null,
        failureMessage: null,
      });
      await m
        .getRepository(RefundEntity)
        .update(
          { id: refund.id },
          { status: 'succeeded', completedAt: now, lockedUntil: null, updatedAt: now, failureCode: null, failurePgCode: null, failureMessage: null },
        );
      await this.events.record(m, sub, 'refund.succeeded', actorOf(refund), {
        reason: refund.reason,
        data: {
          refund_id: refund.id,
          payment_id: payment.id,
          amount: refund.amount,
          tax_free_amount: refund.taxFreeAmount,
          vat: refund.vat,
          cancel_id: refund.cancelId,
          payment_balance_amount: payment.balanceAmount,
          payment_status: payment.status,
          resolved_later: opts.resolved,
        },
        object: { ...refundView(refund) },
      });
      return refund;
    });
  }

  /** No answer (yet): the refund waits for resolveUnknown, which may take it at once (the lease is released). */
  async markUnknown(refundId: string): Promise<RefundEntity> {
    const now = this.clock.now();
    await this.db.query(`UPDATE refunds SET status = 'unknown', locked_until = NULL, updated_at = $2 WHERE id = $1 AND status IN ('pending', 'unknown')`, [
      refundId,
      now,
    ]);
    return this.db.getRepository(RefundEntity).findOneByOrFail({ id: refundId });
  }

  /** Bootpay did not cancel: the refund fails (audited), the payment is unchanged. */
  async markFailed(refundId: string, failure: RefundFailure): Promise<RefundEntity> {
    return this.db.transaction(async (m) => {
      const pre = await m.getRepository(RefundEntity).findOneByOrFail({ id: refundId });
      const sub = await this.lockSubscription(m, pre.subscriptionId);
      const refund = await this.lockRefund(m, refundId);
      if (!IN_FLIGHT_REFUND_STATUSES.includes(refund.status)) return refund;
      const now = this.clock.now();
      const patch = {
        status: 'failed' as const,
        failureCode: failure.code.slice(0, 64),
        failurePgCode: failure.pg_code?.slice(0, 64) ?? null,
        failureMessage: failure.message.slice(0, 500),
        completedAt: now,
        lockedUntil: null,
        updatedAt: now,
      };
      Object.assign(refund, patch);
      await m.getRepository(RefundEntity).update({ id: refund.id }, patch);
      await this.events.record(m, sub, 'refund.failed', actorOf(refund), {
        reason: refund.reason,
        data: { refund_id: refund.id, payment_id: refund.paymentId, amount: refund.amount, tax_free_amount: refund.taxFreeAmount, failure },
      });
      return refund;
    });
  }

  lockSubscription(m: EntityManager, id: string): Promise<SubscriptionEntity> {
    return m.getRepository(SubscriptionEntity).createQueryBuilder('s').setLock('pessimistic_write').where('s.id = :id', { id }).getOneOrFail();
  }

  private lockRefund(m: EntityManager, id: string): Promise<RefundEntity> {
    return m.getRepository(RefundEntity).createQueryBuilder('r').setLock('pessimistic_write').where('r.id = :id', { id }).getOneOrFail();
  }
}

/** The audit actor of a refund: whoever asked for it, also when it is settled later by the charge run. */
function actorOf(refund: RefundEntity): EventActor {
  if (!refund.requestedByApiKeyId) return 'system';
  return { apiKeyId: refund.requestedByApiKeyId, name: refund.requestedByName, role: 'admin' };
}
