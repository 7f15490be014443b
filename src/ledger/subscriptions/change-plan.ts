import { Injectable } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { DataSource, EntityManager } from 'typeorm';
import type { Actor } from '../../auth/auth.decorators';
import { planChange, splitTaxFree } from '../../billing-math';
import { ChargeAttemptsService, orderIdFor } from '../charge-attempts.service';
import { ALLOWED_FROM, Effect, periodAt, snapshot } from '../transitions';
import { ReservationsService } from '../reservations.service';
import { RefundsService } from '../refunds.service';
import { Clock } from '../../common/clock';
import { ConflictError, DomainError } from '../../common/errors';
import { PaymentEntity } from '../../payments/payment.entity';
import { newPayment } from '../new-payment';
import { paymentView } from '../../payments/payment-view';
import { PlanEntity } from '../../plans/plan.entity';
import { ChangePlanDto, SubscriptionResponseDto } from '../dto/subscription.dto';
import { SubscriptionEventsService } from '../subscription-events.service';
import { SubscriptionWriter } from './subscription-writer';

/** Changes a subscription's plan now (prorated) or at the period's end, and refunds a credit balance. */
@Injectable()
export class ChangePlanAction {
  constructor(
    @InjectDataSource() private readonly db: DataSource,
    private readonly clock: Clock,
    private readonly charges: ChargeAttemptsService,
    private readonly events: SubscriptionEventsService,
    private readonly reservations: ReservationsService,
    private readonly refunds: RefundsService,
    private readonly w: SubscriptionWriter,
  ) {}

  async changePlan(id: string, dto: ChangePlanDto, actor: Actor): Promise<SubscriptionResponseDto> {
    await this.charges.resolveOpenFor(id, { resend: true });
    const changed = await this.db.transaction(async (m) => {
      const sub = await this.w.lock(m, id);
      if (!ALLOWED_FROM.change_plan.includes(sub.status as never))
        return this.w.apply(m, sub, { type: 'change_plan', planId: dto.plan_id }, actor).then(() => null);
      const plan = await m.getRepository(PlanEntity).findOneBy({ id: dto.plan_id });
      if (!plan || !plan.active) {
        throw new DomainError('unprocessable', 'invalid_reference', 'plan_id: no active plan has this id', [
          { field: 'plan_id', message: 'no active plan has this id' },
        ]);
      }
      if (plan.id === sub.planId) throw new ConflictError('same_plan', 'The subscription is already on this plan');
      await this.w.assertNoOpenAttempt(m, sub);
      const before = snapshot(sub);
      const now = this.clock.now();
      const oldPlan = await m.getRepository(PlanEntity).findOneByOrFail({ id: sub.planId });

      if (dto.proration === 'period_end') {
        const applied = await this.w.apply(m, sub, { type: 'change_plan_at_period_end', planId: plan.id }, actor, { reason: dto.reason });
        return { payment: null, effects: applied.effects };
      }
      if (sub.status === 'trialing') {
        // In a trial nothing was paid: the new plan simply applies from the trial's end.
        const applied = await this.w.apply(m, sub, { type: 'change_plan', planId: plan.id }, actor, { reason: dto.reason, data: { proration: null } });
        return { payment: null, effects: applied.effects };
      }

      // active, proration now (billing-math planChange): credit the unused part of what was paid for the period.
      // Same interval and count: charge the new price for the rest of the period, which keeps its end. Otherwise
      // (re-anchor): charge the new plan's price for a new period that starts now. A credit above the charge is
      // refunded at once from the period's payments.
      const start = sub.currentPeriodStart!;
      const end = sub.currentPeriodEnd!;
      const at = now < start ? start : now >= end ? new Date(end.getTime() - 1) : now;
      const paidRows = await this.w.periodPayments(m, sub);
      const q = planChange({
        old: { amount: oldPlan.amount, taxFree: oldPlan.taxFreeAmount, interval: oldPlan.interval, intervalCount: oldPlan.intervalCount },
        new: { amount: plan.amount, taxFree: plan.taxFreeAmount, interval: plan.interval, intervalCount: plan.intervalCount },
        paid: paidRows.reduce((sum, p) => sum + p.balanceAmount, 0),
        paidTaxFree: paidRows.reduce((sum, p) => sum + p.taxFreeAmount - p.refundedTaxFree, 0),
        periodStart: start,
        periodEnd: end,
        at,
      });
      const newPeriod = q.rule === 'reanchor' ? periodAt(at, plan, 0, this.w.tz) : { index: -1, start, end };
      const proration = {
        rule: q.rule,
        credit: q.credit,
        credit_tax_free: q.creditTaxFree,
        charge: q.charge,
        charge_tax_free: q.chargeTaxFree,
        net: q.net,
        net_tax_free: q.netTaxFree,
      };
      if (q.net <= 0) {
        // Nothing to charge: the change applies now (a re-anchored period paid by the credit), and a credit above
        // the new plan's price is kept on the subscription as a balance, applied to its next charges before the
        // card (finance may refund it instead: POST /v1/subscriptions/:id/refund-credit).
        const applied = await this.w.apply(
          m,
          sub,
          {
            type: 'change_plan',
            planId: plan.id,
            reanchor: q.rule === 'reanchor' ? { start: newPeriod.start, end: newPeriod.end, paid: true } : null,
            credit: -q.net,
          },
          actor,
          { reason: dto.reason, data: { proration } },
        );
        return { payment: null, effects: applied.effects };
      }
      // Something to charge: the change applies when (and only if) the prorated charge succeeds (see settle).
      await this.events.record(m, sub, 'subscription.plan_change_requested', actor, {
        reason: dto.reason,
        before,
        data: { from_plan_id: oldPlan.id, to_plan_id: plan.id, proration },
      });
      const [{ n }] = await m.query(`SELECT count(*)::int AS n FROM payments WHERE subscription_id = $1 AND kind = 'proration' AND period_start = $2`, [
        sub.id,
        newPeriod.start,
      ]);
      const payment = newPayment(
        {
          subscriptionId: sub.id,
          customerId: sub.customerId,
          billingKeyId: sub.billingKeyId,
          kind: 'proration',
          orderId: orderIdFor(sub.id, 'proration', newPeriod.start, n + 1),
          orderName: `${plan.name} (plan change)`.slice(0, 100),
          amount: q.net,
          taxFreeAmount: Math.max(0, Math.min(q.net, q.netTaxFree)),
          status: 'IN_PROGRESS',
          attempt: n + 1,
          // Index 0: the prorated charge pays for a new period of the new plan (re-anchored); -1: for the rest of this one.
          periodIndex: q.rule === 'reanchor' ? 0 : -1,
          periodStart: newPeriod.start,
          periodEnd: newPeriod.end,
          planId: plan.id,
        },
        now,
      );
      await m.getRepository(PaymentEntity).insert(payment);
      return { payment, effects: [] as Effect[] };
    });
    await this.charges.runEffects(id, changed?.effects ?? []);
    // Reservations were made at the old plan's price (or key): cancel them and register anew.
    await this.reservations.cancelOutstanding(id);
    const prorationPayment = changed?.payment ?? null;
    if (prorationPayment) {
      const settled = await this.w.sendAndSettle(prorationPayment, { actor, onDecline: 'record' });
      if (settled.outcome.kind === 'declined') {
        throw new DomainError(
          'payment_failed',
          'payment_failed',
          `The prorated charge was declined, so the plan was not changed: ${settled.outcome.failure.message}`,
          [],
          {
            failure: settled.outcome.failure,
            payment_id: prorationPayment.id,
            subscription: await this.w.get(id),
          },
        );
      }
      if (settled.outcome.kind === 'unknown') {
        // Sent, no answer: the change is pending until the outcome is known (the next run asks Bootpay).
        return { ...(await this.w.get(id)), pending_payment: { ...paymentView(settled.payment) } };
      }
    }
    await this.reservations.topUp(id);
    return this.w.get(id);
  }

