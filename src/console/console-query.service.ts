import { Injectable, Logger } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { DataSource } from 'typeorm';

/**
 * The console's read-only queries, where the services have no list that fits a screen (search across customers,
 * a subscription's whole timeline, failed deliveries of every endpoint). Nothing here writes.
 */
export const PAGE_SIZE = 25;

export interface SubscriptionRow {
  id: string;
  status: string;
  dunning_attempts: number;
  next_charge_at: Date | null;
  current_period_end: Date | null;
  cancel_at_period_end: boolean;
  customer_id: string;
  customer_name: string;
  customer_email: string | null;
  external_id: string;
  plan_id: string;
  plan_name: string;
  plan_amount: string;
}

export interface PaymentRow {
  id: string;
  subscription_id: string;
  customer_id: string;
  customer_name: string;
  customer_email: string | null;
  kind: string;
  status: string;
  amount: string;
  tax_free_amount: string;
  vat: string;
  balance_amount: string;
  refunded_tax_free: string;
  attempt: number;
  period_start: Date;
  period_end: Date;
  failure_code: string | null;
  failure_message: string | null;
  reserve_id: string | null;
  reserve_execute_at: Date | null;
  approved_at: Date | null;
  canceled_at: Date | null;
  created_at: Date;
}

export interface EventRow {
  id: string;
  type: string;
  actor_type: string;
  actor_id: string | null;
  actor_name: string | null;
  reason: string | null;
  data: Record<string, unknown> | null;
  created_at: Date;
}

export interface RefundRow {
  id: string;
  payment_id: string;
  amount: string;
  tax_free_amount: string;
  vat: string;
  reason: string;
  status: string;
  failure_message: string | null;
  requested_by_name: string;
  created_at: Date;
}

export interface FinanceFlag {
  id: string;
  kind: string;
  subscription_id: string | null;
  payment_id: string | null;
  message: string | null;
  created_at: Date;
}

export interface ReconciliationDifferenceRow {
  id: string;
  kind: string;
  object_id: string;
  field: string;
  local: unknown;
  bootpay: unknown;
  first_seen_at: Date;
  runs_seen: number;
}

export interface DeliveryRow {
  id: string;
  status: string;
  attempts: number;
  last_status_code: number | null;
  last_error: string | null;
  updated_at: Date;
  created_at: Date;
  endpoint_id: string;
  endpoint_url: string;
  event_type: string;
  subscription_id: string | null;
}

export interface Paged<T> {
  rows: T[];
  page: number;
  hasMore: boolean;
}

function likePattern(q: string): string {
  return `%${q.replace(/[\\%_]/g, (c) => `\\${c}`)}%`;
}

function paged<T>(rows: T[], page: number): Paged<T> {
  return { rows: rows.slice(0, PAGE_SIZE), page, hasMore: rows.length > PAGE_SIZE };
}

@Injectable()
export class ConsoleQueryService {
  private readonly logger = new Logger(ConsoleQueryService.name);

  constructor(@InjectDataSource() private readonly db: DataSource) {}

  async pastDueByStage(): Promise<{ stage: number; n: number }[]> {
    return this.db.query(`SELECT dunning_attempts AS stage, count(*)::int AS n FROM subscriptions WHERE status = 'past_due' GROUP BY 1 ORDER BY 1`);
  }

  async problemCounts(): Promise<{ unknownPayments: number; failedDeliveries: number }> {
    const [row] = await this.db.query(
      `SELECT (SELECT count(*)::int FROM payments WHERE status = 'UNKNOWN') AS unknown_payments,
              (SELECT count(*)::int FROM webhook_deliveries WHERE status = 'failed') AS failed_deliveries`,
    );
    return { unknownPayments: row.unknown_payments, failedDeliveries: row.failed_deliveries };
  }

  /**
   * Open receipt mismatches flagged by the money path, from `finance_flags` when that table exists (it may not yet,
   * or may have other columns): then there are none to show.
   */
  async openFinanceFlags(): Promise<FinanceFlag[]> {
    try {
      const [{ present }] = await this.db.query(`SELECT to_regclass('public.finance_flags') IS NOT NULL AS present`);
      if (!present) return [];
      return await this.db.query(
        `SELECT id::text AS id, kind, subscription_id::text AS subscription_id, payment_id::text AS payment_id, message, created_at
         FROM finance_flags WHERE resolved_at IS NULL ORDER BY created_at DESC LIMIT 50`,
      );
    } catch (err) {
      this.logger.warn({ message: 'finance_flags could not be read', error_message: err instanceof Error ? err.message : String(err) });
      return [];
    }
  }

