import { Inject, Injectable } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { DataSource, EntityManager } from 'typeorm';
import type { Actor } from '../../auth/auth.decorators';
import { BillingKeysService } from '../../billing-keys/billing-keys.service';
import { ChargeAttemptsService, ChargeOutcome, DeclinePolicy, SettleResult } from '../charge-attempts.service';
import { Effect, snapshot, SubscriptionEvent, transition } from '../transitions';
import { RefundsService } from '../refunds.service';
import { Clock } from '../../common/clock';
import { ConflictError, NotFoundError } from '../../common/errors';
import { IN_FLIGHT_PAYMENT_STATUSES, PaymentEntity } from '../../payments/payment.entity';
import { PlansService } from '../../plans/plans.service';
import { Runtime, RUNTIME } from '../../config/runtime';
import { SubscriptionResponseDto } from '../dto/subscription.dto';
import { SubscriptionEventsService } from '../subscription-events.service';
import { SubscriptionEntity } from '../subscription.entity';
import { subscriptionView } from '../subscription-view';

/**
 * What every subscription action shares: the row lock, the refusal of a change while a charge is in flight, the
 * transition authority's answer written with its audit events (apply), sending and settling a charge, and the view
 * the API answers with. The actions beside this file each do one thing through it.
 */
@Injectable()
export class SubscriptionWriter {
  constructor(
    @InjectDataSource() private readonly db: DataSource,
    private readonly clock: Clock,
    private readonly charges: ChargeAttemptsService,
    private readonly billingKeys: BillingKeysService,
    private readonly events: SubscriptionEventsService,
    private readonly refunds: RefundsService,
    private readonly plans: PlansService,
    @Inject(RUNTIME) private readonly runtime: Runtime,
  ) {}

  get tz(): string {
    return this.runtime.config.businessTimeZone;
  }

  async get(id: string): Promise<SubscriptionResponseDto> {
    return this.view(await this.getEntity(id));
  }

  async getEntity(id: string, m: EntityManager = this.db.manager): Promise<SubscriptionEntity> {
    const sub = await m.getRepository(SubscriptionEntity).findOneBy({ id });
    if (!sub) throw new NotFoundError('Subscription', id);
    return sub;
  }

  async view(sub: SubscriptionEntity, withPayment = true): Promise<SubscriptionResponseDto> {
    let latest: SubscriptionResponseDto['latest_payment'];
    if (withPayment) {
      const p = await this.db.getRepository(PaymentEntity).findOne({ where: { subscriptionId: sub.id }, order: { createdAt: 'DESC', id: 'DESC' } });
      latest = p
        ? {
            id: p.id,
            status: p.status,
            amount: p.amount,
            failure: p.failureCode ? { code: p.failureCode, pg_code: p.failurePgCode, message: p.failureMessage ?? '' } : null,
          }
        : null;
    }
    return { ...subscriptionView(sub), ...(withPayment ? { latest_payment: latest } : {}) };
  }

  async lock(m: EntityManager, id: string): Promise<SubscriptionEntity> {
    const sub = await m.getRepository(SubscriptionEntity).createQueryBuilder('s').setLock('pessimistic_write').where('s.id = :id', { id }).getOne();
    if (!sub) throw new NotFoundError('Subscription', id);
    return sub;
  }

  async assertNoOpenAttempt(m: EntityManager, sub: SubscriptionEntity): Promise<void> {
    // In flight: an attempt sent or being sent, or a reservation whose execution time has come (Bootpay may have
    // charged it): either must be settled before the subscription may change.
    const [open] = await m.query(
      `SELECT id, status FROM payments WHERE subscription_id = $1 AND (status = ANY($2) OR (status = 'READY' AND reserve_execute_at <= $3)) LIMIT 1`,
      [sub.id, IN_FLIGHT_PAYMENT_STATUSES, this.clock.now()],
    );
    if (open) {
      throw new ConflictError(
        'charge_in_progress',
        `A charge for this subscription is in progress (payment ${open.id}, ${open.status}); try again once it is settled`,
        { payment_id: open.id },
      );
    }
  }