  /**
   * Admin: refunds the subscription's credit balance (or part of it) to the card, from its paid payments, newest
   * first, as owed refunds recorded with the change (sent after commit, retried by the run until Bootpay answers).
   */
  async refundCredit(id: string, dto: { amount?: number; reason: string }, actor: Actor): Promise<SubscriptionResponseDto> {
    const done = await this.db.transaction(async (m) => {
      const sub = await this.w.lock(m, id);
      const wanted = dto.amount ?? sub.creditBalance;
      if (!(wanted > 0) || wanted > sub.creditBalance) {
        throw new ConflictError('credit_exceeded', `The subscription's credit balance is ${sub.creditBalance} won; nothing above it can be refunded`, {
          credit_balance: sub.creditBalance,
        });
      }
      const payments = await m
        .getRepository(PaymentEntity)
        .createQueryBuilder('p')
        .where(`p.subscription_id = :id AND p.status IN ('DONE', 'PARTIAL_CANCELED') AND p.not_applied IS NULL AND p.balance_amount > 0`, { id })
        .orderBy('p.created_at', 'ASC')
        .getMany();
      const refundable = Math.min(
        wanted,
        payments.reduce((sum, p) => sum + p.balanceAmount, 0),
      );
      if (refundable <= 0) throw new ConflictError('credit_not_refundable', 'No payment of this subscription has a balance left to refund the credit from');
      const effects = await this.refundCredit0(m, payments, refundable, actor, dto.reason);
      const applied = await this.w.apply(m, sub, { type: 'credit_refunded', amount: refundable }, actor, { reason: dto.reason });
      return { ...applied, effects: [...applied.effects, ...effects] };
    });
    await this.charges.runEffects(id, done.effects);
    return this.w.get(id);
  }

  /**
   * Refunds a downgrade's credit from the current period's payments, newest first, as owed refunds recorded in the
   * caller's transaction (sent after commit, retried by the run until Bootpay answers).
   */
  private async refundCredit0(m: EntityManager, payments: PaymentEntity[], amount: number, actor: Actor, reason: string | undefined): Promise<Effect[]> {
    const effects: Effect[] = [];
    let left = amount;
    for (const p of [...payments].reverse()) {
      if (left <= 0) break;
      const part = Math.min(left, p.balanceAmount);
      // Its tax-free part in proportion to what is left of the payment.
      const partTaxFree = splitTaxFree(part, p.balanceAmount, p.taxFreeAmount - p.refundedTaxFree);
      const locked = await m.getRepository(PaymentEntity).createQueryBuilder('p').setLock('pessimistic_write').where('p.id = :id', { id: p.id }).getOneOrFail();
      const refund = await this.refunds.recordOwed(
        m,
        locked,
        { amount: part, taxFreeAmount: partTaxFree, reason: `credit of a plan change${reason ? `: ${reason}` : ''}` },
        actor,
      );
      if (!refund)
        throw new ConflictError('refund_in_progress', `A refund of payment ${p.id} is in flight; try the change again once it is settled`, {
          payment_id: p.id,
        });
      effects.push({ kind: 'refund_payment', paymentId: p.id, reason: 'credit of a plan change' });
      left -= part;
    }
    return effects;
  }
}
