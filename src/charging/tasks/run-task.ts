import { Injectable, Logger, Optional } from '@nestjs/common';
import type { ChargeOutcome } from '../../ledger/charge-attempts.service';
import { MetricsService } from '../../metrics/metrics.service';

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

/** The log context of the charge run, its claims and its tasks: their lines read as ChargeRunsService's. */
export const RUN_LOG_CONTEXT = 'ChargeRunsService';

const logger = new Logger(RUN_LOG_CONTEXT);

/** Runs one chore of the run; a failure is logged and counted (task_failures) and the run goes on. */
export async function task(c: RunCounters, name: string, run: () => Promise<unknown>): Promise<void> {
  try {
    await run();
  } catch (err) {
    c.taskFailures++;
    logger.error({ message: 'charge run task failed; the run goes on', task: name, error: err instanceof Error ? err.message : String(err) });
  }
}

/** One subscription's part of a chore: a failure is logged with its context and retried by the next run. */
export async function chore(what: string, subscriptionId: string, run: () => Promise<unknown>): Promise<void> {
  try {
    await run();
  } catch (err) {
    logger.warn({
      message: `${what} failed; the next run tries again`,
      subscription_id: subscriptionId,
      error: err instanceof Error ? err.message : String(err),
    });
  }
}

/** Counts the charge outcomes of a run (its counters and the metrics). */
@Injectable()
export class RunOutcomeCounter {
  private readonly logger = new Logger(RUN_LOG_CONTEXT);

  constructor(@Optional() private readonly metrics?: MetricsService) {}

  async settleCounting(settle: () => Promise<unknown>, paymentId: string, outcome: ChargeOutcome, c: RunCounters): Promise<void> {
    try {
      await settle();
      this.count(c, outcome);
    } catch (err) {
      this.count(c, outcome, err, paymentId);
    }
  }

  /** Counts a recorded outcome; one that could not be recorded stays open, is resolved by the next run, and counts as unknown. */
  count(c: RunCounters, outcome: ChargeOutcome, err?: unknown, paymentId?: string): void {
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
}
