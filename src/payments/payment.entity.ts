import { Column, Entity, PrimaryGeneratedColumn } from 'typeorm';
import { bigintNumber } from '../common/transformers';

/**
 * Shaped after the Payment object of the design seed. READY: a Bootpay reservation waiting to execute (reservation
 * mode). IN_PROGRESS: recorded, being sent. UNKNOWN: sent to Bootpay without an answer; it is resolved (by asking
 * Bootpay) before the subscription may be charged again.
 */
export type PaymentStatus = 'READY' | 'IN_PROGRESS' | 'UNKNOWN' | 'DONE' | 'ABORTED' | 'CANCELED' | 'PARTIAL_CANCELED';
/** Not settled yet: a settle may still change them. */
export const OPEN_PAYMENT_STATUSES: PaymentStatus[] = ['READY', 'IN_PROGRESS', 'UNKNOWN'];
/** Sent (or about to be) and not answered: nothing else may be done to the subscription meanwhile. */
export const IN_FLIGHT_PAYMENT_STATUSES: PaymentStatus[] = ['IN_PROGRESS', 'UNKNOWN'];

@Entity({ name: 'payments' })
export class PaymentEntity {
  @PrimaryGeneratedColumn('uuid') id: string;
  @Column({ name: 'subscription_id', type: 'uuid' }) subscriptionId: string;
  @Column({ name: 'customer_id', type: 'uuid' }) customerId: string;
  @Column({ name: 'billing_key_id', type: 'uuid' }) billingKeyId: string;
  @Column({ type: 'varchar', length: 16 }) kind: 'period' | 'proration';
  @Column({ name: 'order_id', type: 'varchar', length: 64 }) orderId: string;
  @Column({ name: 'order_name', type: 'varchar', length: 100 }) orderName: string;
  @Column({ name: 'receipt_id', type: 'varchar', length: 64, nullable: true }) receiptId: string | null;
  @Column({ name: 'reserve_id', type: 'varchar', length: 64, nullable: true }) reserveId: string | null;
  /** Reservation mode: when Bootpay executes the reservation (READY: registered, or registration unconfirmed while reserve_id is null). */
  @Column({ name: 'reserve_execute_at', type: 'timestamptz', nullable: true }) reserveExecuteAt: Date | null;
  /** Charged at the card (0 when the subscription's credit covered it all: never sent to Bootpay). */
  @Column({ type: 'bigint', transformer: bigintNumber }) amount: number;
  /** The subscription's credit used for this charge, on top of `amount`. */
  @Column({ name: 'credit_applied', type: 'bigint', transformer: bigintNumber }) creditApplied: number;
  @Column({ name: 'tax_free_amount', type: 'bigint', transformer: bigintNumber }) taxFreeAmount: number;
  @Column({ type: 'bigint', transformer: bigintNumber }) vat: number;
  @Column({ name: 'balance_amount', type: 'bigint', transformer: bigintNumber }) balanceAmount: number;
  @Column({ name: 'refunded_tax_free', type: 'bigint', transformer: bigintNumber }) refundedTaxFree: number;
  @Column({ type: 'varchar', length: 24 }) status: PaymentStatus;
  @Column({ type: 'integer' }) attempt: number;
  @Column({ name: 'period_index', type: 'integer' }) periodIndex: number;
  @Column({ name: 'period_start', type: 'timestamptz' }) periodStart: Date;
  @Column({ name: 'period_end', type: 'timestamptz' }) periodEnd: Date;
  @Column({ name: 'plan_id', type: 'uuid' }) planId: string;
  @Column({ name: 'failure_code', type: 'varchar', length: 64, nullable: true }) failureCode: string | null;
  @Column({ name: 'failure_pg_code', type: 'varchar', length: 64, nullable: true }) failurePgCode: string | null;
  @Column({ name: 'failure_message', type: 'varchar', length: 500, nullable: true }) failureMessage: string | null;
  @Column({ name: 'failure_hard', type: 'boolean', nullable: true }) failureHard: boolean | null;
  @Column({ name: 'charge_run_id', type: 'uuid', nullable: true }) chargeRunId: string | null;
  /**
   * Why an approved payment was not applied to its subscription (it met a state that refused it: paused, ended, a
   * period already paid or replaced): such a payment is refunded and does not count as its period's payment.
   */
  @Column({ name: 'not_applied', type: 'varchar', length: 64, nullable: true }) notApplied: string | null;
  /** The consent this charge relied on (a paid conversion, or the first charge at a migrated higher price; 전자상거래법 13⑥). */
  @Column({ name: 'consent_id', type: 'uuid', nullable: true }) consentId: string | null;
  @Column({ name: 'requested_at', type: 'timestamptz' }) requestedAt: Date;
  @Column({ name: 'approved_at', type: 'timestamptz', nullable: true }) approvedAt: Date | null;
  @Column({ name: 'canceled_at', type: 'timestamptz', nullable: true }) canceledAt: Date | null;
  @Column({ name: 'card_company', type: 'varchar', length: 64, nullable: true }) cardCompany: string | null;
  @Column({ name: 'card_no_masked', type: 'varchar', length: 32, nullable: true }) cardNoMasked: string | null;
  @Column({ name: 'receipt_url', type: 'varchar', length: 500, nullable: true }) receiptUrl: string | null;
  @Column({ name: 'created_at', type: 'timestamptz' }) createdAt: Date;
  @Column({ name: 'updated_at', type: 'timestamptz' }) updatedAt: Date;
}
