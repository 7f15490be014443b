import { Inject, Injectable } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { DataSource } from 'typeorm';
import { fromZonedParts } from '../billing-math';
import { Clock, EARLIEST_SUPPORTED_INSTANT, LATEST_SUPPORTED_INSTANT } from '../common/clock';
import { InvalidInputError } from '../common/errors';
import { BootpayGateway } from '../gateway/bootpay.gateway';
import { GatewayError, GatewayNotFoundError } from '../gateway/gateway.errors';
import { RECEIPT_STATUS, RESERVATION_STATUS } from '../gateway/gateway.types';
import { Runtime, RUNTIME } from '../runtime';

export interface Difference {
  kind: 'payment' | 'reservation';
  id: string;
  receipt_id?: string | null;
  reserve_id?: string | null;
  field: string;
  local: unknown;
  bootpay: unknown;
}

/** Monthly value of a plan's price, in won: the basis of MRR. */
export function monthlyAmount(amount: number, interval: string, count: number): number {
  const perMonth: Record<string, number> = { day: 365 / 12, week: 52 / 12, month: 1, year: 1 / 12 };
  return Math.round((amount * (perMonth[interval] ?? 1)) / count);
}

@Injectable()
export class ReportsService {
  constructor(
    @InjectDataSource() private readonly db: DataSource,
    private readonly clock: Clock,
    private readonly gateway: BootpayGateway,
    @Inject(RUNTIME) private readonly runtime: Runtime,
  ) {}

  /** The business day [start, end) of a YYYY-MM-DD date in the business time zone. */
  private day(date: string): { start: Date; end: Date } {
    const [y, m, d] = date.split('-').map(Number);
    const first = EARLIEST_SUPPORTED_INSTANT.toISOString().slice(0, 10);
    const last = LATEST_SUPPORTED_INSTANT.toISOString().slice(0, 10);
    // Days outside the service's range (year 0000 is none at all for PostgreSQL) hold nothing to reconcile.
    if (!(date >= first && date <= last)) {
      throw new InvalidInputError([{ field: 'date', message: `date must be a day from ${first} to ${last}` }]);
    }
    const tz = this.runtime.config.businessTimeZone;
    const start = fromZonedParts({ year: y, month: m, day: d }, tz);
    const next = new Date(Date.UTC(y, m - 1, d + 1));
    const end = fromZonedParts({ year: next.getUTCFullYear(), month: next.getUTCMonth() + 1, day: next.getUTCDate() }, tz);
    return { start, end };
  }

