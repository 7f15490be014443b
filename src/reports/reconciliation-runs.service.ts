import { Inject, Injectable, Logger, OnModuleDestroy } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { DataSource } from 'typeorm';
import { Clock } from '../common/clock';
import { returnedRows } from '../common/db-errors';
import { InvalidInputError, NotFoundError } from '../common/errors';
import { isCursorInstant, Page, PageQueryDto } from '../common/pagination';
import { isUuid } from '../common/uuid.pipe';
import { BootpayGateway } from '../gateway/bootpay.gateway';
import { OutboxService } from '../outbound-webhooks/outbox.service';
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

export type ReconciliationTrigger = 'cron' | 'manual' | 'cli';

interface RunRow {
  id: string;
  trigger: ReconciliationTrigger;
  status: 'running' | 'completed' | 'failed';
  scheduled_for: Date | null;
  requested_by: string | null;
  window_from: Date;
  window_to: Date;
  payments_checked: number;
  reservations_checked: number;
  differences: StoredDifference[];
  new_differences: number;
  persistent_differences: number;
  resolved_differences: number;
  error: string | null;
  started_at: Date;
  finished_at: Date | null;
}

/** A difference as a run stores it: what was found, and since when it has been found. */
export interface StoredDifference extends Difference {
  subscription_id: string;
  first_seen_at: string;
  runs_seen: number;
  persistent: boolean;
}

/** A difference found by this many runs in a row persists: it is surfaced (summary, webhook). */
export const PERSISTENT_AFTER_RUNS = 2;
/**
 * A run still `running` this long after its start was cut off without a shutdown (the process was killed): the next
 * run marks it failed. A run checks one window of lookups and records at the end; it takes minutes, not hours.
 */
export const RECONCILIATION_STALE_AFTER_MS = 6 * 60 * 60 * 1000;

/** Thrown inside a run's lookups once a shutdown began: the run ends failed, with the reason. */
class Interrupted extends Error {
  constructor() {
    super('interrupted by a shutdown before its result was recorded; the next run checks the window again');
  }
}

const RUN_COLUMNS = `id, trigger, status, scheduled_for, requested_by, window_from, window_to, payments_checked, reservations_checked, differences,
  new_differences, persistent_differences, resolved_differences, error, started_at, finished_at`;

/**
 * The nightly reconciliation: checks a rolling window at Bootpay (every payment approved or changed in the last
 * RECONCILE_WINDOW_DAYS, and every reservation outstanding or executed in it), stores the result per run with each
 * difference's first-seen time, and tells of differences that persist (found by PERSISTENT_AFTER_RUNS runs in a row)
 * once, as a `reconciliation.difference` webhook event. A difference no longer found is marked resolved.
 */
@Injectable()
export class ReconciliationRunsService implements OnModuleDestroy {
  private readonly logger = new Logger(ReconciliationRunsService.name);
  /** Set by a shutdown: runs in flight stop their lookups and end failed, saying why. */
  private stopping = false;
  private readonly inFlight = new Set<string>();

  constructor(
    @InjectDataSource() private readonly db: DataSource,
    private readonly clock: Clock,
    private readonly gateway: BootpayGateway,
    private readonly outbox: OutboxService,
    @Inject(RUNTIME) private readonly runtime: Runtime,
  ) {}

  /** Records a run; for a cron tick (scheduledFor), null when another instance took the tick already. */
  async create(trigger: ReconciliationTrigger, opts: { requestedBy?: string; scheduledFor?: Date } = {}): Promise<RunRow | null> {
    const now = this.clock.now();
    await this.failStaleRuns(now);
    const from = new Date(now.getTime() - this.runtime.config.reconcile.windowDays * 24 * 60 * 60 * 1000);
    const rows: RunRow[] = await this.db.query(
      `INSERT INTO reconciliation_runs (trigger, status, scheduled_for, requested_by, window_from, window_to, started_at)
       VALUES ($1, 'running', $2, $3, $4, $5, $5)
       ON CONFLICT (scheduled_for) WHERE trigger = 'cron' DO NOTHING RETURNING ${RUN_COLUMNS}`,
      [trigger, opts.scheduledFor ?? null, opts.requestedBy?.slice(0, 100) ?? null, from, now],
    );
    return rows[0] ?? null;
  }

