import { Inject, Injectable, Logger, OnModuleDestroy, OnModuleInit } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import { DataSource } from 'typeorm';
import { Clock } from '../common/clock';
import { BootpayGateway } from '../gateway/bootpay.gateway';

/** How a charge of a run ended, as `billing_run_charges_total` labels it. */
export type ChargeMetricOutcome = 'approved' | 'declined_soft' | 'declined_hard' | 'unknown' | 'aborted' | 'local_fault' | 'not_applied';

const PREFIX = 'billing_';

/**
 * The service's Prometheus metrics (prom-client), served at /metrics. Two kinds:
 * - counted in this process: charges of runs by outcome, runs and their duration, Bootpay request latency;
 * - read from the database at scrape time (gauges), so they hold across instances and restarts: open attempts,
 *   outbound webhook backlog, subscriptions by status and dunning stage, reservations, refunds, reconciliation
 *   differences and the last run of each status.
 * One registry per application (not prom-client's global one), so several apps in one process (tests) stay apart.
 */
@Injectable()
export class MetricsService implements OnModuleInit, OnModuleDestroy {
  private readonly logger = new Logger(MetricsService.name);
  readonly registry = new Registry();
  private unobserve?: () => void;

  private readonly runCharges = new Counter({
    name: `${PREFIX}run_charges_total`,
    help: 'Charges made by charge runs in this process, by outcome (approved, declined_soft, declined_hard, unknown, aborted, local_fault)',
    labelNames: ['outcome'],
    registers: [this.registry],
  });
  private readonly charges = new Counter({
    name: `${PREFIX}charges_total`,
    help: 'Charge outcomes recorded by this process, whoever asked (runs, API actions, Bootpay webhooks, lookups), by outcome (approved, declined_soft, declined_hard, unknown, aborted, local_fault, not_applied: approved but refused by the subscription and refunded)',
    labelNames: ['outcome'],
    registers: [this.registry],
  });
  private readonly runsFinished = new Counter({
    name: `${PREFIX}charge_runs_finished_total`,
    help: 'Charge runs executed by this process, by final status',
    labelNames: ['status'],
    registers: [this.registry],
  });
  private readonly runDuration = new Histogram({
    name: `${PREFIX}charge_run_duration_seconds`,
    help: 'Duration of charge runs executed by this process, by final status',
    labelNames: ['status'],
    buckets: [1, 5, 15, 60, 300, 900, 1800, 3600, 7200, 14_400],
    registers: [this.registry],
  });
  private readonly gatewayLatency = new Histogram({
    name: `${PREFIX}gateway_request_duration_seconds`,
    help: 'Bootpay requests by route (the gateway operation) and outcome',
    labelNames: ['route', 'outcome'],
    buckets: [0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
    registers: [this.registry],
  });

  private gauge(name: string, help: string, labelNames: string[] = []): Gauge {
    return new Gauge({ name: `${PREFIX}${name}`, help, labelNames, registers: [this.registry] });
  }
  private readonly runsStored = this.gauge('charge_runs', 'Charge runs in the database, by status', ['status']);
  private readonly runLastFinished = this.gauge('charge_run_last_finished_timestamp_seconds', 'When the last charge run of each status finished (Unix time)', [
    'status',
  ]);
  private readonly runLastDuration = this.gauge('charge_run_last_duration_seconds', 'Duration of the last finished charge run of each status', ['status']);
  private readonly openAttempts = this.gauge(
    'open_attempts',
    'Payment attempts whose outcome is not recorded yet (IN_PROGRESS: at Bootpay; UNKNOWN: to be resolved)',
    ['status'],
  );
  private readonly openAttemptAge = this.gauge('open_attempt_oldest_age_seconds', 'Age of the oldest open attempt of each status (0 when none)', ['status']);
  private readonly webhookPending = this.gauge('webhook_deliveries_pending', 'Outbound webhook deliveries not delivered yet, per endpoint', ['endpoint_id']);
  private readonly webhookPendingAge = this.gauge(
    'webhook_delivery_oldest_pending_age_seconds',
    'Age of the oldest undelivered outbound webhook, per endpoint (0 when none)',
    ['endpoint_id'],
  );
  private readonly webhookFailed = this.gauge('webhook_deliveries_failed', 'Outbound webhook deliveries that gave up, per endpoint', ['endpoint_id']);
  private readonly subscriptions = this.gauge('subscriptions', 'Subscriptions by status and dunning stage (failed attempts since the last success)', [
    'status',
    'dunning_stage',
  ]);
  private readonly reservations = this.gauge('reservations_outstanding', 'Bootpay reservations registered and not executed yet');
  private readonly reservationBudgetMax = this.gauge('reservation_budget_max_used', 'The most reservations outstanding on one billing key (Bootpay allows 10)');
  private readonly reservationBudgetFull = this.gauge('keys_reservation_budget_full', 'Billing keys with all 10 reservations in use');
  private readonly refunds = this.gauge('refunds', 'Refunds by status', ['status']);
  private readonly reconciliationOpen = this.gauge(
    'reconciliation_differences_open',
    'Open differences with Bootpay (persistent: seen by more than one reconciliation run)',
    ['persistent'],
  );
  private readonly reconciliationAge = this.gauge(
    'reconciliation_difference_oldest_age_seconds',
    'Age of the oldest open difference with Bootpay (0 when none)',
  );

  constructor(
    @InjectDataSource() private readonly db: DataSource,
    private readonly clock: Clock,
    @Inject(BootpayGateway) private readonly gateway: BootpayGateway,
  ) {
    collectDefaultMetrics({ register: this.registry });
  }

  onModuleInit(): void {
    this.unobserve = this.gateway.observeCalls((route, outcome, seconds) => this.gatewayLatency.observe({ route, outcome }, seconds));
  }

  onModuleDestroy(): void {
    this.unobserve?.();
  }

  /** A charge of a run whose outcome was counted. */
  chargeCounted(outcome: ChargeMetricOutcome): void {
    this.runCharges.inc({ outcome });
  }

  /** A charge outcome the ledger recorded (once per payment attempt and outcome). */
  chargeRecorded(outcome: ChargeMetricOutcome, count = 1): void {
    this.charges.inc({ outcome }, count);
  }

  /** A run executed by this process ended. */
  runFinished(status: string, seconds: number): void {
    this.runsFinished.inc({ status });
    this.runDuration.observe({ status }, seconds);
  }

  /** The text exposition, with the database gauges read now. */
  async scrape(): Promise<string> {
    await this.refresh();
    return this.registry.metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }

  private async refresh(): Promise<void> {
    const now = this.clock.now();
    const age = (at: Date | string | null): number => (at ? Math.max(0, (now.getTime() - new Date(at).getTime()) / 1000) : 0);
    const q = <T>(sql: string, params: unknown[] = []): Promise<T[]> => this.db.query(sql, params);
    const [runs, attempts, webhooks, subs, reserved, refunds, diffs] = await Promise.all([
      q<{ status: string; n: number; last_finished: Date | null; last_duration: number | null }>(
        `SELECT r.status, count(*)::int AS n, max(r.finished_at) AS last_finished,
           (SELECT extract(epoch FROM l.finished_at - l.started_at)::float8 FROM charge_runs l
             WHERE l.status = r.status AND l.finished_at IS NOT NULL ORDER BY l.finished_at DESC LIMIT 1) AS last_duration
         FROM charge_runs r GROUP BY r.status`,
      ),
      q<{ status: string; n: number; oldest: Date | null }>(
        `SELECT status, count(*)::int AS n, min(created_at) AS oldest FROM payments WHERE status IN ('IN_PROGRESS', 'UNKNOWN') GROUP BY status`,
      ),
      q<{ endpoint_id: string; pending: number; failed: number; oldest: Date | null }>(
        `SELECT e.id AS endpoint_id,
           count(d.id) FILTER (WHERE d.status = 'pending')::int AS pending,
           count(d.id) FILTER (WHERE d.status = 'failed')::int AS failed,
           min(d.created_at) FILTER (WHERE d.status = 'pending') AS oldest
         FROM webhook_endpoints e LEFT JOIN webhook_deliveries d ON d.endpoint_id = e.id AND d.status IN ('pending', 'failed')
         GROUP BY e.id`,
      ),
      q<{ status: string; stage: number; n: number }>(
        `SELECT status, dunning_attempts AS stage, count(*)::int AS n FROM subscriptions GROUP BY status, dunning_attempts`,
      ),
      q<{ outstanding: number; max_used: number | null; full_keys: number }>(
        `SELECT coalesce(sum(n), 0)::int AS outstanding, max(n)::int AS max_used, count(*) FILTER (WHERE n >= 10)::int AS full_keys
         FROM (SELECT billing_key_id, count(*) AS n FROM payments WHERE status = 'READY' GROUP BY billing_key_id) k`,
      ),
      q<{ status: string; n: number }>(`SELECT status, count(*)::int AS n FROM refunds GROUP BY status`),
      q<{ persistent: number; fresh: number; oldest: Date | null }>(
        `SELECT count(*) FILTER (WHERE runs_seen > 1)::int AS persistent, count(*) FILTER (WHERE runs_seen <= 1)::int AS fresh, min(first_seen_at) AS oldest
         FROM reconciliation_differences WHERE resolved_at IS NULL`,
      ),
    ]);

    for (const g of [this.runsStored, this.runLastFinished, this.runLastDuration]) g.reset();
    for (const r of runs) {
      this.runsStored.set({ status: r.status }, r.n);
      if (r.last_finished) this.runLastFinished.set({ status: r.status }, new Date(r.last_finished).getTime() / 1000);
      if (r.last_duration !== null) this.runLastDuration.set({ status: r.status }, Number(r.last_duration));
    }
    for (const status of ['IN_PROGRESS', 'UNKNOWN']) {
      const row = attempts.find((a) => a.status === status);
      this.openAttempts.set({ status }, row?.n ?? 0);
      this.openAttemptAge.set({ status }, age(row?.oldest ?? null));
    }
    for (const g of [this.webhookPending, this.webhookPendingAge, this.webhookFailed]) g.reset();
    for (const w of webhooks) {
      this.webhookPending.set({ endpoint_id: w.endpoint_id }, w.pending);
      this.webhookPendingAge.set({ endpoint_id: w.endpoint_id }, age(w.oldest));
      this.webhookFailed.set({ endpoint_id: w.endpoint_id }, w.failed);
    }
    this.subscriptions.reset();
    for (const s of subs) this.subscriptions.set({ status: s.status, dunning_stage: String(s.stage) }, s.n);
    this.reservations.set(reserved[0]?.outstanding ?? 0);
    this.reservationBudgetMax.set(reserved[0]?.max_used ?? 0);
    this.reservationBudgetFull.set(reserved[0]?.full_keys ?? 0);
    this.refunds.reset();
    for (const status of ['pending', 'succeeded', 'failed', 'unknown']) this.refunds.set({ status }, refunds.find((r) => r.status === status)?.n ?? 0);
    this.reconciliationOpen.set({ persistent: 'true' }, diffs[0]?.persistent ?? 0);
    this.reconciliationOpen.set({ persistent: 'false' }, diffs[0]?.fresh ?? 0);
    this.reconciliationAge.set(age(diffs[0]?.oldest ?? null));
    this.logger.debug({ message: 'metrics read', runs: runs.length, endpoints: webhooks.length });
  }
}
