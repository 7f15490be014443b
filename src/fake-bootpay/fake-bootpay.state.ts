/**
 * The fake's in-memory state: the records of billing keys, payments and reservations, the maps they are looked up by
 * (order id, billing key, receipt id, reserve id), what its ledger reports, and the ids it hands out.
 */
import { randomBytes } from 'node:crypto';
import type { DeclineScenario } from './test-cards';
import type { FakeLedger, LedgerCancel, LedgerFailedCharge, LedgerWebhook } from './fake-bootpay.types';
import { FakeHttpError } from './fake-bootpay.http';

/** Reservation status numbers (an assumption: Bootpay does not document them). */
export const RESERVATION_STATUS = Object.freeze({
  RESERVED: 1,
  EXECUTING: 2,
  EXECUTED: 3,
  EXECUTION_FAILED: -3,
  REVOKED: -1,
});

export const STATUS_LOCALE: Readonly<Record<number, string>> = {
  1: '결제완료',
  11: '빌링키발급완료',
  20: '결제취소완료',
  [-2]: '결제승인실패',
  [-11]: '빌링키삭제',
};

export type KeyBehavior = DeclineScenario | 'approve' | null;

export interface BillingKeyRec {
  billingKey: string;
  receiptId: string;
  subscriptionId: string;
  orderName: string;
  pg: string;
  cardNoMasked: string;
  cardCompany: string;
  cardCompanyCode: string;
  cardScenario: DeclineScenario | null;
  behavior: KeyBehavior;
  chargeAttempts: number;
  activeReservations: number;
  requestedAt: Date;
  publishedAt: Date;
  expireAt: Date;
  destroyedAt: Date | null;
  metadata: unknown;
  user: unknown;
}

export interface PaymentRec {
  receiptId: string;
  orderId: string;
  orderName: string;
  price: number;
  taxFree: number;
  cancelledPrice: number;
  cancelledTaxFree: number;
  status: number;
  pg: string;
  requestedAt: Date;
  purchasedAt: Date | null;
  cancelledAt: Date | null;
  metadata: unknown;
  user: unknown;
  feedbackUrl: string | null;
  bkSuffix: string;
  cardNoMasked: string;
  cardCompany: string;
  cardCompanyCode: string;
  tid: string;
  approveNo: string | null;
  source: 'charge' | 'reservation';
  failure: { errorCode: string; pgErrorCode: string | null; message: string } | null;
  cancelIds: Set<string>;
}

export interface ReservationRec {
  reserveId: string;
  bk: BillingKeyRec;
  orderId: string;
  orderName: string;
  price: number;
  taxFree: number;
  metadata: unknown;
  user: unknown;
  feedbackUrl: string | null;
  contentType: string;
  requestedAt: Date;
  executeAt: Date;
  startedAt: Date | null;
  finishedAt: Date | null;
  revokedAt: Date | null;
  status: number;
  receiptId: string | null;
}

/** Random bytes from a pooled buffer (one syscall per 4 KiB instead of one per id). */
let randomPool = Buffer.alloc(0);
let randomPoolOffset = 0;
export function pooledRandom(size: number): Buffer {
  if (randomPoolOffset + size > randomPool.length) {
    randomPool = randomBytes(4096);
    randomPoolOffset = 0;
  }
  const out = randomPool.subarray(randomPoolOffset, randomPoolOffset + size);
  randomPoolOffset += size;
  return out;
}

export const hexId = (): string => pooledRandom(12).toString('hex');
export const iso = (d: Date | null | undefined): string | null => (d ? d.toISOString() : null);
export const suffix = (billingKey: string): string => billingKey.slice(-4);

/** What the route handlers need of the server (FakeBootpayServer): its base URL and its clock. */
export interface FakeSite {
  readonly url: string;
  now(): Date;
}

/** The records and their lookup maps; cleared by reset(), read by the ledger. */
export class FakeState {
  billingKeys = new Map<string, BillingKeyRec>();
  billingKeysByReceipt = new Map<string, BillingKeyRec>();
  billingKeyList: BillingKeyRec[] = [];
  payments = new Map<string, PaymentRec>();
  paymentList: PaymentRec[] = [];
  approvedOrderIds = new Map<string, string>();
  reservations = new Map<string, ReservationRec>();
  reservationList: ReservationRec[] = [];
  activeReservations = new Map<string, ReservationRec>();
  activeReservationOrderIds = new Map<string, string>();
  failedCharges: LedgerFailedCharge[] = [];
  cancels: LedgerCancel[] = [];
  webhookEntries: LedgerWebhook[] = [];

  /** Forgets every billing key, payment, reservation, cancel and webhook record. */
  clear(): void {
    this.billingKeys.clear();
    this.billingKeysByReceipt.clear();
    this.billingKeyList = [];
    this.payments.clear();
    this.paymentList = [];
    this.approvedOrderIds.clear();
    this.reservations.clear();
    this.reservationList = [];
    this.activeReservations.clear();
    this.activeReservationOrderIds.clear();
    this.failedCharges = [];
    this.cancels = [];
    this.webhookEntries = [];
  }

  ledger(): FakeLedger {
    return {
      charges: this.paymentList
        .filter((p) => p.failure === null)
        .map((p) => ({
          receipt_id: p.receiptId,
          order_id: p.orderId,
          billing_key_suffix: p.bkSuffix,
          price: p.price,
          tax_free: p.taxFree,
          cancelled_price: p.cancelledPrice,
          status: p.status,
          purchased_at: iso(p.purchasedAt) as string,
          source: p.source,
        })),
      failed_charges: this.failedCharges.map((f) => ({ ...f })),
      cancels: this.cancels.map((c) => ({ ...c })),
      reservations: this.reservationList.map((r) => ({
        reserve_id: r.reserveId,
        order_id: r.orderId,
        status: r.status,
        price: r.price,
        reserve_execute_at: r.executeAt.toISOString(),
        ...(r.receiptId ? { receipt_id: r.receiptId } : {}),
        ...(r.revokedAt ? { revoked_at: r.revokedAt.toISOString() } : {}),
        billing_key_suffix: suffix(r.bk.billingKey),
      })),
      billing_keys: this.billingKeyList.map((b) => ({
        receipt_id: b.receiptId,
        billing_key_suffix: suffix(b.billingKey),
        card_no_masked: b.cardNoMasked,
        card_company: b.cardCompany,
        status: b.destroyedAt ? ('destroyed' as const) : ('active' as const),
        behavior: b.behavior,
        published_at: b.publishedAt.toISOString(),
        ...(b.destroyedAt ? { destroyed_at: b.destroyedAt.toISOString() } : {}),
      })),
      webhooks: this.webhookEntries.map((w) => ({ ...w, history: w.history.map((h) => ({ ...h })) })),
    };
  }

  recordPayment(p: PaymentRec): void {
    this.payments.set(p.receiptId, p);
    this.paymentList.push(p);
    if (p.failure === null) this.approvedOrderIds.set(p.orderId, p.receiptId);
  }

  duplicateOrder(orderId: string, alsoReservations: boolean): void {
    if (this.approvedOrderIds.has(orderId) || (alsoReservations && this.activeReservationOrderIds.has(orderId))) {
      throw new FakeHttpError(400, 'RC_DUPLICATE_ORDER_ID', '이미 결제된 주문번호(order_id)입니다');
    }
  }
}
