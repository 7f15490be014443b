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
import { PaymentEntity } from '../payments/payment.entity';
import { PlanEntity } from '../plans/plan.entity';
import { Runtime, RUNTIME } from '../config/runtime';
import { dueBefore, SubscriptionEvent } from '../ledger/transitions';
import { ConsentsService } from '../consents/consents.service';
import { PlansService } from '../plans/plans.service';
import { SubscriptionEntity } from '../ledger/subscription.entity';
import { SubscriptionsService } from '../ledger/subscriptions.service';
import { ChargeAttemptsService, ChargeOutcome, ClaimedCharge, DueSubscription } from '../ledger/charge-attempts.service';
import { ChargeRunEntity, ChargeRunTrigger } from './charge-run.entity';
import { ChargeSettler } from './charge-settler';
import { drainBatches, RateLimiter, runPool } from './concurrency';
import { ReservationsService } from '../ledger/reservations.service';
import { RefundsService } from '../ledger/refunds.service';
import { MetricsService } from '../metrics/metrics.service';

export interface RunCounters {
  due: number;
  charged: number;
  failed: number;
  unknown: number;
  skipped: number;
  resolved: number;
  canceled: number;
  resumed: number;
  /** Charges not sent because of a fault of this instance (never a decline): the run is marked failed. */
  localFaults: number;
  /** Chores of the run that failed (logged; the run went on). */
  taskFailures: number;
}

/**
 * Where a run's claims go on from: the last subscription claimed, in due order. A run walks the due index once
 * instead of stepping again over the rows it charged (whose old index entries stay until vacuum), so a claim costs
 * the same at the end of a long run as at its start. A row the walk passed because another transaction held it (an
 * admin's action, another instance's claim) is looked for once more at the end: when the walk finds nothing, it starts
 * again from the beginning once (`swept`), where rows charged by this run no longer qualify.
 */
interface ClaimCursor {
  after: { at: Date; id: string } | null;
  swept: boolean;
}

export type ProgressListener = (counters: RunCounters) => void;

/** A run whose heartbeat is older than this (wall clock) belonged to a process that died. */
const INTERRUPTED_AFTER_SECONDS = 300;

