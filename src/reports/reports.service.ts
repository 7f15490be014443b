import { Inject, Injectable } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { DataSource } from 'typeorm';
import { BillingInterval, fromZonedParts, monthlyAmount } from '../billing-math';
import { Clock, EARLIEST_SUPPORTED_INSTANT, LATEST_SUPPORTED_INSTANT } from '../common/clock';
import { InvalidInputError } from '../common/errors';
import { BootpayGateway } from '../gateway/bootpay.gateway';
import { Runtime, RUNTIME } from '../config/runtime';
import {
  checkPayment,
  checkReservation,
  Difference,
  LEDGER_PAYMENT_COLUMNS,
  LedgerPayment,
  mapLimited,
  RECONCILE_CONCURRENCY,
  RECONCILED_PAYMENT_STATUSES,
} from './reconciliation';
import { ReconciliationRunsService } from './reconciliation-runs.service';

export type { Difference };

/**
 * Monthly value of a plan's price, in won: the basis of MRR (billing-math's, in exact integers rounded half up once:
 * 6,999 won every 2 weeks is 6,999 × 52 / 12 / 2 = 15,164.5 → 15,165).
 */
export { monthlyAmount };

@Injectable()
export class ReportsService {
  constructor(
    @InjectDataSource() private readonly db: DataSource,
    private readonly clock: Clock,
    private readonly gateway: BootpayGateway,
    @Inject(RUNTIME) private readonly runtime: Runtime,
    private readonly reconciliationRuns: ReconciliationRunsService,
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
   * Compares the local ledger of a business day with Bootpay's:
   * - every payment approved, refunded or changed here that day is checked against its receipt at Bootpay (amount,
   *   tax-free, status, cumulative cancels);
   * - so is every payment approved in the RECONCILE_WINDOW_DAYS before, and it is listed when Bootpay recorded a change
   *   of it that day (a cancel made in Bootpay's console whose webhook was lost: the receipt's cancelled_at);
   * - every reservation outstanding, or due to execute that day, is compared with Bootpay's (reserved, paid, declined,
   *   revoked).
   * Bootpay has no listing API, so what Bootpay holds and we do not know of cannot be found from here.
   */
  async reconciliation(date: string) {
    const { start, end } = this.day(date);
    const windowStart = new Date(end.getTime() - this.runtime.config.reconcile.windowDays * 24 * 60 * 60 * 1000);
    const payments: (LedgerPayment & { changed_here: boolean })[] = await this.db.query(
      `SELECT ${LEDGER_PAYMENT_COLUMNS},
              COALESCE((approved_at >= $1 AND approved_at < $2) OR (updated_at >= $1 AND updated_at < $2), false) AS changed_here
       FROM payments
       WHERE status = ANY($4) AND amount > 0
         AND ((approved_at >= $1 AND approved_at < $2) OR (updated_at >= $1 AND updated_at < $2)
              OR (status IN ('DONE', 'PARTIAL_CANCELED') AND approved_at >= $3 AND approved_at < $1))
       ORDER BY changed_here DESC, approved_at NULLS LAST, id LIMIT 5000`,
      [start, end, windowStart, RECONCILED_PAYMENT_STATUSES],
    );
    const inDay = (d: Date | null) => d !== null && d >= start && d < end;
    const checks = await mapLimited(payments, RECONCILE_CONCURRENCY, (p) => checkPayment(this.gateway, p));
    // Earlier payments count only when Bootpay recorded something of theirs that day.
    const listed = checks.filter((c) => c.payment.changed_here || (c.receipt && (inDay(c.receipt.cancelledAt) || inDay(c.receipt.purchasedAt))));
    const differences: Difference[] = listed.flatMap((c) =>
      c.differences.map((d) => ({ ...d, ...(c.payment.changed_here ? {} : { bootpay_changed_at: c.receipt?.cancelledAt?.toISOString() ?? null }) })),
    );
    const reservations: LedgerPayment[] = await this.db.query(
      `SELECT ${LEDGER_PAYMENT_COLUMNS} FROM payments
       WHERE reserve_id IS NOT NULL AND (status = 'READY' OR (reserve_execute_at >= $1 AND reserve_execute_at < $2))
       ORDER BY reserve_execute_at, id LIMIT 5000`,
      [start, end],
    );
    for (const found of await mapLimited(reservations, RECONCILE_CONCURRENCY, (p) => checkReservation(this.gateway, p))) differences.push(...found);
    return {
      date,
      time_zone: this.runtime.config.businessTimeZone,
      from: start.toISOString(),
      to: end.toISOString(),
      checked: checks.filter((c) => c.receipt).length + reservations.length,
      payments: listed.length,
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
    const mrr = plans.reduce((sum, p) => sum + monthlyAmount(Number(p.amount), p.interval as BillingInterval, p.interval_count) * p.n, 0);
    const byStatus: { status: string; n: number }[] = await this.db.query(`SELECT status, count(*)::int AS n FROM subscriptions GROUP BY status`);
    const [{ churned }] = await this.db.query(
      `SELECT count(*)::int AS churned FROM subscriptions WHERE status = 'canceled' AND ended_at >= $1 AND ended_at <= $2`,
      [from, to],
    );
    const recovered: { attempt: number; n: number; amount: string }[] = await this.db.query(
      `SELECT attempt, count(*)::int AS n, coalesce(sum(amount), 0) AS amount FROM payments
       WHERE kind = 'period' AND attempt > 1 AND status IN ('DONE', 'PARTIAL_CANCELED', 'CANCELED') AND approved_at >= $1 AND approved_at <= $2
       GROUP BY attempt ORDER BY attempt`,
      [from, to],
    );
    const counts = Object.fromEntries(byStatus.map((r) => [r.status, r.n]));
    const reconciliation = await this.reconciliationRuns.persistentDifferences();
    return {
      currency: 'KRW',
      mrr,
      active: (counts.active ?? 0) as number,
      counts_by_status: counts,
      churned,
      recovered_by_retry: recovered.map((r) => ({ attempt: r.attempt, retry_step: r.attempt - 1, payments: r.n, amount: Number(r.amount) })),
      from: from.toISOString(),
      to: to.toISOString(),
      reconciliation,
    };
  }
}