  /**
   * Open differences kept by the nightly reconciliation (`reconciliation_differences`), or null when this database
   * has no such table (then the overview checks yesterday with Bootpay instead).
   */
  async openReconciliationDifferences(): Promise<ReconciliationDifferenceRow[] | null> {
    try {
      const [{ present }] = await this.db.query(`SELECT to_regclass('public.reconciliation_differences') IS NOT NULL AS present`);
      if (!present) return null;
      return await this.db.query(
        `SELECT id::text AS id, kind, object_id::text AS object_id, field, local, bootpay, first_seen_at, runs_seen
         FROM reconciliation_differences WHERE resolved_at IS NULL ORDER BY first_seen_at DESC LIMIT 50`,
      );
    } catch (err) {
      this.logger.warn({ message: 'reconciliation_differences could not be read', error_message: err instanceof Error ? err.message : String(err) });
      return null;
    }
  }

  async lastRunIds(): Promise<{ last: string | null; lastCron: string | null }> {
    const [row] = await this.db.query(
      `SELECT (SELECT id FROM charge_runs ORDER BY started_at DESC, id DESC LIMIT 1) AS last,
              (SELECT id FROM charge_runs WHERE trigger = 'cron' ORDER BY started_at DESC, id DESC LIMIT 1) AS last_cron`,
    );
    return { last: row.last, lastCron: row.last_cron };
  }

  async plans(): Promise<{ id: string; name: string; amount: string }[]> {
    return this.db.query(`SELECT id, name, amount FROM plans ORDER BY active DESC, name, created_at`);
  }

  async searchSubscriptions(f: { q?: string; status?: string; planId?: string; stage?: number; page: number }): Promise<Paged<SubscriptionRow>> {
    const where: string[] = [];
    const params: unknown[] = [];
    const add = (sql: (n: (v: unknown) => string) => string) => where.push(sql((v) => `$${params.push(v)}`));
    if (f.q) {
      const q = f.q.trim();
      add((p) => {
        const exact = p(q);
        const like = p(likePattern(q));
        return `(s.id::text = ${exact} OR c.id::text = ${exact} OR c.external_id = ${exact} OR lower(c.email) = lower(${exact})
                 OR c.name ILIKE ${like} OR c.email ILIKE ${like} OR c.external_id ILIKE ${like})`;
      });
    }
    if (f.status) add((p) => `s.status = ${p(f.status)}`);
    if (f.planId) add((p) => `s.plan_id::text = ${p(f.planId)}`);
    if (f.stage !== undefined) add((p) => `s.status = 'past_due' AND s.dunning_attempts = ${p(f.stage)}`);
    const offset = (f.page - 1) * PAGE_SIZE;
    const rows: SubscriptionRow[] = await this.db.query(
      `SELECT s.id, s.status, s.dunning_attempts, s.next_charge_at, s.current_period_end, s.cancel_at_period_end,
              c.id AS customer_id, c.name AS customer_name, c.email AS customer_email, c.external_id,
              p.id AS plan_id, p.name AS plan_name, p.amount AS plan_amount
       FROM subscriptions s JOIN customers c ON c.id = s.customer_id JOIN plans p ON p.id = s.plan_id
       ${where.length ? `WHERE ${where.join(' AND ')}` : ''}
       ORDER BY s.created_at DESC, s.id DESC LIMIT ${PAGE_SIZE + 1} OFFSET ${offset}`,
      params,
    );
    return paged(rows, f.page);
  }

  async subscriptionContext(id: string): Promise<{
    customer: { id: string; name: string; email: string | null; external_id: string; phone: string | null };
    plan: { id: string; name: string; amount: string; tax_free_amount: string; interval: string; interval_count: number; charge_mode: string };
    card: { card_company: string | null; card_no_masked: string | null; status: string } | null;
    pendingPlanName: string | null;
  } | null> {
    const [row] = await this.db.query(
      `SELECT c.id AS c_id, c.name AS c_name, c.email AS c_email, c.external_id AS c_external_id, c.phone AS c_phone,
              p.id AS p_id, p.name AS p_name, p.amount AS p_amount, p.tax_free_amount AS p_tax_free, p.interval AS p_interval,
              p.interval_count AS p_interval_count, p.charge_mode AS p_charge_mode,
              k.card_company, k.card_no_masked, k.status AS k_status, pp.name AS pending_plan_name
       FROM subscriptions s JOIN customers c ON c.id = s.customer_id JOIN plans p ON p.id = s.plan_id
       LEFT JOIN billing_keys k ON k.id = s.billing_key_id LEFT JOIN plans pp ON pp.id = s.pending_plan_id
       WHERE s.id = $1`,
      [id],
    );
    if (!row) return null;
    return {
      customer: { id: row.c_id, name: row.c_name, email: row.c_email, external_id: row.c_external_id, phone: row.c_phone },
      plan: {
        id: row.p_id,
        name: row.p_name,
        amount: row.p_amount,
        tax_free_amount: row.p_tax_free,
        interval: row.p_interval,
        interval_count: row.p_interval_count,
        charge_mode: row.p_charge_mode,
      },
      card: row.k_status ? { card_company: row.card_company, card_no_masked: row.card_no_masked, status: row.k_status } : null,
      pendingPlanName: row.pending_plan_name,
    };
  }