  /** Checks the run's window at Bootpay and stores what it found. A failure is stored on the run, never thrown. */
  async execute(run: RunRow): Promise<RunRow> {
    this.inFlight.add(run.id);
    try {
      if (this.stopping) throw new Interrupted();
      const found = await this.check(run.window_from, run.window_to);
      await this.record(run, found);
    } catch (err) {
      const error = err instanceof Error ? err.message : String(err);
      this.logger.error({ message: 'reconciliation run failed', run_id: run.id, error });
      await this.fail([run.id], error);
    } finally {
      this.inFlight.delete(run.id);
    }
    return this.get(run.id);
  }

  /** On shutdown: the runs of this process stop their lookups and are marked failed with the reason (not left running). */
  async onModuleDestroy(): Promise<void> {
    this.stopping = true;
    if (this.inFlight.size) await this.fail([...this.inFlight], new Interrupted().message);
  }

  /** Marks runs failed with the reason, unless they ended meanwhile. A database error is logged, not thrown. */
  private async fail(ids: string[], error: string): Promise<void> {
    try {
      const ended = returnedRows(
        await this.db.query(
          `UPDATE reconciliation_runs SET status = 'failed', error = $2, finished_at = $3 WHERE id = ANY($1::uuid[]) AND status = 'running' RETURNING id`,
          [ids, error.slice(0, 500), this.clock.now()],
        ),
      );
      for (const { id } of ended as { id: string }[]) this.logger.warn({ message: 'reconciliation run marked failed', run_id: id, error });
    } catch (err) {
      this.logger.error({ message: 'a reconciliation run could not be marked failed', run_ids: ids, error: err instanceof Error ? err.message : String(err) });
    }
  }

  /** Runs left `running` by a process that was killed (no shutdown) are marked failed once clearly stale. */
  private async failStaleRuns(now: Date): Promise<void> {
    const stale: { id: string }[] = await this.db.query(`SELECT id FROM reconciliation_runs WHERE status = 'running' AND started_at < $1`, [
      new Date(now.getTime() - RECONCILIATION_STALE_AFTER_MS),
    ]);
    if (stale.length)
      await this.fail(
        stale.map((r) => r.id),
        'interrupted: no result was recorded within 6 hours of its start (its process ended)',
      );
  }

  private async check(from: Date, to: Date) {
    const payments: LedgerPayment[] = await this.db.query(
      `SELECT ${LEDGER_PAYMENT_COLUMNS} FROM payments
       WHERE status = ANY($3) AND amount > 0 AND ((approved_at >= $1 AND approved_at <= $2) OR (updated_at >= $1 AND updated_at <= $2))
       ORDER BY approved_at NULLS LAST, id`,
      [from, to, RECONCILED_PAYMENT_STATUSES],
    );
    const reservations: LedgerPayment[] = await this.db.query(
      `SELECT ${LEDGER_PAYMENT_COLUMNS} FROM payments
       WHERE reserve_id IS NOT NULL AND (status = 'READY' OR (reserve_execute_at >= $1 AND reserve_execute_at <= $2))
       ORDER BY reserve_execute_at, id`,
      [from, to],
    );
    const subscriptionOf = new Map<string, string>([...payments, ...reservations].map((p) => [p.id, p.subscription_id]));
    const differences: (Difference & { subscription_id: string })[] = [];
    const interruptible =
      <T, R>(fn: (x: T) => Promise<R>) =>
      (x: T) => {
        if (this.stopping) throw new Interrupted();
        return fn(x);
      };
    for (const c of await mapLimited(
      payments,
      RECONCILE_CONCURRENCY,
      interruptible((p) => checkPayment(this.gateway, p)),
    )) {
      differences.push(...c.differences.map((d) => ({ ...d, subscription_id: subscriptionOf.get(d.id)! })));
    }
    for (const ds of await mapLimited(
      reservations,
      RECONCILE_CONCURRENCY,
      interruptible((p) => checkReservation(this.gateway, p)),
    )) {
      differences.push(...ds.map((d) => ({ ...d, subscription_id: subscriptionOf.get(d.id)! })));
    }
    return { payments: payments.length, reservations: reservations.length, differences };
  }

