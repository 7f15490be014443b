import type { RefundResponseDto } from './dto/refund.dto';
import type { RefundEntity } from './refund.entity';

/** A refund as the API (and the refund.succeeded webhook) shows it. */
export function refundView(r: RefundEntity): RefundResponseDto {
  return {
    id: r.id,
    payment_id: r.paymentId,
    subscription_id: r.subscriptionId,
    currency: 'KRW',
    amount: r.amount,
    tax_free_amount: r.taxFreeAmount,
    vat: r.vat,
    supply_amount: r.amount - r.taxFreeAmount - r.vat,
    reason: r.reason,
    source: r.source ?? 'service',
    status: r.status,
    cancel_id: r.cancelId,
    failure: r.failureCode ? { code: r.failureCode, pg_code: r.failurePgCode, message: r.failureMessage } : null,
    requested_by: { api_key_id: r.requestedByApiKeyId, name: r.requestedByName },
    attempts: r.attempts,
    created_at: r.createdAt.toISOString(),
    updated_at: r.updatedAt.toISOString(),
    completed_at: r.completedAt?.toISOString() ?? null,
  };
}