  /**
   * Asks the transition authority for `event` under the subscription's row lock, and writes its answer with its
   * audit events; a refusal is a 409 naming the reason and the statuses the action is allowed from. The effects
   * are carried out by the caller after commit (ChargeAttemptsService.runEffects).
   */
  async apply(
    m: EntityManager,
    sub: SubscriptionEntity,
    event: SubscriptionEvent,
    actor: Actor | 'system',
    opts: { reason?: string | null; data?: Record<string, unknown> } = {},
  ): Promise<{ sub: SubscriptionEntity; effects: Effect[]; retire?: string }> {
    const terms = await this.plans.terms(sub.planId, m);
    if (!terms) throw new Error(`plan ${sub.planId} not found`);
    const before = snapshot(sub);
    const t = transition(sub, event, { now: this.clock.now(), tz: this.tz, plan: terms, dunning: this.runtime.config.dunning });
    if (!t.ok) {
      throw new ConflictError(t.code, t.message, t.code === 'invalid_transition' ? { current_status: sub.status, allowed_from: t.allowedFrom } : {});
    }
    await m.getRepository(SubscriptionEntity).save(t.sub);
    for (const e of t.events) {
      await this.events.record(m, t.sub, e.type, actor, {
        reason: e.reason ?? opts.reason ?? null,
        before,
        after: snapshot(t.sub),
        data: e.data || opts.data ? { ...(e.data ?? {}), ...(opts.data ?? {}) } : null,
      });
    }
    let retire: string | undefined;
    if (t.effects.some((e) => e.kind === 'retire_billing_key') && (await this.billingKeys.markForDeletionIfUnused(m, t.sub.billingKeyId)))
      retire = t.sub.billingKeyId;
    for (const e of t.effects) {
      if (e.kind !== 'refund_payment') continue;
      // A refund the change owes is recorded with it (sent after commit, retried by the run until Bootpay answers).
      const payment = await m
        .getRepository(PaymentEntity)
        .createQueryBuilder('p')
        .setLock('pessimistic_write')
        .where('p.id = :id', { id: e.paymentId })
        .getOneOrFail();
      const refund = await this.refunds.recordOwed(
        m,
        payment,
        { amount: payment.balanceAmount, taxFreeAmount: payment.taxFreeAmount - payment.refundedTaxFree, reason: e.reason },
        actor,
      );
      if (!refund) throw new ConflictError('refund_in_progress', `A refund of payment ${payment.id} is in flight; try again once it is settled`);
    }
    return { sub: t.sub, effects: t.effects, retire };
  }

  async sendAndSettle(payment: PaymentEntity, opts: { actor: Actor | 'system'; onDecline: DeclinePolicy }): Promise<SettleResult> {
    if (payment.amount === 0) {
      // Paid entirely by the subscription's credit: settled when it was recorded, nothing goes to Bootpay.
      return { payment, subscription: await this.getEntity(payment.subscriptionId), outcome: { kind: 'succeeded', receipt: null }, effects: [] };
    }
    const outcome: ChargeOutcome = await this.charges.send(payment);
    return this.charges.settle(payment.id, outcome, opts);
  }

  /** The applied payments of the current paid period (its own and prorated ones), oldest first, with what is left of them. */
  async periodPayments(m: EntityManager, sub: SubscriptionEntity): Promise<PaymentEntity[]> {
    return m
      .getRepository(PaymentEntity)
      .createQueryBuilder('p')
      .where('p.subscription_id = :id AND p.period_start = :start', { id: sub.id, start: sub.currentPeriodStart })
      .andWhere(`p.status IN ('DONE', 'PARTIAL_CANCELED') AND p.not_applied IS NULL AND p.balance_amount > 0`)
      .orderBy('p.created_at', 'ASC')
      .addOrderBy('p.id', 'ASC')
      .getMany();
  }
}
