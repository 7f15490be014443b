import { Inject, Injectable, Logger, OnModuleDestroy, Optional } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { DataSource } from 'typeorm';
import { BillingKeysService } from '../billing-keys/billing-keys.service';
import { Clock } from '../common/clock';
import { isUuid } from '../common/uuid.pipe';
import { InvalidInputError, NotFoundError } from '../common/errors';
import { isCursorInstant, Page, PageQueryDto } from '../common/pagination';
import { PlanEntity } from '../plans/plan.entity';
import { Runtime, RUNTIME } from '../config/runtime';
import { asChargeRun } from '../common/charge-run-context';
import { ChargeAttemptsService } from '../ledger/charge-attempts.service';
import { ChargeRunEntity, ChargeRunTrigger } from './charge-run.entity';
import { ChargeSettler } from './charge-settler';
import { ClaimCursor, ClaimDueBatch } from './claim-due';
import { drainBatches, RateLimiter } from './concurrency';
import { RefundsService } from '../ledger/refunds.service';
import { MetricsService } from '../metrics/metrics.service';
import { CancelLeftoverReservationsTask } from './tasks/cancel-leftover-reservations';
import { MarkInterruptedRunsTask } from './tasks/mark-interrupted-runs';
import { ResolveDueReservationsTask } from './tasks/resolve-due-reservations';
import { ResolveOpenAttemptsTask } from './tasks/resolve-open-attempts';
import { ResumeDuePausesTask } from './tasks/resume-due-pauses';
import { RunCounters, RunOutcomeCounter, task } from './tasks/run-task';
import { TopUpReservationsTask } from './tasks/top-up-reservations';

export type { RunCounters } from './tasks/run-task';

export type ProgressListener = (counters: RunCounters) => void;

/**
 * The charge run: charges every subscription due by the run's start (by the injected clock).
 *
 * Never twice: an attempt (a payments row, IN_PROGRESS) is committed before Bootpay is called, and the unique indexes
 * on payments allow one open attempt per subscription and one success per period. Subscriptions are claimed with
 * FOR UPDATE SKIP LOCKED, so concurrent runs (several instances firing the cron) split the work.
 * Never lost: an attempt left open by a crash or a time-out is resolved at the start of the next run by re-sending
 * the same order_id (Bootpay refuses it as a duplicate if the first went through) before the subscription can be
 * charged again; a stopped run leaves its subscriptions due, and the next run carries on.
 *
 * The run is orchestrated here; its claims are in claim-due.ts and each of its chores is a task under `tasks/`.
 */
@Injectable()
export class ChargeRunsService implements OnModuleDestroy {
  private readonly logger = new Logger(ChargeRunsService.name);
  /** Set by a shutdown (SIGTERM) or the CLI's stop: runs claim no more, finish what is in flight and end interrupted. */
  private stopping = false;
  private readonly active = new Set<Promise<ChargeRunEntity>>();
  readonly worker = `${hostname()}:${process.pid}:${randomBytes(3).toString('hex')}`;

  constructor(
    @InjectDataSource() private readonly db: DataSource,
    private readonly clock: Clock,
    private readonly attempts: ChargeAttemptsService,
    private readonly billingKeys: BillingKeysService,
    private readonly refunds: RefundsService,
    private readonly counter: RunOutcomeCounter,
    private readonly dueClaims: ClaimDueBatch,
    private readonly markInterrupted: MarkInterruptedRunsTask,
    private readonly resumePauses: ResumeDuePausesTask,
    private readonly openAttempts: ResolveOpenAttemptsTask,
    private readonly dueReservations: ResolveDueReservationsTask,
    private readonly leftoverReservations: CancelLeftoverReservationsTask,
    private readonly topUps: TopUpReservationsTask,
    @Inject(RUNTIME) private readonly runtime: Runtime,
    @Optional() private readonly metrics?: MetricsService,
  ) {}

  /** On shutdown (app.close(), SIGTERM): no more claims; the runs of this process finish their in-flight charges. */
  async onModuleDestroy(): Promise<void> {
    // Leaves part of SHUTDOWN_TIMEOUT_MS for writing the run's end and closing the pool.
    const timeoutMs = this.runtime.config.shutdownTimeoutMs;
    await this.stop(timeoutMs - Math.min(5000, Math.floor(timeoutMs / 5)));
  }

