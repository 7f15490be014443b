import { Injectable, Logger } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { DataSource } from 'typeorm';
import { Clock } from '../../common/clock';
import { GatewayReceipt, RECEIPT_STATUS } from '../../gateway/gateway.types';
import { OPEN_PAYMENT_STATUSES, PaymentEntity } from '../../payments/payment.entity';
import { FinanceFlagsService } from '../finance-flags.service';
import { RefundsService } from '../refunds.service';
import { CHARGE_ATTEMPTS_LOG_CONTEXT } from './attempt-shared';
import { SettleChargeAction } from './settle-charge';

/** Applies Bootpay's receipts (from its webhook or a lookup) to the payments they name. */
@Injectable()
export class ApplyReceiptAction {
  private readonly logger = new Logger(CHARGE_ATTEMPTS_LOG_CONTEXT);

  constructor(
    @InjectDataSource() private readonly db: DataSource,
    private readonly clock: Clock,
    private readonly settlement: SettleChargeAction,
    private readonly flags: FinanceFlagsService,
    private readonly refunds: RefundsService,
  ) {}

  /**
   * Applies what Bootpay says about a receipt (from its webhook, a reservation lookup or a receipt lookup) to the
   * payment with its order_id: an open attempt is settled from it; an approved one gets the receipt details a
   * duplicate-order answer could not give; cancellations made at Bootpay set the payment's refunded figures.
   */
  async applyReceipt(receipt: GatewayReceipt): Promise<'settled' | 'updated' | 'unchanged' | 'unmatched'> {
    const payment = await this.db.getRepository(PaymentEntity).findOneBy({ orderId: receipt.orderId });
    if (!payment) {
      this.logger.warn({ message: 'receipt matches no payment', receipt_id: receipt.receiptId });
      return 'unmatched';
    }
    const approvedOrCancelled = receipt.status === RECEIPT_STATUS.COMPLETED || receipt.status === RECEIPT_STATUS.CANCELLED;
    if (
      OPEN_PAYMENT_STATUSES.includes(payment.status) ||
      (payment.status === 'ABORTED' && approvedOrCancelled && receipt.status === RECEIPT_STATUS.COMPLETED)
    ) {
      if (approvedOrCancelled) {
        const settled = await this.settlement.settle(payment.id, { kind: 'succeeded', receipt });
        if (settled.payment.status === 'DONE' && receipt.cancelledPrice > 0) await this.applyCancellation(payment.id, receipt);
        return 'settled';
      }
      if (receipt.status === RECEIPT_STATUS.APPROVAL_FAILED || receipt.status === RECEIPT_STATUS.FAILED_MIDWAY) {
        if (payment.status === 'ABORTED') return 'unchanged';
        // A failed execution says only that the reservation did not charge. Once the run has sent the order_id itself
        // (IN_PROGRESS or UNKNOWN: the reservation was late or never confirmed), that send's outcome is still open:
        // Bootpay may have approved it (a late execution then fails as a duplicate order). It is resolved by
        // re-sending the same order_id, never settled as a decline from the reservation's receipt.
        if (payment.status !== 'READY') {
          this.logger.warn({
            message: "a reservation's failed execution arrived while the order is sent directly; left to that send's resolution",
            payment_id: payment.id,
            receipt_id: receipt.receiptId,
          });
          return 'unchanged';
        }
        await this.settlement.settle(payment.id, {
          kind: 'declined',
          failure: { code: 'PAYMENT_REQUEST_FAILED', pg_code: null, message: receipt.statusLocale || 'the reserved payment failed', hard: false },
        });
        return 'settled';
      }
      return 'unchanged';
    }
    if (!['DONE', 'PARTIAL_CANCELED', 'CANCELED'].includes(payment.status)) return 'unchanged';
    // Already approved: a receipt for it must be the one approved (a different receipt with its order_id is
    // finance's to look at), and it fills in what a duplicate-order resolution could not know.
    if (payment.receiptId && payment.receiptId !== receipt.receiptId) {
      await this.db.transaction((m) =>
        this.flags.raise(m, {
          kind: 'receipt_mismatch',
          subscriptionId: payment.subscriptionId,
          paymentId: payment.id,
          message: `Bootpay's receipt ${receipt.receiptId} carries the order_id of payment ${payment.id}, approved with receipt ${payment.receiptId}`,
        }),
      );
      return 'unchanged';
    }
    let changed = false;
    if (!payment.receiptId && receipt.status !== RECEIPT_STATUS.APPROVAL_FAILED) {
      const mismatch = await this.settlement.receiptMismatch(this.db.manager, payment, { ...receipt, status: RECEIPT_STATUS.COMPLETED });
      if (mismatch) {
        await this.db.transaction((m) =>
          this.flags.raise(m, {
            kind: 'receipt_mismatch',
            subscriptionId: payment.subscriptionId,
            paymentId: payment.id,
            message: `Bootpay's receipt ${receipt.receiptId} does not fit approved payment ${payment.id}: ${mismatch}`,
          }),
        );
        return 'unchanged';
      }
      await this.db.query(
        `UPDATE payments SET receipt_id = $2, card_company = $3, card_no_masked = $4, receipt_url = $5, updated_at = $6 WHERE id = $1 AND receipt_id IS NULL`,
        [payment.id, receipt.receiptId, receipt.cardCompany, receipt.cardNoMasked, receipt.receiptUrl, this.clock.now()],
      );
      changed = true;
    }
    if (receipt.cancelledPrice > 0) changed = (await this.applyCancellation(payment.id, receipt)) || changed;
    return changed ? 'updated' : 'unchanged';
  }

  /** Sets the payment's refunded figures from Bootpay's receipt; a cancel made at Bootpay is recorded as a refund. */
  private async applyCancellation(paymentId: string, receipt: GatewayReceipt): Promise<boolean> {
    return this.refunds.syncFromReceipt(paymentId, receipt);
  }
}