  /** Stores a run's findings: open differences are carried on (first seen kept), others resolved, persistent ones told. */
  private async record(run: RunRow, found: Awaited<ReturnType<ReconciliationRunsService['check']>>): Promise<void> {
    await this.db.transaction(async (m) => {
      const now = this.clock.now();
      // One reconciliation records at a time, so two runs cannot both open the same difference.
      await m.query(`SELECT pg_advisory_xact_lock(hashtext('reconciliation_runs'))`);
      const stored: StoredDifference[] = [];
      let created = 0;
      const keys: string[] = [];
      for (const d of found.differences) {
        const key = `${d.kind}:${d.id}:${d.field}`;
        if (keys.includes(key)) continue;
        keys.push(key);
        const [row]: { id: string; first_seen_at: Date; runs_seen: number; notified_at: Date | null; inserted: boolean }[] = await m.query(
          `INSERT INTO reconciliation_differences (key, kind, object_id, receipt_id, reserve_id, field, local, bootpay, first_seen_at, first_seen_run_id, last_seen_at, last_seen_run_id)
           VALUES ($1, $2, $3, $4, $5, $6, $7::jsonb, $8::jsonb, $9, $10, $9, $10)
           ON CONFLICT (key) WHERE resolved_at IS NULL DO UPDATE SET
             local = EXCLUDED.local, bootpay = EXCLUDED.bootpay, receipt_id = EXCLUDED.receipt_id, reserve_id = EXCLUDED.reserve_id,
             last_seen_at = EXCLUDED.last_seen_at, last_seen_run_id = EXCLUDED.last_seen_run_id,
             runs_seen = reconciliation_differences.runs_seen + CASE WHEN reconciliation_differences.last_seen_run_id = EXCLUDED.last_seen_run_id THEN 0 ELSE 1 END
           RETURNING id, first_seen_at, runs_seen, notified_at, (xmax = 0) AS inserted`,
          [
            key,
            d.kind,
            d.id,
            d.receipt_id ?? null,
            d.reserve_id ?? null,
            d.field,
            JSON.stringify(d.local ?? null),
            JSON.stringify(d.bootpay ?? null),
            now,
            run.id,
          ],
        );
        if (row.inserted) created++;
        const persistent = row.runs_seen >= PERSISTENT_AFTER_RUNS;
        const s: StoredDifference = { ...d, first_seen_at: new Date(row.first_seen_at).toISOString(), runs_seen: row.runs_seen, persistent };
        stored.push(s);
        if (persistent && !row.notified_at) {
          await this.outbox.enqueue(m, {
            type: 'reconciliation.difference',
            subscriptionId: null,
            sequence: null,
            object: {
              id: row.id,
              kind: d.kind,
              object_id: d.id,
              subscription_id: d.subscription_id,
              receipt_id: d.receipt_id ?? null,
              reserve_id: d.reserve_id ?? null,
              field: d.field,
              local: d.local,
              bootpay: d.bootpay,
              first_seen_at: s.first_seen_at,
              last_seen_at: now.toISOString(),
              runs_seen: row.runs_seen,
              run_id: run.id,
              version: row.runs_seen,
            },
          });
          await m.query(`UPDATE reconciliation_differences SET notified_at = $2 WHERE id = $1`, [row.id, now]);
        }
      }
      const resolved = returnedRows(
        await m.query(`UPDATE reconciliation_differences SET resolved_at = $1 WHERE resolved_at IS NULL AND last_seen_run_id <> $2 RETURNING id`, [
          now,
          run.id,
        ]),
      ).length;
      await m.query(
        `UPDATE reconciliation_runs SET status = 'completed', finished_at = $2, payments_checked = $3, reservations_checked = $4, differences = $5::jsonb,
           new_differences = $6, persistent_differences = $7, resolved_differences = $8
         WHERE id = $1`,
        [run.id, now, found.payments, found.reservations, JSON.stringify(stored), created, stored.filter((s) => s.persistent).length, resolved],
      );
      this.logger.log({
        message: 'reconciliation run completed',
        run_id: run.id,
        payments: found.payments,
        reservations: found.reservations,
        differences: stored.length,
        new: created,
        persistent: stored.filter((s) => s.persistent).length,
        resolved,
      });
    });
  }

