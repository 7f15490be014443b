import { Injectable } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { DataSource } from 'typeorm';
import type { Actor } from '../../auth/auth.decorators';
import { ChargeAttemptsService } from '../charge-attempts.service';
import { PlanEntity } from '../../plans/plan.entity';
import { SubscriptionResponseDto } from '../dto/subscription.dto';
import { SubscriptionWriter } from './subscription-writer';

/** Admin: charges a past_due or unpaid subscription now. */
@Injectable()
export class RetryChargeAction {
  constructor(
    @InjectDataSource() private readonly db: DataSource,
    private readonly charges: ChargeAttemptsService,
    private readonly w: SubscriptionWriter,
  ) {}

  /**
   * Admin: charge a past_due or unpaid subscription now. It pays for the outstanding period while that period is
   * still running; when it has already ended, for a new period starting now (see chargePeriod), so the subscription
   * is never left active with its paid period over.
   */
  async retryNow(id: string, actor: Actor, reason?: string): Promise<SubscriptionResponseDto> {
    await this.charges.resolveOpenFor(id, { resend: true });
    const payment = await this.db.transaction(async (m) => {
      const sub = await this.w.lock(m, id);
      await this.w.assertNoOpenAttempt(m, sub);
      const applied = await this.w.apply(m, sub, { type: 'retry' }, actor, { reason });
      const plan = await m.getRepository(PlanEntity).findOneByOrFail({ id: applied.sub.planId });
      return this.charges.open(m, applied.sub, plan);
    });
    await this.w.sendAndSettle(payment, { actor, onDecline: 'record' });
    return this.w.get(id);
  }
}
