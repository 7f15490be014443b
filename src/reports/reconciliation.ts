import { BootpayGateway } from '../gateway/bootpay.gateway';
import { GatewayError, GatewayNotFoundError } from '../gateway/gateway.errors';
import { GatewayReceipt, GatewayReservation, RECEIPT_STATUS, RESERVATION_STATUS } from '../gateway/gateway.types';

/** One way the local ledger and Bootpay disagree. */
export interface Difference {
  kind: 'payment' | 'reservation';
  id: string;
  receipt_id?: string | null;
  reserve_id?: string | null;
  field: string;
  local: unknown;
  bootpay: unknown;
}

/** A payment as the reconciliation reads it. */
export interface LedgerPayment {
  id: string;
  subscription_id: string;
  receipt_id: string | null;
  reserve_id: string | null;
  order_id: string;
  amount: string;
  tax_free_amount: string;
  balance_amount: string;
  refunded_tax_free: string;
  status: string;
  failure_code: string | null;
}

export const LEDGER_PAYMENT_COLUMNS =
  'id, subscription_id, receipt_id, reserve_id, order_id, amount, tax_free_amount, balance_amount, refunded_tax_free, status, failure_code';

/** The payment statuses whose receipt at Bootpay is compared. */
export const RECONCILED_PAYMENT_STATUSES = ['DONE', 'PARTIAL_CANCELED', 'CANCELED', 'UNKNOWN'];

/** The outcome of a reservation in words both sides share: reserved, paid, declined, revoked or executing. */
export type ReservationOutcome = 'reserved' | 'executing' | 'paid' | 'declined' | 'revoked' | `status ${number}`;

export function bootpayReservationOutcome(r: GatewayReservation): ReservationOutcome {
  switch (r.status) {
    case RESERVATION_STATUS.RESERVED:
      return 'reserved';
    case RESERVATION_STATUS.EXECUTING:
      return 'executing';
    case RESERVATION_STATUS.EXECUTED:
      return 'paid';
    case RESERVATION_STATUS.EXECUTION_FAILED:
      return 'declined';
    case RESERVATION_STATUS.REVOKED:
      return 'revoked';
    default:
      return `status ${r.status}`;
  }
}

/** The local payment of a reservation as a reservation outcome. */
export function localReservationOutcome(p: Pick<LedgerPayment, 'status' | 'failure_code'>): ReservationOutcome {
  switch (p.status) {
    case 'READY':
      return 'reserved';
    case 'IN_PROGRESS':
    case 'UNKNOWN':
      return 'executing';
    case 'DONE':
    case 'PARTIAL_CANCELED':
    case 'CANCELED':
      return 'paid';
    default:
      return p.failure_code === 'reservation_canceled' ? 'revoked' : 'declined';
  }
}

/** Bootpay's receipt status in the service's payment statuses. */
export function bootpayPaymentStatus(r: GatewayReceipt): string {
  if (r.status === RECEIPT_STATUS.CANCELLED) return 'CANCELED';
  if (r.status === RECEIPT_STATUS.COMPLETED) return r.cancelledPrice > 0 ? 'PARTIAL_CANCELED' : 'DONE';
  if (r.status === RECEIPT_STATUS.APPROVAL_FAILED) return 'declined';
  return `status ${r.status}`;
}

/** Differences between a payment and its receipt at Bootpay. */
export function compareReceipt(p: LedgerPayment, r: GatewayReceipt): Difference[] {
  const out: Difference[] = [];
  const diff = (field: string, local: unknown, bootpay: unknown) => out.push({ kind: 'payment', id: p.id, receipt_id: p.receipt_id, field, local, bootpay });
  if (r.orderId !== p.order_id) diff('order_id', p.order_id, r.orderId);
  if (r.price !== Number(p.amount)) diff('amount', Number(p.amount), r.price);
  if (r.taxFree !== Number(p.tax_free_amount)) diff('tax_free_amount', Number(p.tax_free_amount), r.taxFree);
  const refunded = Number(p.amount) - Number(p.balance_amount);
  if (r.cancelledPrice !== refunded) diff('refunded_amount', refunded, r.cancelledPrice);
  if (r.cancelledTaxFree !== Number(p.refunded_tax_free)) diff('refunded_tax_free', Number(p.refunded_tax_free), r.cancelledTaxFree);
  const status = bootpayPaymentStatus(r);
  if (status !== p.status) diff('status', p.status, status);
  return out;
}

/** What a check of one payment found: its differences, and the receipt when Bootpay answered. */
export interface PaymentCheck<P extends LedgerPayment = LedgerPayment> {
  payment: P;
  receipt: GatewayReceipt | null;
  differences: Difference[];
}

/** Fetches a payment's receipt and compares it; a payment without a receipt, or one Bootpay cannot show, is a difference. */
export async function checkPayment<P extends LedgerPayment>(gateway: BootpayGateway, p: P): Promise<PaymentCheck<P>> {
  const diff = (field: string, local: unknown, bootpay: unknown): Difference => ({
    kind: 'payment',
    id: p.id,
    receipt_id: p.receipt_id,
    field,
    local,
    bootpay,
  });
  if (!p.receipt_id) {
    return {
      payment: p,
      receipt: null,
      differences: [diff('receipt_id', null, p.status === 'UNKNOWN' ? 'outcome unknown: resolved by the next charge run' : 'receipt not known yet')],
    };
  }
  try {
    const receipt = await gateway.getReceipt(p.receipt_id);
    return { payment: p, receipt, differences: compareReceipt(p, receipt) };
  } catch (err) {
    return {
      payment: p,
      receipt: null,
      differences: [
        diff(
          'receipt',
          'exists',
          err instanceof GatewayNotFoundError ? 'not found at Bootpay' : `not checked (${err instanceof GatewayError ? err.code : 'error'})`,
        ),
      ],
    };
  }
}

/** Looks a reservation up at Bootpay and compares its outcome (reserved, paid, declined, revoked) and amount. */
export async function checkReservation(gateway: BootpayGateway, p: LedgerPayment): Promise<Difference[]> {
  const diff = (field: string, local: unknown, bootpay: unknown): Difference => ({
    kind: 'reservation',
    id: p.id,
    reserve_id: p.reserve_id,
    field,
    local,
    bootpay,
  });
  const local = localReservationOutcome(p);
  try {
    const r = await gateway.lookupReservation(p.reserve_id!);
    const out: Difference[] = [];
    const bootpay = bootpayReservationOutcome(r);
    if (bootpay !== local) {
      out.push({ ...diff('status', local, bootpay), ...(r.receiptId ? { receipt_id: r.receiptId } : {}) });
    }
    if (r.price !== Number(p.amount)) out.push(diff('amount', Number(p.amount), r.price));
    return out;
  } catch (err) {
    return [
      diff(
        'reservation',
        local,
        err instanceof GatewayNotFoundError ? 'not found at Bootpay' : `not checked (${err instanceof GatewayError ? err.code : 'error'})`,
      ),
    ];
  }
}

/** Runs `fn` over `items` with at most `limit` calls in flight, keeping the order of the items in the answer. */
export async function mapLimited<T, R>(items: readonly T[], limit: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const out = new Array<R>(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i]);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return out;
}

/** Lookups towards Bootpay in flight at once during a reconciliation. */
export const RECONCILE_CONCURRENCY = 8;
