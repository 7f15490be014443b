import { Inject, Injectable, Logger, OnApplicationBootstrap, OnModuleDestroy } from '@nestjs/common';
import { CronJob } from 'cron';
import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { Runtime, RUNTIME } from '../config/runtime';
import { ConsentNoticesService } from './consent-notices.service';

/**
 * The notice task's tick (CONSENT_NOTICE_CRON, hourly by default). Thin: every instance with CHARGE_RUN_CRON_ENABLED may
 * tick; the tick's row (consent_notice_ticks) lets one instance sweep, and the notices' own unique rows make a second
 * sweep harmless anyway.
 */
@Injectable()
export class ConsentNoticesCron implements OnApplicationBootstrap, OnModuleDestroy {
  private readonly logger = new Logger(ConsentNoticesCron.name);
  private readonly worker = `${hostname()}:${process.pid}:${randomBytes(3).toString('hex')}`;
  private job?: CronJob;
  private running = false;

  constructor(
    private readonly notices: ConsentNoticesService,
    @Inject(RUNTIME) private readonly runtime: Runtime,
  ) {}

  onApplicationBootstrap(): void {
    const { chargeRun, consent } = this.runtime.config;
    if (!chargeRun.cronEnabled) return;
    this.job = CronJob.from({ cronTime: consent.noticeCron, timeZone: chargeRun.timeZone, onTick: () => void this.tick(), start: true });
    this.logger.log({ message: 'consent notice cron scheduled', cron: consent.noticeCron, time_zone: chargeRun.timeZone });
  }

  async tick(at = new Date()): Promise<void> {
    if (this.running) return;
    this.running = true;
    try {
      await this.notices.tick(new Date(Math.floor(at.getTime() / 60_000) * 60_000), this.worker);
    } catch (err) {
      this.logger.error({ message: 'consent notice sweep failed; the next tick tries again', error: err instanceof Error ? err.message : String(err) });
    } finally {
      this.running = false;
    }
  }

  async onModuleDestroy(): Promise<void> {
    await this.job?.stop();
  }
}
