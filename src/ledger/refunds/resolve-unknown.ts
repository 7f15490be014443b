import { Inject, Injectable, Logger } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { DataSource } from 'typeorm';
import { Clock } from '../../common/clock';
import { returnedRows } from '../../common/db-errors';
import { BootpayGateway } from '../../gateway/bootpay.gateway';
import type { GatewayReceipt } from '../../gateway/gateway.types';
import { PaymentEntity } from '../../payments/payment.entity';
import { Runtime, RUNTIME } from '../../config/runtime';
import { RefundEntity } from '../refund.entity';
import { REFUNDS_LOG_CONTEXT, refundLeaseMs, ResolveUnknownSummary } from './refund-shared';
import { RefundCancelSender } from './send-cancel';
import { RefundSettlement } from './settle-refund';
import { PaymentReceiptSync } from './sync-from-receipt';

/** Resolves refunds whose outcome is unknown, or whose sender went away, by re-sending their cancel_id. */
@Injectable()
export class ResolveUnknownRefunds {
  private readonly logger = new Logger(REFUNDS_LOG_CONTEXT);

  constructor(
    @InjectDataSource() private readonly db: DataSource,
    private readonly clock: Clock,
    private readonly gateway: BootpayGateway,
    private readonly sender: RefundCancelSender,
    private readonly settlement: RefundSettlement,
    private readonly sync: PaymentReceiptSync,
    @Inject(RUNTIME) private readonly runtime: Runtime,
  ) {}

  /**
   * Resolves refunds whose outcome is unknown (and pending ones whose sender went away: crash, lease expired) by
   * re-sending the SAME cancel_id: Bootpay refuses a cancel_id it already processed, so this never cancels twice.
   * Each refund is taken under a lease, so concurrent resolvers (charge runs, refund requests) do not overlap.
   * Meant for the charge run and called at the start of each refund request for that payment.
   */
  async resolveUnknown(opts: { paymentId?: string; limit?: number } = {}): Promise<ResolveUnknownSummary> {
    const summary: ResolveUnknownSummary = { examined: 0, succeeded: 0, failed: 0, unknown: 0 };
    const now = this.clock.now();
    const claimed = returnedRows<{ id: string }>(
      await this.db.query(
        `UPDATE refunds SET locked_until = $1, attempts = attempts + 1, last_attempt_at = $2, updated_at = $2
         WHERE id IN (
           SELECT id FROM refunds
           WHERE status IN ('pending', 'unknown') AND (locked_until IS NULL OR locked_until < $2)
             AND ($3::uuid IS NULL OR payment_id = $3::uuid)
           ORDER BY created_at, id LIMIT $4 FOR UPDATE SKIP LOCKED)
         RETURNING id`,
        [new Date(now.getTime() + refundLeaseMs(this.runtime)), now, opts.paymentId ?? null, opts.limit ?? 100],
      ),
    );
    for (const { id } of claimed) {
      summary.examined += 1;
      try {
        const status = await this.resolveOne(id);
        summary[status] += 1;
      } catch (err) {
        summary.unknown += 1;
        this.logger.error({
          message: 'could not resolve a refund',
          refund_id: id,
          error_name: err instanceof Error ? err.name : typeof err,
          error_message: err instanceof Error ? err.message : undefined,
        });
      }
    }
    if (summary.examined) this.logger.log({ message: 'refunds resolved', ...summary });
    return summary;
  }

  private async resolveOne(refundId: string): Promise<'succeeded' | 'failed' | 'unknown'> {
    const refund = await this.db.getRepository(RefundEntity).findOneByOrFail({ id: refundId });
    const payment = await this.db.getRepository(PaymentEntity).findOneByOrFail({ id: refund.paymentId });
    if (!payment.receiptId) {
      await this.settlement.markUnknown(refund.id);
      return 'unknown';
    }
    const outcome = await this.sender.send(refund, payment.receiptId);
    switch (outcome.kind) {
      case 'succeeded':
        return (await this.settlement.settleSucceeded(refund.id, outcome.receipt, { resolved: true })).status === 'succeeded' ? 'succeeded' : 'unknown';
      case 'unknown':
      case 'not_sent':
        // Nothing learnt (this time nothing was sent, but the first send may have gone through): ask again later.
        await this.settlement.markUnknown(refund.id);
        return 'unknown';
      case 'refused': {
        if (outcome.gatewaySide) {
          await this.settlement.markUnknown(refund.id);
          return 'unknown';
        }
        // Bootpay checks a repeated cancel_id first (the fake does; Bootpay documents cancel_id for this), so a
        // refusal means the first send never went through. In case Bootpay checked the amount first, the receipt
        // decides: does Bootpay show this refund cancelled on top of the ones that succeeded here?
        let receipt: GatewayReceipt;
        try {
          receipt = await this.gateway.getReceipt(payment.receiptId);
        } catch {
          await this.settlement.markUnknown(refund.id);
          return 'unknown';
        }
        const [{ sum }] = await this.db.query(`SELECT COALESCE(sum(amount), 0)::bigint AS sum FROM refunds WHERE payment_id = $1 AND status = 'succeeded'`, [
          refund.paymentId,
        ]);
        if (receipt.cancelledPrice >= Number(sum) + refund.amount) {
          this.logger.warn({
            message: 'refund re-send refused, but Bootpay shows it cancelled: settled as succeeded',
            refund_id: refund.id,
            code: outcome.failure.code,
          });
          return (await this.settlement.settleSucceeded(refund.id, receipt, { resolved: true })).status === 'succeeded' ? 'succeeded' : 'unknown';
        }
        const failed = (await this.settlement.markFailed(refund.id, outcome.failure)).status === 'failed' ? 'failed' : 'unknown';
        await this.sync.syncPayment(refund.paymentId, receipt);
        return failed;
      }
    }
  }
}
