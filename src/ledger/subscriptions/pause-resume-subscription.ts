import { Inject, Injectable } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { DataSource, EntityManager } from 'typeorm';
import type { Actor } from '../../auth/auth.decorators';
import { addDays } from '../../billing-math';
import { ChargeAttemptsService } from '../charge-attempts.service';
import { CONSENT_PAUSE_REASON, CONSENT_WINDOW_DAYS } from '../transitions';
import { Clock } from '../../common/clock';
import { ConflictError, InvalidInputError } from '../../common/errors';
import { PlanEntity } from '../../plans/plan.entity';
import { Runtime, RUNTIME } from '../../config/runtime';
import { PauseSubscriptionDto, SubscriptionResponseDto } from '../dto/subscription.dto';
import { SubscriptionEntity } from '../subscription.entity';
import { SubscriptionWriter } from './subscription-writer';

/** Pauses and resumes a subscription (a trial paused for want of consent resumes only with it). */
@Injectable()
export class PauseResumeAction {
  constructor(
    @InjectDataSource() private readonly db: DataSource,
    private readonly clock: Clock,
    private readonly charges: ChargeAttemptsService,
    @Inject(RUNTIME) private readonly runtime: Runtime,
    private readonly w: SubscriptionWriter,
  ) {}

  async pause(id: string, dto: PauseSubscriptionDto, actor: Actor): Promise<SubscriptionResponseDto> {
    const now = this.clock.now();
    let resumeAt: Date | null = null;
    if (dto.resume_at !== undefined) {
      resumeAt = new Date(dto.resume_at);
      if (Number.isNaN(resumeAt.getTime()) || resumeAt.getTime() <= now.getTime()) {
        throw new InvalidInputError([{ field: 'resume_at', message: 'resume_at must be a date-time in the future' }]);
      }
    }
    await this.charges.resolveOpenFor(id);
    const done = await this.db.transaction(async (m) => {
      const sub = await this.w.lock(m, id);
      await this.w.assertNoOpenAttempt(m, sub);
      return this.w.apply(m, sub, { type: 'pause', reason: dto.reason, resumeAt }, actor);
    });
    await this.charges.runEffects(id, done.effects);
    return this.w.get(id);
  }

  /**
   * Resumes a paused subscription. Time already paid for is not charged again: resumed inside the period (or trial)
   * that was running when it was paused, it simply goes on, and the next charge is at that period's end. Resumed
   * after it ended, a cancel at period end takes effect (nothing is charged); otherwise a new period starts on the
   * resume date, on the plan that was to apply from the period's end, and is charged at once (a decline makes it
   * past_due). Also called by the charge run when resume_at has come.
   */
  async resume(id: string, reason: string | undefined, actor: Actor | 'system'): Promise<SubscriptionResponseDto> {
    await this.charges.resolveOpenFor(id, { resend: true });
    const done = await this.db.transaction(async (m) => {
      const sub = await this.w.lock(m, id);
      await this.w.assertNoOpenAttempt(m, sub);
      await this.assertConversionConsent(m, sub);
      const applied = await this.w.apply(m, sub, { type: 'resume' }, actor, { reason });
      if (!applied.effects.some((e) => e.kind === 'charge_now')) return { ...applied, payment: null };
      const plan = await m.getRepository(PlanEntity).findOneByOrFail({ id: applied.sub.planId });
      return { ...applied, payment: await this.charges.open(m, applied.sub, plan) };
    });
    await this.charges.runEffects(id, done.effects, done.retire);
    if (done.payment) await this.w.sendAndSettle(done.payment, { actor, onDecline: 'dunning' });
    return this.w.get(id);
  }

  /**
   * A trial paused at its end for want of consent to the paid conversion (전자상거래법 13⑥) resumes, and is charged,
   * only with a trial_conversion consent obtained within the 30 days before now and not withdrawn.
   */
  private async assertConversionConsent(m: EntityManager, sub: SubscriptionEntity): Promise<void> {
    if (sub.status !== 'paused' || sub.pauseReason !== CONSENT_PAUSE_REASON || !this.runtime.config.consent.required) return;
    const now = this.clock.now();
    const [consent] = await m.query(
      `SELECT id FROM consents WHERE subscription_id = $1 AND kind = 'trial_conversion' AND withdrawn_at IS NULL AND obtained_at <= $2 AND obtained_at >= $3 LIMIT 1`,
      [sub.id, now, addDays(now, -CONSENT_WINDOW_DAYS, this.w.tz)],
    );
    if (!consent) {
      throw new ConflictError(
        'consent_required',
        "This subscription was paused at its trial's end for want of the consumer's consent to the paid conversion; record that consent (POST /v1/subscriptions/:id/consents) before resuming it",
      );
    }
  }
}
