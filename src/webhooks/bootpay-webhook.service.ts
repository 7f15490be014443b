import { Injectable, Logger } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { DataSource } from 'typeorm';
import { ChargeAttemptsService } from '../ledger/charge-attempts.service';
import { Clock } from '../common/clock';
import { DomainError } from '../common/errors';
import { BootpayGateway } from '../gateway/bootpay.gateway';
import { GatewayNotFoundError } from '../gateway/gateway.errors';
import { GatewayReceipt } from '../gateway/gateway.types';

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
      throw new DomainError('validation', 'invalid_webhook', 'The webhook has no valid receipt_id', [
        { field: 'receipt_id', message: 'must be a Bootpay receipt id' },
      ]);
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

  /** Applies what Bootpay says about a receipt to the matching payment: the ledger decides (ChargeAttemptsService.applyReceipt). */
  async apply(receipt: GatewayReceipt): Promise<WebhookResult> {
    return this.attempts.applyReceipt(receipt);
  }
}