/**
 * The charge run: charges every subscription due by the run's start (by the injected clock).
 *
 * Never twice: an attempt (a payments row, IN_PROGRESS) is committed before Bootpay is called, and the unique indexes
 * on payments allow one open attempt per subscription and one success per period. Subscriptions are claimed with
 * FOR UPDATE SKIP LOCKED, so concurrent runs (several instances firing the cron) split the work.
 * Never lost: an attempt left open by a crash or a time-out is resolved at the start of the next run by re-sending
 * the same order_id (Bootpay refuses it as a duplicate if the first went through) before the subscription can be
 * charged again; a stopped run leaves its subscriptions due, and the next run carries on.
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
    private readonly subscriptions: SubscriptionsService,
    private readonly billingKeys: BillingKeysService,
    private readonly reservations: ReservationsService,
    private readonly plansService: PlansService,
    private readonly refunds: RefundsService,
    private readonly consents: ConsentsService,
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
    const running = this.executeRun(run, onProgress);
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
      await this.task(c, 'mark interrupted runs', () => this.markInterruptedRuns());
      await this.task(c, 'resume due pauses', () => this.resumeDuePauses(run.asOf, c));
      await this.task(c, 'resolve open attempts', () => this.resolveOpenAttempts(run.asOf, c));
      await this.task(c, 'resolve due reservations', () => this.resolveDueReservations(run.asOf, c));
      // Refunds whose answer was lost (and refunds owed but not sent yet) are settled with their own cancel_id.
      await this.task(c, 'resolve refunds', () => this.refunds.resolveUnknown());
      await save();
      await this.task(c, 'cancel leftover reservations', () => this.cancelLeftoverReservations());
      await this.task(c, 'retry billing key deletions', () => this.billingKeys.retryPendingDeletions());
      const limiter = new RateLimiter(this.settings.ratePerSecond);
      const plans = new Map<string, PlanEntity>();
      const cursor: ClaimCursor = { after: null, swept: false };
      let claims = 0;
      // Outcomes are recorded apart from the sending (in batches), so a gateway slot is free as soon as Bootpay answers.
      const settler = new ChargeSettler(
        this.attempts,
        { maxBatch: 128, maxPending: 4 * this.settings.concurrency + 256, maxFlushes: 2, gatherMs: 20 },
        (paymentId, outcome, err) => this.count(c, outcome, err, paymentId),
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
            let { charges, claimed } = await this.claimBatch(run, plans, c, cursor, limit);
            if (claimed === 0 && cursor.after && !cursor.swept) {
              cursor.after = null;
              cursor.swept = true;
              ({ charges, claimed } = await this.claimBatch(run, plans, c, cursor, limit));
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
      if (!stoppedEarly) await this.task(c, 'top up reservations', () => this.topUpReservations());
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

  private async settleCounting(settle: () => Promise<unknown>, paymentId: string, outcome: ChargeOutcome, c: RunCounters): Promise<void> {
    try {
      await settle();
      this.count(c, outcome);
    } catch (err) {
      this.count(c, outcome, err, paymentId);
    }
  }

  /** One subscription's part of a chore: a failure is logged with its context and retried by the next run. */
  private async chore(what: string, subscriptionId: string, run: () => Promise<unknown>): Promise<void> {
    try {
      await run();
    } catch (err) {
      this.logger.warn({
        message: `${what} failed; the next run tries again`,
        subscription_id: subscriptionId,
        error: err instanceof Error ? err.message : String(err),
      });
    }
  }

  /** Runs one chore of the run; a failure is logged and counted (task_failures) and the run goes on. */
  private async task(c: RunCounters, name: string, run: () => Promise<unknown>): Promise<void> {
    try {
      await run();
    } catch (err) {
      c.taskFailures++;
      this.logger.error({ message: 'charge run task failed; the run goes on', task: name, error: err instanceof Error ? err.message : String(err) });
    }
  }

  /** Counts a recorded outcome; one that could not be recorded stays open, is resolved by the next run, and counts as unknown. */
  private count(c: RunCounters, outcome: ChargeOutcome, err?: unknown, paymentId?: string): void {
    this.metrics?.chargeCounted(
      err !== undefined || outcome.kind === 'unknown'
        ? 'unknown'
        : outcome.kind === 'succeeded'
          ? 'approved'
          : outcome.kind === 'declined'
            ? outcome.failure.hard
              ? 'declined_hard'
              : 'declined_soft'
            : outcome.kind === 'local_fault'
              ? 'local_fault'
              : 'aborted',
    );
    if (err !== undefined) {
      c.unknown++;
      this.logger.error({ message: 'could not record a charge outcome', payment_id: paymentId, error: err instanceof Error ? err.message : String(err) });
    } else if (outcome.kind === 'succeeded') c.charged++;
    else if (outcome.kind === 'unknown') c.unknown++;
    else if (outcome.kind === 'local_fault') c.localFaults++;
    else if (outcome.kind === 'declined') c.failed++;
    else c.skipped++;
  }

  /**
   * Claims a batch of due subscriptions and records an attempt for each, in one short transaction: one query claims
   * them (row locks, SKIP LOCKED, with their billing keys), one statement records their attempts. Subscriptions set
   * to cancel at period end are ended instead; pending plan changes take effect first (those are rare and take the
   * general path). A trial's end or a plan migration's renewal is charged only with the consent the law requires
   * (전자상거래법 제13조 제6항, see src/consents): without it the subscription ends or pauses (consent_missing) and nothing
   * is charged; a migration switches the plan first (migrate_plan). Their consents are read in one query per batch.
   */
  private async claimBatch(
    run: ChargeRunEntity,
    plans: Map<string, PlanEntity>,
    c: RunCounters,
    cursor: ClaimCursor,
    limit: number,
  ): Promise<{ charges: ClaimedCharge[]; claimed: number }> {
    const ended: string[] = [];
    const retire: string[] = [];
    const result = await this.db.transaction(async (m) => {
      const qb = m
        .getRepository(SubscriptionEntity)
        .createQueryBuilder('s')
        .addSelect('s.xmin::text', 'row_version')
        .addSelect('b.billing_key_ciphertext', 'key_ciphertext')
        .leftJoin('billing_keys', 'b', 'b.id = s.billing_key_id')
        // Due by business day: everything due before the end of the run's business date (see dueBefore).
        .where('s.next_charge_at < :dueBefore', { dueBefore: dueBefore(run.asOf, this.runtime.config.businessTimeZone) })
        .andWhere(`s.status IN ('incomplete', 'trialing', 'active', 'past_due')`)
        // Not while an attempt is open or a reservation covers the period, and once per run at most. One probe of
        // the subscription's payments (by subscription_id), whatever the planner believes about the table's size.
        .andWhere(
          `NOT EXISTS (SELECT 1 FROM payments p WHERE p.subscription_id = s.id
             AND (p.status IN ('IN_PROGRESS', 'UNKNOWN') OR (p.status = 'READY' AND p.period_start <= s.next_charge_at) OR p.charge_run_id = :runId))`,
          { runId: run.id },
        );
      if (cursor.after) qb.andWhere('(s.next_charge_at, s.id) > (:afterAt, :afterId)', { afterAt: cursor.after.at, afterId: cursor.after.id });
      const { entities: subs, raw } = await qb
        .orderBy('s.next_charge_at', 'ASC')
        .addOrderBy('s.id', 'ASC')
        .limit(limit)
        .setLock('pessimistic_write', undefined, ['s'])
        .setOnLocked('skip_locked')
        .getRawAndEntities<{ s_id: string; row_version: string; key_ciphertext: string | null }>();
      const extra = new Map(raw.map((r) => [r.s_id, r]));
      const last = subs[subs.length - 1];
      if (last?.nextChargeAt) cursor.after = { at: last.nextChargeAt, id: last.id };
      const due: DueSubscription[] = [];
      const charges: ClaimedCharge[] = [];
      const planOf = async (id: string): Promise<PlanEntity> => {
        let p = plans.get(id);
        if (!p) {
          p = await m.getRepository(PlanEntity).findOneByOrFail({ id });
          plans.set(p.id, p);
        }
        return p;
      };
      // Consent before a paid conversion or a price increase: what each renewal does, decided for the batch at once.
      const plain = subs.filter((s) => !s.cancelAtPeriodEnd && !s.pendingPlanId);
      for (const s of plain) await planOf(s.planId);
      const decisions = await this.consents.decide(m, plain, (id) => plans.get(id)!.amount);
      const reliedOn = new Map<string, string>();
      for (const claimed of subs) {
        c.due++;
        let sub = claimed;
        let rowVersion: string | null = extra.get(sub.id)?.row_version ?? null;
        const decision = decisions.get(sub.id);
        if (decision && decision.action !== 'charge') {
          const event: SubscriptionEvent =
            decision.action === 'migrate'
              ? { type: 'migrate_plan', planId: decision.toPlanId, migrationId: decision.migrationId, consentId: decision.consentId }
              : { type: 'consent_missing', kind: decision.kind, action: this.runtime.config.consent.missingAction, changeId: decision.changeId };
          const applied = await this.attempts.applyInClaim(m, sub, event);
          if ('refused' in applied) {
            // Never charged without the consent it needs: left as it is (and logged) when the change is refused.
            this.logger.warn({
              message: 'consent decision not applied; not charged',
              subscription_id: sub.id,
              decision: decision.action,
              code: applied.refused,
            });
            c.skipped++;
            continue;
          }
          sub = applied.sub;
          rowVersion = null; // changed in this transaction: its outcome is settled the general way
          if (decision.action === 'migrate') {
            await this.consents.recordMigrationOutcome(m, decision.migrationId, sub.id, 'switched', decision.consentId);
            if (decision.consentId) reliedOn.set(sub.id, decision.consentId);
          } else {
            if (decision.changeId)
              await this.consents.recordMigrationOutcome(m, decision.changeId, sub.id, sub.status === 'paused' ? 'paused' : 'canceled', null);
            if (applied.retireBillingKeyId) retire.push(applied.retireBillingKeyId);
            if (sub.status === 'canceled') c.canceled++;
            else c.skipped++;
            ended.push(sub.id);
            continue;
          }
        } else if (decision?.consentId) reliedOn.set(sub.id, decision.consentId);
        if (sub.cancelAtPeriodEnd || sub.pendingPlanId) {
          // The period ends: a cancel at period end takes effect instead of the charge; a pending plan applies first.
          const applied = await this.attempts.applyInClaim(m, sub, { type: 'period_end' });
          if (!('refused' in applied)) {
            sub = applied.sub;
            rowVersion = null; // changed in this transaction: its outcome is settled the general way
            if (applied.retireBillingKeyId) retire.push(applied.retireBillingKeyId);
            if (sub.status === 'canceled') {
              ended.push(sub.id);
              c.canceled++;
              continue;
            }
          }
        }
        let plan = plans.get(sub.planId);
        if (!plan) {
          plan = await m.getRepository(PlanEntity).findOneByOrFail({ id: sub.planId });
          plans.set(plan.id, plan);
        }
        due.push({ subscription: sub, plan, keyCiphertext: extra.get(sub.id)?.key_ciphertext ?? null, rowVersion, consentId: reliedOn.get(sub.id) ?? null });
      }
      // Each charge records the consent it relied on (a paid conversion, or the first charge at a migrated price).
      charges.push(...(await this.attempts.openBatch(m, due, run.id)));
      // Left out: another instance recorded an attempt for it between our query and our lock; it is theirs.
      c.due -= due.length - charges.length;
      return { charges, claimed: subs.length };
    });
    // Subscriptions that ended at their period's end: reservations first, then the key (after commit).
    for (const id of ended) await this.chore('canceling the reservations of an ended subscription', id, () => this.reservations.cancelOutstanding(id));
    for (const id of retire) await this.billingKeys.destroyAtGatewayQuietly(id);
    return result;
  }

  /** Paused subscriptions whose resume_at has come are resumed (and charged) first. */
  private async resumeDuePauses(asOf: Date, c: RunCounters): Promise<void> {
    const rows: { id: string }[] = await this.db.query(
      `SELECT id FROM subscriptions WHERE status = 'paused' AND resume_at <= $1 ORDER BY resume_at, id LIMIT 10000`,
      [asOf],
    );
    for (const { id } of rows) {
      try {
        await this.subscriptions.resume(id, 'scheduled resume', 'system');
        c.resumed++;
      } catch (err) {
        // Another instance resumed it first (409), or Bootpay is down: the next run tries again.
        this.logger.warn({ message: 'scheduled resume skipped', subscription_id: id, error: err instanceof Error ? err.message : String(err) });
      }
    }
  }

  /**
   * Attempts left open (a time-out whose outcome is unknown, or a crash between recording and settling) are resolved
   * by re-sending the same order_id: approved → Bootpay answers duplicate (success); never sent or declined →
   * processed now. Only then may the subscription be charged again.
   */
  private async resolveOpenAttempts(asOf: Date, c: RunCounters): Promise<void> {
    const staleMs = Math.max(60_000, 2 * this.runtime.gateway.chargeTimeoutMs);
    const staleBefore = new Date(asOf.getTime() - staleMs);
    for (;;) {
      const payments = await this.attempts.leaseStaleAttempts(staleBefore, asOf, 200);
      if (!payments.length) return;
      await runPool(payments, this.settings.concurrency, null, async (p) => {
        const outcome = await this.attempts.send(p);
        await this.settleCounting(() => this.attempts.settle(p.id, outcome), p.id, outcome, c);
        if (outcome.kind !== 'unknown') c.resolved++;
      });
    }
  }

  /**
   * Reservations whose execution time is past (plus a grace period) without a webhook: asked of Bootpay by
   * reservation lookup and settled from the receipt. One whose registration was never confirmed (no reserve_id) is
   * resolved like an unknown charge: the same order_id is sent; a duplicate means it executed.
   */
  private async resolveDueReservations(asOf: Date, c: RunCounters): Promise<void> {
    const graceMs = 10 * 60 * 1000;
    const rows = await this.db
      .getRepository(PaymentEntity)
      .createQueryBuilder('p')
      .where(`p.status = 'READY' AND p.reserve_execute_at <= :before`, { before: new Date(asOf.getTime() - graceMs) })
      .orderBy('p.reserve_execute_at', 'ASC')
      .limit(1000)
      .getMany();
    for (const p of rows) {
      try {
        if (await this.attempts.resolveReservation(p, { sendUnconfirmed: true })) c.resolved++;
      } catch (err) {
        this.logger.warn({ message: 'reservation not resolved yet', payment_id: p.id, error: err instanceof Error ? err.message : String(err) });
      }
    }
  }

  /** Reservations of subscriptions that ended or are paused, which could not be canceled then, are canceled now. */
  private async cancelLeftoverReservations(): Promise<void> {
    const rows: { id: string }[] = await this.db.query(
      `SELECT DISTINCT s.id FROM subscriptions s JOIN payments p ON p.subscription_id = s.id
       WHERE s.status IN ('canceled', 'paused') AND p.status = 'READY' LIMIT 1000`,
    );
    for (const { id } of rows) await this.chore('canceling leftover reservations', id, () => this.reservations.cancelOutstanding(id));
  }

  /** Reservation-mode subscriptions without an outstanding reservation get their coming periods registered. */
  private async topUpReservations(): Promise<void> {
    const rows: { id: string }[] = await this.db.query(
      `SELECT s.id FROM subscriptions s JOIN plans pl ON pl.id = s.plan_id
       WHERE pl.charge_mode = 'reservation' AND s.status IN ('active', 'trialing', 'incomplete') AND s.pending_plan_id IS NULL
         AND NOT EXISTS (SELECT 1 FROM payments p WHERE p.subscription_id = s.id AND p.status IN ('READY', 'IN_PROGRESS', 'UNKNOWN'))
       ORDER BY s.next_charge_at NULLS LAST, s.id LIMIT 1000`,
    );
    for (const { id } of rows) await this.chore('registering reservations', id, () => this.reservations.topUp(id));
  }

  private async markInterruptedRuns(): Promise<void> {
    await this.db.query(
      `UPDATE charge_runs SET status = 'interrupted', finished_at = $1
       WHERE status = 'running' AND heartbeat_at < clock_timestamp() - make_interval(secs => $2)`,
      [this.clock.now(), INTERRUPTED_AFTER_SECONDS],
    );
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
