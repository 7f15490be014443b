import { Inject, Injectable } from '@nestjs/common';
import { Runtime, RUNTIME } from '../../config/runtime';
import { ChargeAttemptsService } from '../../ledger/charge-attempts.service';
import { runPool } from '../concurrency';
import { RunCounters, RunOutcomeCounter } from './run-task';

/**
 * Attempts left open (a time-out whose outcome is unknown, or a crash between recording and settling) are resolved
 * by re-sending the same order_id: approved → Bootpay answers duplicate (success); never sent or declined →
 * processed now. Only then may the subscription be charged again.
 */
@Injectable()
export class ResolveOpenAttemptsTask {
  constructor(
    private readonly attempts: ChargeAttemptsService,
    private readonly counter: RunOutcomeCounter,
    @Inject(RUNTIME) private readonly runtime: Runtime,
  ) {}

  private get settings() {
    return this.runtime.config.chargeRun;
  }

  async run(asOf: Date, c: RunCounters): Promise<void> {
    const staleMs = Math.max(60_000, 2 * this.runtime.gateway.chargeTimeoutMs);
    const staleBefore = new Date(asOf.getTime() - staleMs);
    for (;;) {
      const payments = await this.attempts.leaseStaleAttempts(staleBefore, asOf, 200);
      if (!payments.length) return;
      await runPool(payments, this.settings.concurrency, null, async (p) => {
        const outcome = await this.attempts.send(p);
        await this.counter.settleCounting(() => this.attempts.settle(p.id, outcome), p.id, outcome, c);
        if (outcome.kind !== 'unknown') c.resolved++;
      });
    }
  }
}
