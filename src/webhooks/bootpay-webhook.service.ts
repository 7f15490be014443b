import { Injectable, Logger } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { DataSource } from 'typeorm';
import { ChargeAttemptsService } from '../charging/charge-attempts.service';
import { Clock } from '../common/clock';
import { returnedRows } from '../common/db-errors';
import { DomainError } from '../common/errors';
import { BootpayGateway } from '../gateway/bootpay.gateway';
import { GatewayNotFoundError } from '../gateway/gateway.errors';
import { GatewayReceipt, RECEIPT_STATUS } from '../gateway/gateway.types';
import { OPEN_PAYMENT_STATUSES, PaymentEntity } from '../payments/payment.entity';

export type WebhookResult = 'settled' | 'updated' | 'unchanged' | 'unmatched' | 'unknown_receipt';

/**
 * Bootpay's webhook. Nothing in the body is trusted but the receipt_id: the receipt is fetched again from Bootpay
 * and matched to a payment by its order_id. Repeated and out-of-order deliveries change nothing twice (a settled
 * payment is not settled again; amounts are set from Bootpay's cumulative figures, never added).
 */
@Injectable()
export class BootpayWebhookService {
  private readonly logger = new Logger(BootpayWebhookService.name);

  constructor(
    @InjectDataSource() private readonly db: DataSource,
    private readonly clock: Clock,
    private readonly gateway: BootpayGateway,
    private readonly attempts: ChargeAttemptsService,
  ) {}

  async handle(body: unknown): Promise<WebhookResult> {
    const receiptId = typeof body === 'object' && body !== null ? (body as { receipt_id?: unknown }).receipt_id : undefined;
    if (typeof receiptId !== 'string' || !/^[A-Za-z0-9_-]{6,64}$/.test(receiptId)) {
      throw new DomainError('validation', 'invalid_webhook', 'The webhook has no valid receipt_id', [{ field: 'receipt_id', message: 'must be a Bootpay receipt id' }]);
    }
    let receipt: GatewayReceipt;
    try {
      receipt = await this.gateway.getReceipt(receiptId);
    } catch (err) {
      if (err instanceof GatewayNotFoundError) {
        this.logger.warn({ message: 'webhook for a receipt Bootpay does not know', receipt_id: receiptId });
        return 'unknown_receipt';
      }
      // Bootpay retries a webhook that is not answered 200 {success:true}: let it, since we could not verify.
      throw new DomainError('gateway_unavailable', 'gateway_unavailable', 'Could not verify the receipt with Bootpay');
    }
    return this.apply(receipt);
  }

  /** Applies what Bootpay says about a receipt to the matching payment. */
  async apply(receipt: GatewayReceipt): Promise<WebhookResult> {
    const payment = await this.db.getRepository(PaymentEntity).findOneBy({ orderId: receipt.orderId });
    if (!payment) {
      this.logger.warn({ message: 'webhook receipt matches no payment', receipt_id: receipt.receiptId });
      return 'unmatched';
    }
    if (OPEN_PAYMENT_STATUSES.includes(payment.status)) {
      if (receipt.status === RECEIPT_STATUS.COMPLETED || receipt.status === RECEIPT_STATUS.CANCELLED) {
        await this.attempts.settle(payment.id, { kind: 'succeeded', receipt });
        if (receipt.cancelledPrice > 0) await this.applyCancellation(payment.id, receipt);
        return 'settled';
      }
      if (receipt.status === RECEIPT_STATUS.APPROVAL_FAILED || receipt.status === RECEIPT_STATUS.FAILED_MIDWAY) {
        await this.attempts.settle(payment.id, {
          kind: 'declined',
          failure: { code: 'PAYMENT_REQUEST_FAILED', pg_code: null, message: receipt.statusLocale || 'the reserved payment failed', hard: false },
        });
        return 'settled';
      }
      return 'unchanged';
    }
    // Already settled: fill in what a duplicate-order resolution could not know, and cancellations made at Bootpay.
    let changed = false;
    if (payment.status === 'DONE' && !payment.receiptId && receipt.status !== RECEIPT_STATUS.APPROVAL_FAILED) {
      await this.db.query(
        `UPDATE payments SET receipt_id = $2, card_company = $3, card_no_masked = $4, receipt_url = $5, updated_at = $6 WHERE id = $1 AND receipt_id IS NULL`,
        [payment.id, receipt.receiptId, receipt.cardCompany, receipt.cardNoMasked, receipt.receiptUrl, this.clock.now()],
      );
      changed = true;
    }
    if (receipt.cancelledPrice > 0) changed = (await this.applyCancellation(payment.id, receipt)) || changed;
    return changed ? 'updated' : 'unchanged';
  }

  /** Sets the payment's balance from Bootpay's cumulative cancelled amount (never lowers it twice). */
  private async applyCancellation(paymentId: string, receipt: GatewayReceipt): Promise<boolean> {
    const rows = returnedRows<{ id: string }>(await this.db.query(
      `UPDATE payments SET balance_amount = amount - $2::bigint, refunded_tax_free = $3::bigint,
         status = CASE WHEN amount - $2::bigint = 0 THEN 'CANCELED' ELSE 'PARTIAL_CANCELED' END,
         canceled_at = COALESCE(canceled_at, $4), updated_at = $4
       WHERE id = $1 AND status IN ('DONE', 'PARTIAL_CANCELED') AND amount - balance_amount < $2::bigint RETURNING id`,
      [paymentId, receipt.cancelledPrice, receipt.cancelledTaxFree, this.clock.now()],
    ));
    return rows.length > 0;
  }
}
