import { Injectable } from '@nestjs/common';
import { EntityManager } from 'typeorm';
import type { Actor } from '../auth/auth.decorators';
import { Page, PageQueryDto } from '../common/pagination';
import type { GatewayReceipt } from '../gateway/gateway.types';
import { PaymentEntity } from '../payments/payment.entity';
import { EventActor } from './subscription-events.service';
import { RefundEntity } from './refund.entity';
import { RecordOwedRefund } from './refunds/record-owed';
import { RefundReads } from './refunds/refund-reads';
import { RefundInput, RefundView, ResolveUnknownSummary } from './refunds/refund-shared';
import { RequestRefundAction } from './refunds/request-refund';
import { ResolveUnknownRefunds } from './refunds/resolve-unknown';
import { PaymentReceiptSync } from './refunds/sync-from-receipt';

export { REFUNDABLE_PAYMENT_STATUSES } from './refunds/refund-shared';
export type { RefundInput, RefundView, ResolveUnknownSummary } from './refunds/refund-shared';

/**
 * Refunds (Bootpay cancels) of payments. Never twice, never lost:
 * 1. under the payment's row lock the request is checked against the remaining balance and tax-free amount, and the
 *    refund is committed `pending` with its deterministic cancel_id BEFORE Bootpay is called (one refund in flight
 *    per payment, also enforced by a unique index);
 * 2. Bootpay's answer settles it: the payment's balance and refunded tax-free amount are SET from the receipt's
 *    cumulative figures (never added to), the refund succeeds and `refund.succeeded` is audited, in one transaction;
 * 3. no answer leaves it `unknown`; {@link RefundsService.resolveUnknown} re-sends the same cancel_id: Bootpay
 *    refuses a cancel_id it already processed (RC_CANCEL_ID_DUPLICATED), which settles it as succeeded from the
 *    receipt; if the first never arrived, the re-send is the cancel. Either way Bootpay cancels at most once.
 *
 * Each action is in its own file under `refunds/`; this service is the one callers elsewhere use.
 */
@Injectable()
export class RefundsService {
  constructor(
    private readonly reads: RefundReads,
    private readonly requests: RequestRefundAction,
    private readonly resolver: ResolveUnknownRefunds,
    private readonly receipts: PaymentReceiptSync,
    private readonly owed: RecordOwedRefund,
  ) {}

  // ------------------------------------------------------------------------------------------------------ queries

  list(paymentId: string, q: PageQueryDto): Promise<Page<RefundView>> {
    return this.reads.list(paymentId, q);
  }

  get(refundId: string): Promise<RefundView> {
    return this.reads.get(refundId);
  }

  // ------------------------------------------------------------------------------------------------------- refund

  /** See RequestRefundAction.refund. */
  refund(paymentId: string, input: RefundInput, actor: Actor): Promise<RefundView> {
    return this.requests.refund(paymentId, input, actor);
  }

  // ------------------------------------------------------------------------------------------- unknown outcomes

  /** See ResolveUnknownRefunds.resolveUnknown: meant for the charge run, and run at the start of each refund request. */
  resolveUnknown(opts: { paymentId?: string; limit?: number } = {}): Promise<ResolveUnknownSummary> {
    return this.resolver.resolveUnknown(opts);
  }

  // --------------------------------------------------------------------------------------- Bootpay's receipts

  /** See PaymentReceiptSync.syncFromReceipt: answers whether the payment changed. */
  syncFromReceipt(paymentId: string, receipt: GatewayReceipt): Promise<boolean> {
    return this.receipts.syncFromReceipt(paymentId, receipt);
  }

  // ----------------------------------------------------------------------------------------------- owed refunds

  /** See RecordOwedRefund.recordOwed: in the caller's transaction; null when another refund is in flight. */
  recordOwed(
    m: EntityManager,
    payment: Pick<PaymentEntity, 'id' | 'subscriptionId' | 'amount' | 'taxFreeAmount' | 'vat' | 'balanceAmount' | 'refundedTaxFree'>,
    owed: { amount: number; taxFreeAmount: number; reason: string },
    actor: EventActor = 'system',
  ): Promise<RefundEntity | null> {
    return this.owed.recordOwed(m, payment, owed, actor);
  }
}