  /**
   * Compares the local ledger of a business day with Bootpay's: every payment approved, refunded or changed that day
   * is checked against its receipt at Bootpay (amount, tax-free, status, cumulative cancels), and every outstanding
   * reservation against Bootpay's reservation. Bootpay has no listing API, so what Bootpay holds and we do not know
   * of cannot be found from here (its webhooks and the admin console cover that).
   */
  async reconciliation(date: string) {
    const { start, end } = this.day(date);
    const payments: {
      id: string;
      receipt_id: string | null;
      order_id: string;
      amount: string;
      tax_free_amount: string;
      balance_amount: string;
      refunded_tax_free: string;
      status: string;
    }[] = await this.db.query(
      `SELECT id, receipt_id, order_id, amount, tax_free_amount, balance_amount, refunded_tax_free, status FROM payments
       WHERE status IN ('DONE', 'PARTIAL_CANCELED', 'CANCELED', 'UNKNOWN')
         AND ((approved_at >= $1 AND approved_at < $2) OR (updated_at >= $1 AND updated_at < $2))
       ORDER BY approved_at NULLS LAST, id LIMIT 5000`,
      [start, end],
    );
    const differences: Difference[] = [];
    let checked = 0;
    for (const p of payments) {
      const diff = (field: string, local: unknown, bootpay: unknown) =>
        differences.push({ kind: 'payment', id: p.id, receipt_id: p.receipt_id, field, local, bootpay });
      if (!p.receipt_id) {
        diff('receipt_id', null, p.status === 'UNKNOWN' ? 'outcome unknown: resolved by the next charge run' : 'receipt not known yet');
        continue;
      }
      checked++;
      try {
        const r = await this.gateway.getReceipt(p.receipt_id);
        if (r.orderId !== p.order_id) diff('order_id', p.order_id, r.orderId);
        if (r.price !== Number(p.amount)) diff('amount', Number(p.amount), r.price);
        if (r.taxFree !== Number(p.tax_free_amount)) diff('tax_free_amount', Number(p.tax_free_amount), r.taxFree);
        const refunded = Number(p.amount) - Number(p.balance_amount);
        if (r.cancelledPrice !== refunded) diff('refunded_amount', refunded, r.cancelledPrice);
        if (r.cancelledTaxFree !== Number(p.refunded_tax_free)) diff('refunded_tax_free', Number(p.refunded_tax_free), r.cancelledTaxFree);
        const bootpayStatus =
          r.status === RECEIPT_STATUS.CANCELLED ? 'CANCELED' : r.status === RECEIPT_STATUS.COMPLETED ? (r.cancelledPrice > 0 ? 'PARTIAL_CANCELED' : 'DONE') : `status ${r.status}`;
        if (bootpayStatus !== p.status) diff('status', p.status, bootpayStatus);
      } catch (err) {
        diff('receipt', 'exists', err instanceof GatewayNotFoundError ? 'not found at Bootpay' : `not checked (${err instanceof GatewayError ? err.code : 'error'})`);
      }
    }
    const reservations: { id: string; reserve_id: string; amount: string }[] = await this.db.query(
      `SELECT id, reserve_id, amount FROM payments WHERE status = 'READY' AND reserve_id IS NOT NULL ORDER BY reserve_execute_at LIMIT 5000`,
    );
    for (const p of reservations) {
      checked++;
      try {
        const r = await this.gateway.lookupReservation(p.reserve_id);
        if (r.status !== RESERVATION_STATUS.RESERVED) {
          differences.push({ kind: 'reservation', id: p.id, reserve_id: p.reserve_id, field: 'status', local: 'reserved', bootpay: r.receiptId ? `executed (${r.receiptId})` : r.status === RESERVATION_STATUS.REVOKED ? 'revoked' : `status ${r.status}` });
        }
        if (r.price !== Number(p.amount)) differences.push({ kind: 'reservation', id: p.id, reserve_id: p.reserve_id, field: 'amount', local: Number(p.amount), bootpay: r.price });
      } catch (err) {
        differences.push({ kind: 'reservation', id: p.id, reserve_id: p.reserve_id, field: 'reservation', local: 'reserved', bootpay: err instanceof GatewayNotFoundError ? 'not found at Bootpay' : 'not checked' });
      }
    }
    return {
      date,
      time_zone: this.runtime.config.businessTimeZone,
      from: start.toISOString(),
      to: end.toISOString(),
      checked,
      payments: payments.length,
      reservations: reservations.length,
      differences,
      generated_at: this.clock.now().toISOString(),
    };
  }

  /** MRR, counts, churn and the payments recovered at each retry step. */
  async summary(opts: { from?: Date; to?: Date } = {}) {
    const to = opts.to ?? this.clock.now();
    const from = opts.from ?? new Date(to.getTime() - 30 * 24 * 60 * 60 * 1000);
    const plans: { interval: string; interval_count: number; amount: string; n: number }[] = await this.db.query(
      `SELECT p.interval, p.interval_count, p.amount, count(*)::int AS n FROM subscriptions s JOIN plans p ON p.id = s.plan_id
       WHERE s.status IN ('active', 'past_due') GROUP BY p.interval, p.interval_count, p.amount`,
    );
    const mrr = plans.reduce((sum, p) => sum + monthlyAmount(Number(p.amount), p.interval, p.interval_count) * p.n, 0);
    const byStatus: { status: string; n: number }[] = await this.db.query(`SELECT status, count(*)::int AS n FROM subscriptions GROUP BY status`);
    const [{ churned }] = await this.db.query(`SELECT count(*)::int AS churned FROM subscriptions WHERE status = 'canceled' AND ended_at >= $1 AND ended_at <= $2`, [from, to]);
    const recovered: { attempt: number; n: number; amount: string }[] = await this.db.query(
      `SELECT attempt, count(*)::int AS n, coalesce(sum(amount), 0) AS amount FROM payments
       WHERE kind = 'period' AND attempt > 1 AND status IN ('DONE', 'PARTIAL_CANCELED', 'CANCELED') AND approved_at >= $1 AND approved_at <= $2
       GROUP BY attempt ORDER BY attempt`,
      [from, to],
    );
    const counts = Object.fromEntries(byStatus.map((r) => [r.status, r.n]));
    return {
      currency: 'KRW',
      mrr,
      active: (counts.active ?? 0) as number,
      counts_by_status: counts,
      churned,
      recovered_by_retry: recovered.map((r) => ({ attempt: r.attempt, retry_step: r.attempt - 1, payments: r.n, amount: Number(r.amount) })),
      from: from.toISOString(),
      to: to.toISOString(),
    };
  }
}
