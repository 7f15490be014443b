import { Injectable } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { DataSource } from 'typeorm';
import { Clock } from '../../common/clock';

/** A run whose heartbeat is older than this (wall clock) belonged to a process that died. */
const INTERRUPTED_AFTER_SECONDS = 300;

/** Runs left 'running' by a process that died (no heartbeat for INTERRUPTED_AFTER_SECONDS) are marked interrupted. */
@Injectable()
export class MarkInterruptedRunsTask {
  constructor(
    @InjectDataSource() private readonly db: DataSource,
    private readonly clock: Clock,
  ) {}

  async run(): Promise<void> {
    await this.db.query(
      `UPDATE charge_runs SET status = 'interrupted', finished_at = $1
       WHERE status = 'running' AND heartbeat_at < clock_timestamp() - make_interval(secs => $2)`,
      [this.clock.now(), INTERRUPTED_AFTER_SECONDS],
    );
  }
}
