import { Injectable } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { DataSource, EntityManager } from 'typeorm';
import type { Actor } from '../../auth/auth.decorators';
import { unusedRefundOfPeriod } from '../../billing-math';
import { ChargeAttemptsService } from '../charge-attempts.service';
import { periodAt } from '../transitions';
import { RefundsService } from '../refunds.service';
import { Clock } from '../../common/clock';
import { ConflictError, DomainError, InvalidInputError } from '../../common/errors';
import { PaymentEntity } from '../../payments/payment.entity';
import { PlansService } from '../../plans/plans.service';
import { CancelSubscriptionDto, SubscriptionResponseDto } from '../dto/subscription.dto';
import { SubscriptionEntity } from '../subscription.entity';
import { SubscriptionWriter } from './subscription-writer';

/** Cancels now (with the unused part refunded, for finance) or at the period's end, and reactivates the latter. */
@Injectable()
export class CancelSubscriptionAction {
  constructor(
    @InjectDataSource() private readonly db: DataSource,
    private readonly clock: Clock,
    private readonly charges: ChargeAttemptsService,
    private readonly refunds: RefundsService,
    private readonly plans: PlansService,
    private readonly w: SubscriptionWriter,
  ) {}

  async cancel(id: string, dto: CancelSubscriptionDto, actor: Actor): Promise<SubscriptionResponseDto> {
    if (dto.refund_unused && dto.at_period_end) {
      throw new InvalidInputError([{ field: 'refund_unused', message: 'refund_unused goes with an immediate cancel (at_period_end false)' }]);
    }
    if (dto.refund_unused && actor.role !== 'admin') {
      // Refunding is a finance decision, as POST /v1/payments/:id/refunds is.
      throw new DomainError('forbidden', 'refund_requires_admin', 'refund_unused refunds money: it needs an admin key (finance)');
    }
    await this.charges.resolveOpenFor(id);
    const done = await this.db.transaction(async (m) => {
      const sub = await this.w.lock(m, id);
      const now = this.clock.now();
      // A cancel must not race a charge: the customer would read "no more charges" and then be charged.
      await this.w.assertNoOpenAttempt(m, sub);
      if (dto.at_period_end) {
        return this.w.apply(m, sub, { type: 'cancel_at_period_end', reason: dto.reason, renewalPaidAhead: await this.renewalPaidAhead(m, sub, now) }, actor);
      }
      // The unused part is owed with the cancel: recorded in its transaction as pending refunds (sent after commit,
      // retried by the run until Bootpay answers), so a refusal or a crash never loses it.
      const owed = dto.refund_unused ? await this.unusedPartOfPaidPeriod(m, sub, now) : [];
      const refunds = [];
      for (const part of owed) {
        const payment = await m
          .getRepository(PaymentEntity)
          .createQueryBuilder('p')
          .setLock('pessimistic_write')
          .where('p.id = :id', { id: part.paymentId })
          .getOneOrFail();
        const refund = await this.refunds.recordOwed(
          m,
          payment,
          { amount: part.amount, taxFreeAmount: part.taxFree, reason: `unused part of the period: ${dto.reason}` },
          actor,
        );
        if (!refund)
          throw new ConflictError('refund_in_progress', `A refund of payment ${payment.id} is in flight; try the cancel again once it is settled`, {
            payment_id: payment.id,
          });
        refunds.push({ refund_id: refund.id, payment_id: payment.id, amount: refund.amount, tax_free_amount: refund.taxFreeAmount, vat: refund.vat });
      }
      const applied = await this.w.apply(m, sub, { type: 'cancel_now', reason: dto.reason }, actor, {
        data: refunds.length ? { refund_unused: refunds } : undefined,
      });
      return {
        ...applied,
        effects: [
          ...applied.effects,
          ...refunds.map((r) => ({ kind: 'refund_payment' as const, paymentId: r.payment_id, reason: 'unused part of the period' })),
        ],
      };
    });
    await this.charges.runEffects(id, done.effects, done.retire);
    return this.w.get(id);
  }

  async reactivate(id: string, reason: string | undefined, actor: Actor): Promise<SubscriptionResponseDto> {
    const done = await this.db.transaction(async (m) => this.w.apply(m, await this.w.lock(m, id), { type: 'reactivate' }, actor, { reason }));
    await this.charges.runEffects(id, done.effects);
    return this.w.get(id);
  }

  /**
   * The renewal of the coming period, when the due day's run already charged it before the current period ended
   * (see "Due by business day" in the README): a cancel at period end then refunds it and ends at the old end.
   */
  private async renewalPaidAhead(m: EntityManager, sub: SubscriptionEntity, now: Date): Promise<{ paymentId: string; previousPeriodStart: Date } | undefined> {
    if (!sub.currentPeriodStart || sub.currentPeriodStart.getTime() <= now.getTime()) return undefined;
    const [p] = await m.query(
      `SELECT id FROM payments WHERE subscription_id = $1 AND kind = 'period' AND period_start = $2 AND status IN ('DONE', 'PARTIAL_CANCELED') ORDER BY created_at DESC LIMIT 1`,
      [sub.id, sub.currentPeriodStart],
    );
    if (!p) return undefined;
    const terms = await this.plans.terms(sub.planId, m);
    const previousPeriodStart =
      terms && sub.periodIndex >= 1
        ? periodAt(sub.anchorAt, terms, sub.periodIndex - 1, this.w.tz).start
        : sub.trialEnd && sub.trialEnd.getTime() === sub.currentPeriodStart.getTime()
          ? sub.createdAt
          : sub.currentPeriodStart;
    return { paymentId: p.id, previousPeriodStart };
  }

  /**
   * The refunds owed for the unused part of the current paid period, counting every payment made for it (the
   * period's own payment and prorated ones), less what was refunded already (billing-math unusedRefundOfPeriod, on
   * the current plan's price). From the cancel, or for a paused subscription from its pause (the time since was not
   * used); nothing in a trial, or once the paid period is over.
   */
  private async unusedPartOfPaidPeriod(
    m: EntityManager,
    sub: SubscriptionEntity,
    now: Date,
  ): Promise<{ paymentId: string; amount: number; taxFree: number }[]> {
    if (!sub.currentPeriodStart || !sub.currentPeriodEnd || sub.status === 'trialing') return [];
    const rows = await this.w.periodPayments(m, sub);
    if (!rows.length) return [];
    const terms = await this.plans.terms(sub.planId, m);
    const at = sub.status === 'paused' && sub.pausedAt ? sub.pausedAt : now;
    const r = unusedRefundOfPeriod({
      payments: rows.map((p) => ({
        ...p,
        coversFrom: p.kind === 'proration' ? clampInto(p.createdAt, sub.currentPeriodStart!, sub.currentPeriodEnd!) : undefined,
      })),
      periodStart: sub.currentPeriodStart,
      periodEnd: sub.currentPeriodEnd,
      at,
      planAmount: terms?.amount,
    });
    return r.parts.map((part) => ({ paymentId: rows[part.paymentIndex].id, amount: part.amount, taxFree: part.taxFree }));
  }
}

/** `at` moved into [start, end). */
function clampInto(at: Date, start: Date, end: Date): Date {
  return at < start ? start : at >= end ? new Date(end.getTime() - 1) : at;
}
