import type { Runtime } from '../../config/runtime';
import { PaymentStatus } from '../../payments/payment.entity';
import { RefundResponseDto } from '../dto/refund.dto';

/*
 * What the refund actions beside this file share: the types RefundsService answers with (it re-exports them), the
 * payment statuses a refund is allowed from, the sender's lease, and the log context.
 */

/** The log context of every refund action: the service's, so their log lines read as before. */
export const REFUNDS_LOG_CONTEXT = 'RefundsService';

export type RefundView = RefundResponseDto;

export interface RefundInput {
  /** Whole won; omitted: the whole remaining balance. */
  amount?: number;
  /** Tax-free part; omitted: proportional (all the remaining tax-free part for a full refund). */
  taxFreeAmount?: number;
  reason: string;
}

export interface ResolveUnknownSummary {
  /** Refunds taken up (unknown ones, and pending ones whose sender went away). */
  examined: number;
  succeeded: number;
  failed: number;
  /** Still without an answer: tried again at the next call. */
  unknown: number;
}

/** Only settled, not fully refunded payments can be refunded. */
export const REFUNDABLE_PAYMENT_STATUSES: PaymentStatus[] = ['DONE', 'PARTIAL_CANCELED'];

/**
 * How long a sender holds a refund: past it (the sender crashed or hangs), resolveUnknown takes a pending refund
 * over and re-sends its cancel_id. Longer than a cancel plus a receipt lookup can take.
 */
export function refundLeaseMs(runtime: Runtime): number {
  return Math.max(60_000, 2 * runtime.gateway.chargeTimeoutMs + runtime.gateway.timeoutMs);
}