  /**
   * Stops claiming, and waits (at most `timeoutMs`) for this process's runs to finish the charges already sent and
   * record their outcomes. Answers whether they all ended in time. An attempt still open after that is resolved by
   * the next run, as after a crash.
   */
  async stop(timeoutMs: number): Promise<boolean> {
    this.stopping = true;
    if (!this.active.size) return true;
    this.logger.log({ message: 'stopping: no more claims, waiting for in-flight charges', runs: this.active.size, timeout_ms: timeoutMs });
    let timer: NodeJS.Timeout | undefined;
    const ended = await Promise.race([
      Promise.allSettled([...this.active]).then(() => true),
      new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), timeoutMs))),
    ]);
    clearTimeout(timer);
    if (!ended)
      this.logger.warn({ message: 'runs still charging at the shutdown time-out; the next run resolves their open attempts', runs: this.active.size });
    return ended;
  }

  private get settings() {
    return this.runtime.config.chargeRun;
  }

  /** Creates a run. For a cron tick, only the first instance to record the tick gets a run (others get null). */
  async create(trigger: ChargeRunTrigger, opts: { requestedBy?: string; scheduledFor?: Date } = {}): Promise<ChargeRunEntity | null> {
    const now = this.clock.now();
    const rows: { id: string }[] = await this.db.query(
      `INSERT INTO charge_runs (trigger, status, scheduled_for, requested_by, as_of, worker, started_at)
       VALUES ($1, 'running', $2, $3, $4, $5, $4)
       ON CONFLICT (scheduled_for) WHERE trigger = 'cron' DO NOTHING RETURNING id`,
      [trigger, opts.scheduledFor ?? null, opts.requestedBy?.slice(0, 100) ?? null, now, this.worker],
    );
    if (!rows.length) return null;
    return this.db.getRepository(ChargeRunEntity).findOneByOrFail({ id: rows[0].id });
  }

  async execute(run: ChargeRunEntity, onProgress?: ProgressListener): Promise<ChargeRunEntity> {
    const started = performance.now();
    // The run's statements take connections from its share of the pool, never waiting behind the API's.
    const running = asChargeRun(() => this.executeRun(run, onProgress));
    this.active.add(running);
    try {
      const done = await running;
      this.metrics?.runFinished(done.status, (performance.now() - started) / 1000);
      return done;
    } finally {
      this.active.delete(running);
    }
  }

  private async executeRun(run: ChargeRunEntity, onProgress?: ProgressListener): Promise<ChargeRunEntity> {
    let stoppedEarly = false;
    const c: RunCounters = { due: 0, charged: 0, failed: 0, unknown: 0, skipped: 0, resolved: 0, canceled: 0, resumed: 0, localFaults: 0, taskFailures: 0 };
    const save = async (extra: Record<string, unknown> = {}) => {
      await this.db.query(
        `UPDATE charge_runs SET due = $2, charged = $3, failed = $4, unknown = $5, skipped = $6, resolved = $7, canceled = $8, resumed = $9,
           local_faults = $13, task_failures = $14,
           heartbeat_at = clock_timestamp(), status = COALESCE($10, status), finished_at = COALESCE($11, finished_at), error = COALESCE($12, error)
         WHERE id = $1`,
        [
          run.id,
          c.due,
          c.charged,
          c.failed,
          c.unknown,
          c.skipped,
          c.resolved,
          c.canceled,
          c.resumed,
          extra.status ?? null,
          extra.finishedAt ?? null,
          extra.error ?? null,
          c.localFaults,
          c.taskFailures,
        ],
      );
      onProgress?.({ ...c });
    };
    try {
      // The run's chores are separate tasks: one that fails is logged and counted, and never stops the charging.
      await task(c, 'mark interrupted runs', () => this.markInterrupted.run());
      await task(c, 'resume due pauses', () => this.resumePauses.run(run.asOf, c));
      await task(c, 'resolve open attempts', () => this.openAttempts.run(run.asOf, c));
      await task(c, 'resolve due reservations', () => this.dueReservations.run(run.asOf, c));
      // Refunds whose answer was lost (and refunds owed but not sent yet) are settled with their own cancel_id.
      await task(c, 'resolve refunds', () => this.refunds.resolveUnknown());
      await save();
      await task(c, 'cancel leftover reservations', () => this.leftoverReservations.run());
      await task(c, 'retry billing key deletions', () => this.billingKeys.retryPendingDeletions());
      const limiter = new RateLimiter(this.settings.ratePerSecond);
      const plans = new Map<string, PlanEntity>();
      const cursor: ClaimCursor = { after: null, swept: false };
      let claims = 0;
      // Outcomes are recorded apart from the sending (in batches), so a gateway slot is free as soon as Bootpay answers.
      const settler = new ChargeSettler(
        this.attempts,
        { maxBatch: 128, maxPending: 4 * this.settings.concurrency + 256, maxFlushes: 2, gatherMs: 20 },
        (paymentId, outcome, err) => this.counter.count(c, outcome, err, paymentId),
      );
      try {
        // Batches are claimed ahead while the previous one is still being charged, so the gateway never waits for a claim.
        await drainBatches(
          async () => {
            // A shutdown stops the claims here, between batches: what was claimed is still charged and recorded.
            if (this.stopping) {
              stoppedEarly = true;
              return null;
            }
            // The first claim is small, so that charging starts within milliseconds; the next ones are whole batches.
            const limit = claims++ === 0 ? Math.min(this.settings.batchSize, 2 * this.settings.concurrency) : this.settings.batchSize;
            let { charges, claimed } = await this.dueClaims.claimBatch(run, plans, c, cursor, limit);
            if (claimed === 0 && cursor.after && !cursor.swept) {
              cursor.after = null;
              cursor.swept = true;
              ({ charges, claimed } = await this.dueClaims.claimBatch(run, plans, c, cursor, limit));
            }
            await save();
            return claimed === 0 ? null : charges;
          },
          { concurrency: this.settings.concurrency, refillBelow: Math.max(2 * this.settings.concurrency, this.settings.batchSize / 2), limiter },
          async (claim) => {
            const outcome = await this.attempts.sendClaimed(claim);
            await settler.add(claim, outcome);
          },
        );
      } finally {
        await settler.drain();
      }
      await save();
      if (!stoppedEarly) await task(c, 'top up reservations', () => this.topUps.run());
      if (c.localFaults > 0) {
        // A fault of this instance (a billing key it cannot decrypt: another BILLING_KEY_ENCRYPTION_KEY) is not a
        // decline: nothing was sent, the subscriptions are as they were, and the run says so by failing.
        const error = `${c.localFaults} charge(s) not sent because of a local fault (a billing key could not be decrypted: is BILLING_KEY_ENCRYPTION_KEY the one the keys were stored with?); the subscriptions were left as they were`;
        this.logger.error({ message: 'charge run failed on local faults', run_id: run.id, ...c });
        await save({ status: 'failed', finishedAt: this.clock.now(), error });
      } else if (stoppedEarly) {
        await save({
          status: 'interrupted',
          finishedAt: this.clock.now(),
          error: 'stopped by a shutdown after recording every charge it sent; the next run charges the rest',
        });
        this.logger.warn({ message: 'charge run interrupted by a shutdown', run_id: run.id, ...c });
      } else {
        await save({ status: 'completed', finishedAt: this.clock.now() });
        this.logger.log({ message: 'charge run completed', run_id: run.id, ...c });
      }
    } catch (err) {
      this.logger.error({ message: 'charge run failed', run_id: run.id, error: err instanceof Error ? err.message : String(err) });
      await save({ status: 'failed', finishedAt: this.clock.now(), error: (err instanceof Error ? err.message : String(err)).slice(0, 500) });
    }
    return this.db.getRepository(ChargeRunEntity).findOneByOrFail({ id: run.id });
  }

  async get(id: string): Promise<ChargeRunEntity> {
    const run = await this.db.getRepository(ChargeRunEntity).findOneBy({ id });
    if (!run) throw new NotFoundError('Charge run', id);
    return run;
  }

  /** Newest first; the cursor is the last run's start time and id. */
  async list(q: PageQueryDto): Promise<Page<ReturnType<ChargeRunsService['map']>>> {
    const limit = q.limit ?? 20;
    const qb = this.db.getRepository(ChargeRunEntity).createQueryBuilder('r');
    if (q.cursor) {
      const [t, id] = Buffer.from(q.cursor, 'base64url').toString('utf8').split('|');
      if (!isCursorInstant(t) || !isUuid(id)) {
        throw new InvalidInputError([{ field: 'cursor', message: 'cursor must be a next_cursor value from a previous page' }]);
      }
      qb.where('(r.started_at, r.id) < (:t::timestamptz, :id::uuid)', { t, id });
    }
    const rows = await qb
      .orderBy('r.started_at', 'DESC')
      .addOrderBy('r.id', 'DESC')
      .limit(limit + 1)
      .getMany();
    const page = rows.slice(0, limit);
    const last = page[page.length - 1];
    return {
      data: page.map((r) => this.map(r)),
      has_more: rows.length > limit,
      next_cursor: rows.length > limit && last ? Buffer.from(`${last.startedAt.toISOString()}|${last.id}`).toString('base64url') : null,
    };
  }

  map(r: ChargeRunEntity) {
    return {
      id: r.id,
      trigger: r.trigger,
      status: r.status,
      scheduled_for: r.scheduledFor?.toISOString() ?? null,
      requested_by: r.requestedBy,
      as_of: r.asOf.toISOString(),
      counts: {
        due: r.due,
        charged: r.charged,
        failed: r.failed,
        unknown: r.unknown,
        skipped: r.skipped,
        resolved: r.resolved,
        canceled: r.canceled,
        resumed: r.resumed,
        local_faults: r.localFaults,
        task_failures: r.taskFailures,
      },
      error: r.error,
      started_at: r.startedAt.toISOString(),
      finished_at: r.finishedAt?.toISOString() ?? null,
    };
  }
}
