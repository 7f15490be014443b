import { Injectable, Logger } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { randomUUID } from 'node:crypto';
import { DataSource } from 'typeorm';
import { refundSplit } from '../../billing-math';
import { Clock } from '../../common/clock';
import { BootpayGateway } from '../../gateway/bootpay.gateway';
import type { GatewayReceipt } from '../../gateway/gateway.types';
import { PaymentEntity } from '../../payments/payment.entity';
import { SubscriptionEventsService } from '../subscription-events.service';
import { RefundEntity } from '../refund.entity';
import { refundView } from '../refund-view';
import { FinanceFlagsService } from '../finance-flags.service';
import { REFUNDS_LOG_CONTEXT } from './refund-shared';
import { RefundSettlement } from './settle-refund';

/** Brings a payment's refunded figures in line with Bootpay's receipt (a refund made at Bootpay is recorded too). */
@Injectable()
export class PaymentReceiptSync {
  private readonly logger = new Logger(REFUNDS_LOG_CONTEXT);

  constructor(
    @InjectDataSource() private readonly db: DataSource,
    private readonly clock: Clock,
    private readonly gateway: BootpayGateway,
    private readonly events: SubscriptionEventsService,
    private readonly flags: FinanceFlagsService,
    private readonly settlement: RefundSettlement,
  ) {}

  /**
   * After Bootpay refused a cancel because its figures differ from ours (cancelled in Bootpay's console, a webhook
   * missed), the payment takes Bootpay's cumulative figures, so the next request is checked against the truth.
   */
  async syncPaymentQuietly(paymentId: string, receiptId: string, code: string): Promise<void> {
    if (code !== 'RC_ALREADY_CANCELLED' && code !== 'RC_CANCEL_PRICE_EXCEEDED') return;
    try {
      await this.syncPayment(paymentId, await this.gateway.getReceipt(receiptId));
    } catch (err) {
      this.logger.warn({
        message: "could not fetch Bootpay's receipt after a refused refund",
        payment_id: paymentId,
        error_name: err instanceof Error ? err.name : typeof err,
      });
    }
  }

  async syncPayment(paymentId: string, receipt: GatewayReceipt): Promise<void> {
    await this.syncFromReceipt(paymentId, receipt);
  }

  /**
   * Sets a payment's refunded figures from Bootpay's receipt (cumulative: never lowered, never above what was paid,
   * only from the receipt it was approved with). A cancellation Bootpay shows beyond this service's own refunds was
   * made at Bootpay (its admin console): it becomes a refund record (`source: bootpay`, succeeded) with its audit
   * event, `refund.succeeded`, and an item for finance. While a refund of the payment is in flight nothing is
   * attributed to Bootpay: that refund's own settlement accounts for it. Answers whether the payment changed.
   */
  async syncFromReceipt(paymentId: string, receipt: GatewayReceipt): Promise<boolean> {
    return this.db.transaction(async (m) => {
      const pre = await m.getRepository(PaymentEntity).findOneBy({ id: paymentId });
      if (!pre) return false;
      const sub = await this.settlement.lockSubscription(m, pre.subscriptionId);
      const payment = await m
        .getRepository(PaymentEntity)
        .createQueryBuilder('p')
        .setLock('pessimistic_write')
        .where('p.id = :id', { id: paymentId })
        .getOneOrFail();
      const fits =
        receipt.receiptId === payment.receiptId &&
        ['DONE', 'PARTIAL_CANCELED'].includes(payment.status) &&
        receipt.cancelledPrice <= payment.amount &&
        receipt.cancelledTaxFree <= payment.taxFreeAmount &&
        receipt.cancelledPrice > payment.amount - payment.balanceAmount;
      if (!fits) return false;
      const now = this.clock.now();
      const before = { balanceAmount: payment.balanceAmount, refundedTaxFree: payment.refundedTaxFree };
      Object.assign(payment, {
        balanceAmount: payment.amount - receipt.cancelledPrice,
        refundedTaxFree: receipt.cancelledTaxFree,
        status: receipt.cancelledPrice === payment.amount ? 'CANCELED' : 'PARTIAL_CANCELED',
        canceledAt: receipt.cancelledAt ?? payment.canceledAt ?? now,
        updatedAt: now,
      });
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
      const [{ in_flight: inFlight, amount: ours, tax_free: oursTaxFree, vat: oursVat }] = await m.query(
        `SELECT count(*) FILTER (WHERE status IN ('pending', 'unknown'))::int AS in_flight,
                COALESCE(sum(amount) FILTER (WHERE status = 'succeeded'), 0)::bigint AS amount,
                COALESCE(sum(tax_free_amount) FILTER (WHERE status = 'succeeded'), 0)::bigint AS tax_free,
                COALESCE(sum(vat) FILTER (WHERE status = 'succeeded'), 0)::bigint AS vat
         FROM refunds WHERE payment_id = $1`,
        [payment.id],
      );
      const outside = receipt.cancelledPrice - Number(ours);
      if (inFlight > 0 || outside <= 0) return true;
      const outsideTaxFree = Math.min(outside, Math.max(0, receipt.cancelledTaxFree - Number(oursTaxFree)));
      const split = refundSplit(
        {
          amount: payment.amount,
          taxFreeAmount: payment.taxFreeAmount,
          vat: payment.vat,
          balanceAmount: payment.amount - Number(ours),
          refundedTaxFree: Number(oursTaxFree),
          refundedVat: Number(oursVat),
        },
        outside,
        outsideTaxFree,
      );
      const id = randomUUID();
      const refund = m.getRepository(RefundEntity).create({
        id,
        paymentId: payment.id,
        subscriptionId: payment.subscriptionId,
        amount: outside,
        taxFreeAmount: split.taxFree,
        vat: split.vat,
        reason: 'refunded outside the service (at Bootpay)',
        status: 'succeeded',
        cancelId: `bp_${id.replace(/-/g, '')}`,
        failureCode: null,
        failurePgCode: null,
        failureMessage: null,
        requestedByApiKeyId: null,
        requestedByName: 'Bootpay',
        source: 'bootpay',
        attempts: 1,
        lastAttemptAt: now,
        lockedUntil: null,
        createdAt: now,
        updatedAt: now,
        completedAt: receipt.cancelledAt ?? now,
      });
      await m.getRepository(RefundEntity).insert(refund);
      await this.events.record(m, sub, 'refund.succeeded', 'system', {
        reason: refund.reason,
        data: {
          refund_id: refund.id,
          payment_id: payment.id,
          amount: refund.amount,
          tax_free_amount: refund.taxFreeAmount,
          vat: refund.vat,
          source: 'bootpay',
          payment_balance_amount: payment.balanceAmount,
          payment_status: payment.status,
        },
        object: { ...refundView(refund) },
      });
      await this.flags.raise(m, {
        kind: 'refund_outside',
        subscriptionId: sub.id,
        paymentId: payment.id,
        message: `${outside} won of payment ${payment.id} was refunded at Bootpay, not through this service (receipt ${receipt.receiptId})`,
        data: { amount: outside, before },
      });
      this.logger.warn({ message: 'refund made outside this service recorded', payment_id: payment.id, refund_id: refund.id, amount: outside });
      return true;
    });
  }
}
