import { Inject, Injectable, Logger, OnApplicationBootstrap, OnModuleDestroy } from '@nestjs/common';
import { CronJob } from 'cron';
import { Runtime, RUNTIME } from '../config/runtime';
import { ReconciliationRunsService } from './reconciliation-runs.service';

/**
 * The nightly reconciliation tick (RECONCILE_CRON, default 04:00 in CHARGE_RUN_TIME_ZONE, after the charge run). Thin,
 * like the charge run's: it records a run for the tick and executes it. Every instance with CHARGE_RUN_CRON_ENABLED
 * ticks; the unique index on reconciliation_runs (scheduled_for) for cron runs makes one run per tick.
 */
@Injectable()
export class ReconciliationCron implements OnApplicationBootstrap, OnModuleDestroy {
  private readonly logger = new Logger(ReconciliationCron.name);
  private job?: CronJob;
  private running?: Promise<unknown>;

  constructor(
    private readonly runs: ReconciliationRunsService,
    @Inject(RUNTIME) private readonly runtime: Runtime,
  ) {}

  onApplicationBootstrap(): void {
    const { cronEnabled, timeZone } = this.runtime.config.chargeRun;
    if (!cronEnabled) return;
    const cron = this.runtime.config.reconcile.cron;
    this.job = CronJob.from({ cronTime: cron, timeZone, onTick: () => void this.tickLogged(), start: true });
    this.logger.log({ message: 'reconciliation cron scheduled', cron, time_zone: timeZone });
  }

  private async tickLogged(): Promise<void> {
    try {
      await this.tick();
    } catch (err) {
      this.logger.error({ message: 'reconciliation tick failed; the next tick tries again', error: err instanceof Error ? err.message : String(err) });
    }
  }

  /** Makes the tick's run unless another instance did; `at` is the tick's time (the minute is what counts). */
  async tick(at = new Date()): Promise<void> {
    if (this.running) return;
    const scheduledFor = new Date(Math.floor(at.getTime() / 60_000) * 60_000);
    const run = await this.runs.create('cron', { scheduledFor });
    if (!run) return; // another instance took this tick
    this.running = this.runs.execute(run).finally(() => (this.running = undefined));
    await this.running;
  }

  async onModuleDestroy(): Promise<void> {
    await this.job?.stop();
  }
}
