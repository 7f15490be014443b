import { Logger } from '@nestjs/common';
import type { ChargeAttemptsService, ChargeOutcome, ClaimedCharge } from '../ledger/charge-attempts.service';
import { runPool } from './concurrency';

interface Item {
  claim: ClaimedCharge;
  outcome: ChargeOutcome;
}

export interface SettlerOptions {
  /** Outcomes written by one statement at most. */
  maxBatch: number;
  /** Outcomes answered by Bootpay and not recorded yet, at most: beyond, add() waits. */
  maxPending: number;
  /** Writes in flight at most (a second one only once a whole batch is waiting). */
  maxFlushes: number;
  /** How long an outcome may wait for others to be written with it (0: written as soon as no write is in flight). */
  gatherMs: number;
}

/**
 * Records the outcomes of a charge run's charges apart from sending them, so a gateway slot is free as soon as Bootpay
 * has answered. Like a group commit: when no write is in flight an outcome is written at once; while one is, the
 * outcomes that arrive gather and are written together next, approvals in one statement
 * (ChargeAttemptsService.settleSucceededBatch) and unknown outcomes in another. Declines, and approvals the batch
 * statement could not record (the subscription changed since the claim), are settled one by one the general way.
 *
 * Back-pressure: add() waits while `maxPending` outcomes are unrecorded, so a slow database slows the charging down
 * instead of filling memory. A crash loses nothing: an outcome not recorded yet leaves its attempt open
 * (IN_PROGRESS), and the next run resolves it by re-sending the same order_id before anything else is charged.
 */
export class ChargeSettler {
  private readonly logger = new Logger(ChargeSettler.name);
  private buffer: Item[] = [];
  private writing = 0;
  private readonly flushes = new Set<Promise<void>>();
  private waiters: (() => void)[] = [];
  private timer: NodeJS.Timeout | null = null;

  constructor(
    private readonly attempts: ChargeAttemptsService,
    private readonly opts: SettlerOptions,
    /** Called once per outcome when it is recorded (error: it could not be, and the attempt stays open). */
    private readonly onSettled: (paymentId: string, outcome: ChargeOutcome, error?: unknown) => void,
  ) {}

  async add(claim: ClaimedCharge, outcome: ChargeOutcome): Promise<void> {
    this.buffer.push({ claim, outcome });
    this.kick();
    while (this.buffer.length + this.writing >= this.opts.maxPending) {
      await new Promise<void>((resolve) => this.waiters.push(resolve));
    }
  }

  /** Resolves once every outcome added so far is recorded. */
  async drain(): Promise<void> {
    for (;;) {
      this.kick(true);
      if (!this.flushes.size && !this.buffer.length) return;
      await Promise.all(this.flushes);
    }
  }

  private kick(now = false): void {
    while (this.buffer.length >= this.opts.maxBatch && this.flushes.size < this.opts.maxFlushes) this.flush();
    if (!this.buffer.length || this.flushes.size) return;
    if (now || this.opts.gatherMs <= 0) {
      this.flush();
    } else if (!this.timer) {
      this.timer = setTimeout(() => {
        this.timer = null;
        this.kick(true);
      }, this.opts.gatherMs);
    }
  }

  private flush(): void {
    if (this.timer) {
      clearTimeout(this.timer);
      this.timer = null;
    }
    const items = this.buffer.splice(0, this.opts.maxBatch);
    this.writing += items.length;
    const done: Promise<void> = this.write(items).finally(() => {
      this.writing -= items.length;
      this.flushes.delete(done);
      const waiters = this.waiters;
      this.waiters = [];
      for (const wake of waiters) wake();
      this.kick();
    });
    this.flushes.add(done);
  }

  private async write(items: Item[]): Promise<void> {
    const approvals = items.filter((i) => i.outcome.kind === 'succeeded' && i.claim.rowVersion);
    const unknown = items.filter((i) => i.outcome.kind === 'unknown');
    const oneByOne = items.filter((i) => !approvals.includes(i) && !unknown.includes(i));

    if (approvals.length) {
      let recorded = new Set<string>();
      try {
        recorded = await this.attempts.settleSucceededBatch(
          approvals.map((i) => ({ claim: i.claim, receipt: i.outcome.kind === 'succeeded' ? i.outcome.receipt : null })),
        );
      } catch (err) {
        // A deadlock or a lost connection: each is settled the general way below.
        this.logger.warn({ message: 'batch settle failed; settling one by one', error: err instanceof Error ? err.message : String(err) });
      }
      for (const i of approvals) {
        if (!recorded.has(i.claim.payment.id)) {
          oneByOne.push(i);
          continue;
        }
        this.onSettled(i.claim.payment.id, i.outcome);
        await this.attempts.afterBatchSuccess(i.claim);
      }
    }
    if (unknown.length) {
      try {
        await this.attempts.markUnknown(unknown.map((i) => i.claim.payment.id));
        for (const i of unknown) this.onSettled(i.claim.payment.id, i.outcome);
      } catch (err) {
        for (const i of unknown) this.onSettled(i.claim.payment.id, i.outcome, err);
      }
    }
    await runPool(oneByOne, 4, null, async (i) => {
      try {
        await this.attempts.settle(i.claim.payment.id, i.outcome);
        this.onSettled(i.claim.payment.id, i.outcome);
      } catch (err) {
        this.onSettled(i.claim.payment.id, i.outcome, err);
      }
    });
  }
}