  async get(id: string): Promise<RunRow> {
    const [row]: RunRow[] = await this.db.query(`SELECT ${RUN_COLUMNS} FROM reconciliation_runs WHERE id = $1`, [id]);
    if (!row) throw new NotFoundError('Reconciliation run', id);
    return row;
  }

  /** Runs newest first. */
  async list(q: PageQueryDto): Promise<Page<ReturnType<ReconciliationRunsService['map']>>> {
    const limit = q.limit ?? 20;
    let after: [string, string] | null = null;
    if (q.cursor) {
      const [t, id] = Buffer.from(q.cursor, 'base64url').toString('utf8').split('|');
      if (!isCursorInstant(t) || !isUuid(id))
        throw new InvalidInputError([{ field: 'cursor', message: 'cursor must be a next_cursor value from a previous page' }]);
      after = [t, id];
    }
    const rows: RunRow[] = await this.db.query(
      `SELECT ${RUN_COLUMNS} FROM reconciliation_runs
       WHERE $1::timestamptz IS NULL OR (started_at, id) < ($1::timestamptz, $2::uuid)
       ORDER BY started_at DESC, id DESC LIMIT $3`,
      [after?.[0] ?? null, after?.[1] ?? null, limit + 1],
    );
    const page = rows.slice(0, limit);
    const last = page[page.length - 1];
    return {
      data: page.map((r) => this.map(r)),
      has_more: rows.length > limit,
      next_cursor: rows.length > limit && last ? Buffer.from(`${new Date(last.started_at).toISOString()}|${last.id}`).toString('base64url') : null,
    };
  }

  /** Open differences found by at least PERSISTENT_AFTER_RUNS runs in a row, oldest first (for the summary). */
  async persistentDifferences(limit = 100) {
    const rows: {
      id: string;
      kind: string;
      object_id: string;
      receipt_id: string | null;
      reserve_id: string | null;
      field: string;
      local: unknown;
      bootpay: unknown;
      first_seen_at: Date;
      last_seen_at: Date;
      runs_seen: number;
    }[] = await this.db.query(
      `SELECT id, kind, object_id, receipt_id, reserve_id, field, local, bootpay, first_seen_at, last_seen_at, runs_seen FROM reconciliation_differences
       WHERE resolved_at IS NULL AND runs_seen >= $1 ORDER BY first_seen_at, id LIMIT $2`,
      [PERSISTENT_AFTER_RUNS, limit],
    );
    const [last]: RunRow[] = await this.db.query(
      `SELECT ${RUN_COLUMNS} FROM reconciliation_runs WHERE status = 'completed' ORDER BY started_at DESC, id DESC LIMIT 1`,
    );
    return {
      last_run: last ? { id: last.id, started_at: new Date(last.started_at).toISOString(), differences: last.differences.length } : null,
      persistent_differences: rows.map((r) => ({
        id: r.id,
        kind: r.kind,
        object_id: r.object_id,
        receipt_id: r.receipt_id,
        reserve_id: r.reserve_id,
        field: r.field,
        local: r.local,
        bootpay: r.bootpay,
        first_seen_at: new Date(r.first_seen_at).toISOString(),
        last_seen_at: new Date(r.last_seen_at).toISOString(),
        runs_seen: r.runs_seen,
      })),
    };
  }

  map(r: RunRow) {
    const iso = (d: Date | null) => (d ? new Date(d).toISOString() : null);
    return {
      id: r.id,
      trigger: r.trigger,
      status: r.status,
      scheduled_for: iso(r.scheduled_for),
      requested_by: r.requested_by,
      window: { from: iso(r.window_from), to: iso(r.window_to) },
      checked: { payments: r.payments_checked, reservations: r.reservations_checked },
      counts: { differences: r.differences.length, new: r.new_differences, persistent: r.persistent_differences, resolved: r.resolved_differences },
      differences: r.differences,
      error: r.error,
      started_at: iso(r.started_at),
      finished_at: iso(r.finished_at),
    };
  }
}
