import { randomUUID } from 'node:crypto';
import { vatOf } from '../billing-math';
import type { GatewayReceipt } from '../gateway/gateway.types';
import { PaymentEntity } from '../payments/payment.entity';

export type NewPayment = Pick<
  PaymentEntity,
  | 'subscriptionId'
  | 'customerId'
  | 'billingKeyId'
  | 'kind'
  | 'orderId'
  | 'orderName'
  | 'amount'
  | 'taxFreeAmount'
  | 'status'
  | 'attempt'
  | 'periodIndex'
  | 'periodStart'
  | 'periodEnd'
  | 'planId'
> &
  Partial<Pick<PaymentEntity, 'chargeRunId' | 'reserveExecuteAt' | 'creditApplied' | 'consentId'>>;

/** A payment attempt as first recorded (before Bootpay is asked): VAT by the Korean rule, the whole amount as balance. */
export function newPayment(init: NewPayment, now: Date): PaymentEntity {
  return Object.assign(new PaymentEntity(), {
    id: randomUUID(),
    receiptId: null,
    reserveId: null,
    reserveExecuteAt: null,
    vat: vatOf(init.amount, init.taxFreeAmount),
    balanceAmount: init.amount,
    refundedTaxFree: 0,
    failureCode: null,
    failurePgCode: null,
    failureMessage: null,
    failureHard: null,
    chargeRunId: null,
    notApplied: null,
    creditApplied: 0,
    consentId: null,
    requestedAt: now,
    approvedAt: null,
    canceledAt: null,
    cardCompany: null,
    cardNoMasked: null,
    receiptUrl: null,
    createdAt: now,
    updatedAt: now,
    ...init,
  });
}

/** The fields applyApproval sets, and nothing else (the charge run's batch statement writes exactly these). */
export const APPROVAL_FIELDS = [
  'status',
  'approvedAt',
  'receiptId',
  'cardCompany',
  'cardNoMasked',
  'receiptUrl',
  'updatedAt',
] as const satisfies readonly (keyof PaymentEntity)[];

/** An approved attempt: DONE, with Bootpay's receipt when the answer carried one (a duplicate-order answer does not). */
export function applyApproval(payment: PaymentEntity, receipt: GatewayReceipt | null, now: Date): void {
  payment.status = 'DONE';
  payment.approvedAt = receipt?.purchasedAt ?? now;
  payment.updatedAt = now;
  if (receipt) {
    payment.receiptId = receipt.receiptId;
    payment.cardCompany = receipt.cardCompany;
    payment.cardNoMasked = receipt.cardNoMasked;
    payment.receiptUrl = receipt.receiptUrl;
  }
}