  /** The newest 200 events, payments and refunds of a subscription. */
  async timeline(subscriptionId: string): Promise<{ events: EventRow[]; payments: PaymentRow[]; refunds: RefundRow[] }> {
    const [events, payments, refunds] = await Promise.all([
      this.db.query(
        `SELECT id, type, actor_type, actor_id, actor_name, reason, data, created_at FROM subscription_events
         WHERE subscription_id = $1 ORDER BY seq DESC LIMIT 200`,
        [subscriptionId],
      ),
      this.db.query(`${PAYMENT_SELECT} WHERE p.subscription_id = $1 ORDER BY p.created_at DESC, p.id DESC LIMIT 200`, [subscriptionId]),
      this.db.query(
        `SELECT id, payment_id, amount, tax_free_amount, vat, reason, status, failure_message, requested_by_name, created_at
         FROM refunds WHERE subscription_id = $1 ORDER BY created_at DESC LIMIT 200`,
        [subscriptionId],
      ),
    ]);
    return { events, payments, refunds };
  }

  async searchPayments(f: { status?: string[]; from?: Date; to?: Date; customer?: string; page: number }): Promise<Paged<PaymentRow>> {
    const where: string[] = [];
    const params: unknown[] = [];
    const p = (v: unknown) => `$${params.push(v)}`;
    if (f.status?.length) where.push(`p.status = ANY(${p(f.status)})`);
    if (f.from) where.push(`p.created_at >= ${p(f.from)}`);
    if (f.to) where.push(`p.created_at < ${p(f.to)}`);
    if (f.customer) {
      const q = f.customer.trim();
      const exact = p(q);
      const like = p(likePattern(q));
      where.push(`(c.id::text = ${exact} OR c.external_id = ${exact} OR lower(c.email) = lower(${exact}) OR c.name ILIKE ${like} OR c.email ILIKE ${like})`);
    }
    const rows: PaymentRow[] = await this.db.query(
      `${PAYMENT_SELECT} ${where.length ? `WHERE ${where.join(' AND ')}` : ''}
       ORDER BY p.created_at DESC, p.id DESC LIMIT ${PAGE_SIZE + 1} OFFSET ${(f.page - 1) * PAGE_SIZE}`,
      params,
    );
    return paged(rows, f.page);
  }

  async payment(id: string): Promise<PaymentRow | null> {
    const [row] = await this.db.query(`${PAYMENT_SELECT} WHERE p.id = $1`, [id]);
    return row ?? null;
  }

  async refundsOfPayment(paymentId: string): Promise<RefundRow[]> {
    return this.db.query(
      `SELECT id, payment_id, amount, tax_free_amount, vat, reason, status, failure_message, requested_by_name, created_at
       FROM refunds WHERE payment_id = $1 ORDER BY created_at DESC`,
      [paymentId],
    );
  }

  async deliveries(f: { status: string; page: number }): Promise<Paged<DeliveryRow>> {
    const rows: DeliveryRow[] = await this.db.query(
      `SELECT d.id, d.status, d.attempts, d.last_status_code, d.last_error, d.updated_at, d.created_at,
              w.id AS endpoint_id, w.url AS endpoint_url, e.type AS event_type, e.subscription_id
       FROM webhook_deliveries d JOIN webhook_endpoints w ON w.id = d.endpoint_id JOIN webhook_events e ON e.id = d.event_id
       WHERE d.status = $1 ORDER BY d.updated_at DESC, d.id DESC LIMIT ${PAGE_SIZE + 1} OFFSET ${(f.page - 1) * PAGE_SIZE}`,
      [f.status],
    );
    return paged(rows, f.page);
  }
}

const PAYMENT_SELECT = `SELECT p.id, p.subscription_id, p.customer_id, c.name AS customer_name, c.email AS customer_email, p.kind, p.status,
  p.amount, p.tax_free_amount, p.vat, p.balance_amount, p.attempt, p.period_start, p.period_end, p.failure_code, p.failure_message,
  p.reserve_id, p.reserve_execute_at, p.approved_at, p.canceled_at, p.created_at, p.refunded_tax_free
  FROM payments p JOIN customers c ON c.id = p.customer_id`;
