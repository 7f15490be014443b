import { Injectable, Logger } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { DataSource } from 'typeorm';
import { SubscriptionsService } from '../../ledger/subscriptions.service';
import { RUN_LOG_CONTEXT, RunCounters } from './run-task';

/** Paused subscriptions whose resume_at has come are resumed (and charged) first. */
@Injectable()
export class ResumeDuePausesTask {
  private readonly logger = new Logger(RUN_LOG_CONTEXT);

  constructor(
    @InjectDataSource() private readonly db: DataSource,
    private readonly subscriptions: SubscriptionsService,
  ) {}

  async run(asOf: Date, c: RunCounters): Promise<void> {
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
}
