import { Inject, Injectable, Logger, OnApplicationBootstrap, OnModuleDestroy } from '@nestjs/common';
import { CronJob } from 'cron';
import { Runtime, RUNTIME } from '../config/runtime';
import { ChargeRunsService } from './charge-runs.service';

/**
 * The nightly tick. Thin: it only records a run for the tick and executes it. Every instance may tick; the unique
 * index on (scheduled_for) for cron runs makes one run per tick, and the row locks in the run make concurrent runs
 * safe anyway. Turned off with CHARGE_RUN_CRON_ENABLED=false (workers that serve only the API).
 */
@Injectable()
export class ChargeRunCron implements OnApplicationBootstrap, OnModuleDestroy {
  private readonly logger = new Logger(ChargeRunCron.name);
  private job?: CronJob;
  private running?: Promise<unknown>;

  constructor(
    private readonly runs: ChargeRunsService,
    @Inject(RUNTIME) private readonly runtime: Runtime,
  ) {}

  onApplicationBootstrap(): void {
    const s = this.runtime.config.chargeRun;
    if (!s.cronEnabled) return;
    this.job = CronJob.from({ cronTime: s.cron, timeZone: s.timeZone, onTick: () => void this.tick(), start: true });
    this.logger.log({ message: 'charge run cron scheduled', cron: s.cron, time_zone: s.timeZone });
  }

  async tick(at = new Date()): Promise<void> {
    if (this.running) return; // the previous tick's run is still going in this process
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
