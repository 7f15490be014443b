import type { PaymentResponseDto } from './payment.dto';
import type { PaymentEntity } from './payment.entity';

/** A payment as the API (and its webhooks) show it. */
export function paymentView(p: PaymentEntity): PaymentResponseDto {
  return {
    id: p.id,
    subscription_id: p.subscriptionId,
    customer_id: p.customerId,
    billing_key_id: p.billingKeyId,
    kind: p.kind,
    order_id: p.orderId,
    order_name: p.orderName,
    receipt_id: p.receiptId,
    reserve_id: p.reserveId,
    currency: 'KRW',
    amount: p.amount,
    tax_free_amount: p.taxFreeAmount,
    vat: p.vat,
    supply_amount: p.amount - p.taxFreeAmount - p.vat,
    balance_amount: p.balanceAmount,
    status: p.status,
    attempt: p.attempt,
    period: { index: p.periodIndex, start: p.periodStart.toISOString(), end: p.periodEnd.toISOString() },
    plan_id: p.planId,
    failure: p.failureCode ? { code: p.failureCode, pg_code: p.failurePgCode, message: p.failureMessage, hard: p.failureHard } : null,
    card: p.cardNoMasked || p.cardCompany ? { company: p.cardCompany, number_masked: p.cardNoMasked } : null,
    receipt_url: p.receiptUrl,
    charge_run_id: p.chargeRunId,
    not_applied: p.notApplied,
    credit_applied: p.creditApplied ?? 0,
    consent_id: p.consentId ?? null,
    requested_at: p.requestedAt.toISOString(),
    approved_at: p.approvedAt?.toISOString() ?? null,
    canceled_at: p.canceledAt?.toISOString() ?? null,
    created_at: p.createdAt.toISOString(),
    updated_at: p.updatedAt.toISOString(),
  };
}
