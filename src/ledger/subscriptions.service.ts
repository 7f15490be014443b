import { Inject, Injectable } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { DataSource, EntityManager } from 'typeorm';
import type { Actor } from '../auth/auth.decorators';
import { addDays, planChange, splitTaxFree, unusedRefundOfPeriod } from '../billing-math';
import { BillingKeysService } from '../billing-keys/billing-keys.service';
import { ChargeAttemptsService, ChargeOutcome, DeclinePolicy, orderIdFor, SettleResult } from './charge-attempts.service';
import { ALLOWED_FROM, CONSENT_PAUSE_REASON, CONSENT_WINDOW_DAYS, Effect, periodAt, snapshot, SubscriptionEvent, transition } from './transitions';
import { ReservationsService } from './reservations.service';
import { RefundsService } from './refunds.service';
import { Clock } from '../common/clock';
import { ConflictError, DomainError, FieldError, InvalidInputError, NotFoundError } from '../common/errors';
import { Page, PageQueryDto, paginate } from '../common/pagination';
import { IN_FLIGHT_PAYMENT_STATUSES, PaymentEntity } from '../payments/payment.entity';
import { newPayment } from './new-payment';
import { paymentView } from '../payments/payment-view';
import { PlanEntity } from '../plans/plan.entity';
import { PlansService, PlanTerms } from '../plans/plans.service';
import { Runtime, RUNTIME } from '../config/runtime';
import {
  CancelSubscriptionDto,
  ChangePlanDto,
  CreateSubscriptionDto,
  ListSubscriptionsQueryDto,
  PauseSubscriptionDto,
  SubscriptionResponseDto,
  SwapBillingKeyDto,
} from './dto/subscription.dto';
import { SubscriptionEventEntity } from './subscription-event.entity';
import { auditRow, outboundOf, SubscriptionEventsService } from './subscription-events.service';
import { deliveriesFromCte, outboxRow } from '../outbound-webhooks/outbox.service';
import { preparedQuery } from '../common/prepared';
import { randomUUID } from 'node:crypto';
import { SubscriptionEntity } from './subscription.entity';
import { subscriptionView } from './subscription-view';

const MAX_FUTURE_START_MS = 366 * 24 * 60 * 60 * 1000;
const CLOCK_SKEW_MS = 60 * 1000;

@Injectable()
export class SubscriptionsService {
  constructor(
    @InjectDataSource() private readonly db: DataSource,
    private readonly clock: Clock,
    private readonly charges: ChargeAttemptsService,
    private readonly billingKeys: BillingKeysService,
    private readonly events: SubscriptionEventsService,
    private readonly reservations: ReservationsService,
    private readonly refunds: RefundsService,
    private readonly plans: PlansService,
    @Inject(RUNTIME) private readonly runtime: Runtime,
  ) {}

  private get tz(): string {
    return this.runtime.config.businessTimeZone;
  }

  // ------------------------------------------------------------------ reads

  async get(id: string): Promise<SubscriptionResponseDto> {
    return this.view(await this.getEntity(id));
  }

  async getEntity(id: string, m: EntityManager = this.db.manager): Promise<SubscriptionEntity> {
    const sub = await m.getRepository(SubscriptionEntity).findOneBy({ id });
    if (!sub) throw new NotFoundError('Subscription', id);
    return sub;
  }

  async list(q: ListSubscriptionsQueryDto): Promise<Page<SubscriptionResponseDto>> {
    const qb = this.db.getRepository(SubscriptionEntity).createQueryBuilder('s');
    if (q.customer_id) qb.andWhere('s.customer_id = :c', { c: q.customer_id });
    if (q.status) qb.andWhere('s.status = :st', { st: q.status });
    if (q.dunning_attempts !== undefined) qb.andWhere('s.dunning_attempts = :da', { da: Number(q.dunning_attempts) });
    const page = await paginate(qb, q, (s) => s, 's');
    return { ...page, data: await Promise.all(page.data.map((s) => this.view(s, false))) };
  }

  /** Events oldest first; the cursor is the last event's sequence number. */
  async listEvents(id: string, q: PageQueryDto) {
    await this.getEntity(id);
    const limit = q.limit ?? 20;
    let after = 0;
    if (q.cursor !== undefined) after = eventCursorSeq(q.cursor);
    const rows = await this.db
      .getRepository(SubscriptionEventEntity)
      .createQueryBuilder('e')
      .where('e.subscription_id = :id AND e.seq > :after', { id, after })
      .orderBy('e.seq', 'ASC')
      .limit(limit + 1)
      .getMany();
    const page = rows.slice(0, limit);
    return {
      data: page.map((e) => ({
        id: e.id,
        type: e.type,
        sequence: (e.data as { sequence?: number } | null)?.sequence ?? null,
        actor: { type: e.actorType, id: e.actorId, name: e.actorName },
        reason: e.reason,
        before: e.before,
        after: e.after,
        data: e.data,
        created_at: e.createdAt.toISOString(),
      })),
      has_more: rows.length > limit,
      next_cursor: rows.length > limit ? Buffer.from(JSON.stringify({ seq: page[page.length - 1].seq })).toString('base64url') : null,
    };
  }

  // ------------------------------------------------------------------ create

  async create(dto: CreateSubscriptionDto, actor: Actor): Promise<SubscriptionResponseDto> {
    const now = this.clock.now();
    let startAt: Date | null = null;
    if (dto.start_at !== undefined) {
      startAt = new Date(dto.start_at);
      const errors: FieldError[] = [];
      if (Number.isNaN(startAt.getTime())) errors.push({ field: 'start_at', message: 'start_at must be a valid date-time' });
      else if (startAt.getTime() < now.getTime() - CLOCK_SKEW_MS) errors.push({ field: 'start_at', message: 'start_at must not be in the past' });
      else if (startAt.getTime() > now.getTime() + MAX_FUTURE_START_MS) errors.push({ field: 'start_at', message: 'start_at must be within a year' });
      if (errors.length) throw new InvalidInputError(errors, errors[0].message);
      if (startAt.getTime() <= now.getTime()) startAt = null;
    }

    // Without a charge at creation (a trial or a future start), one statement checks the references and writes the
    // subscription, its audit event and its outbox rows.
    const terms = await this.plans.terms(dto.plan_id);
    if (terms && (terms.trialDays > 0 || startAt)) return this.createWithoutCharge(dto, terms, startAt, now, actor);

    const { sub, payment } = await this.db.transaction(async (m) => {
      const customer = await m.query(`SELECT id FROM customers WHERE id = $1`, [dto.customer_id]);
      const plan = await m.getRepository(PlanEntity).findOneBy({ id: dto.plan_id });
      const [key] = await m.query(`SELECT customer_id, status FROM billing_keys WHERE id = $1 FOR SHARE`, [dto.billing_key_id]);
      const refs = referenceErrors(dto, { customer: customer.length > 0, planActive: plan ? plan.active : null, key: key ?? null });
      if (refs.length || !plan) {
        throw new DomainError('unprocessable', 'invalid_reference', refs.map((r) => `${r.field}: ${r.message}`).join('; '), refs);
      }
      const sub = newSubscription(dto, plan, startAt ?? now, now, this.tz);
      const saved = await m.getRepository(SubscriptionEntity).save(sub);
      await this.events.record(m, saved, 'subscription.created', actor, { after: snapshot(saved), data: { plan_id: plan.id } });
      const payment = plan.trialDays === 0 && !startAt ? await this.charges.open(m, saved, plan) : null;
      return { sub: saved, payment };
    });

    if (!payment) {
      await this.reservations.topUp(sub.id);
      return this.get(sub.id);
    }
    const settled = await this.sendAndSettle(payment, { actor, onDecline: 'end' });
    if (settled.outcome.kind === 'not_charged' || settled.outcome.kind === 'local_fault') {
      // Bootpay could not be asked at all: end the subscription rather than leave one the caller was told failed.
      await this.db.transaction(async (m) =>
        this.apply(m, await this.lock(m, sub.id), { type: 'cancel_now', reason: 'first payment could not be made' }, actor),
      );
      throw new DomainError(
        'gateway_unavailable',
        'gateway_unavailable',
        'Bootpay could not be reached; no charge was made and no subscription was started',
        [],
        {
          subscription_id: sub.id,
        },
      );
    }
    if (settled.outcome.kind === 'declined') {
      throw new DomainError('payment_failed', 'payment_failed', `The first payment was declined: ${settled.outcome.failure.message}`, [], {
        failure: settled.outcome.failure,
        payment_id: payment.id,
        subscription: await this.get(sub.id),
      });
    }
    return this.get(sub.id);
  }

  /** A subscription that starts with a trial or later: no charge now, one statement, answered from what was written. */
  private async createWithoutCharge(
    dto: CreateSubscriptionDto,
    plan: PlanTerms,
    startAt: Date | null,
    now: Date,
    actor: Actor,
  ): Promise<SubscriptionResponseDto> {
    const sub = newSubscription(dto, plan, startAt ?? now, now, this.tz);
    sub.id = randomUUID();
    sub.eventSeq = 1;
    const details = { after: snapshot(sub), data: { plan_id: plan.id } };
    const audit = auditRow(sub, 'subscription.created', actor, details, 1, now);
    const outbound = outboundOf(sub, 'subscription.created', details, 1);
    const meta = this.db.getMetadata(SubscriptionEntity);
    const row = Object.fromEntries(meta.columns.map((c) => [c.databaseName, c.getEntityValue(sub, true)]));
    const columns = meta.columns.map((c) => c.databaseName).join(', ');
    const [result] = await preparedQuery<{
      customer: boolean;
      plan_active: boolean | null;
      key_customer_id: string | null;
      key_status: string | null;
      created: boolean;
    }>(
      this.db,
      'subscription_create_without_charge',
      `WITH c AS (
         SELECT id FROM customers WHERE id = $1
       ), pl AS (
         SELECT active FROM plans WHERE id = $2
       ), k AS (
         SELECT customer_id, status FROM billing_keys WHERE id = $3 FOR SHARE
       ), ok AS (
         SELECT 1 FROM c, pl, k WHERE pl.active AND k.customer_id = c.id AND k.status = 'active'
       ), s AS (
         INSERT INTO subscriptions (${columns}) SELECT ${columns} FROM jsonb_populate_record(NULL::subscriptions, $4::jsonb), ok RETURNING id
       ), ev AS (
         INSERT INTO subscription_events (subscription_id, type, actor_type, actor_id, actor_name, reason, before, after, data, created_at)
         SELECT e.subscription_id, e.type, e.actor_type, e.actor_id, e.actor_name, e.reason, e.before, e.after, e.data, e.created_at
         FROM jsonb_populate_record(NULL::subscription_events, $5::jsonb) e, s
       ), we AS (
         INSERT INTO webhook_events (id, type, subscription_id, sequence, payload, created_at)
         SELECT w.id, w.type, w.subscription_id, w.sequence, w.payload, w.created_at FROM jsonb_populate_recordset(NULL::webhook_events, $6::jsonb) w, s
         RETURNING id, type
       ), wd AS (
         ${deliveriesFromCte('$7')}
       )
       SELECT EXISTS (SELECT 1 FROM c) AS customer, (SELECT active FROM pl) AS plan_active, (SELECT customer_id FROM k) AS key_customer_id,
              (SELECT status FROM k) AS key_status, EXISTS (SELECT 1 FROM s) AS created`,
      [
        dto.customer_id,
        dto.plan_id,
        dto.billing_key_id,
        JSON.stringify(row),
        JSON.stringify(audit),
        JSON.stringify(outbound ? [outboxRow(outbound, now)] : []),
        now,
      ],
    );
    if (!result.created) {
      const key = result.key_customer_id ? { customer_id: result.key_customer_id, status: result.key_status ?? '' } : null;
      const refs = referenceErrors(dto, { customer: result.customer, planActive: result.plan_active, key });
      // (Empty only if a row changed between the checks of one statement, which cannot happen under its locks.)
      throw new DomainError('unprocessable', 'invalid_reference', refs.map((r) => `${r.field}: ${r.message}`).join('; ') || 'invalid reference', refs);
    }
    if (plan.chargeMode === 'reservation') {
      await this.reservations.topUp(sub.id);
      return this.get(sub.id);
    }
    return { ...subscriptionView(sub), latest_payment: null };
  }

  // ------------------------------------------------------------------ lifecycle

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
      const sub = await this.lock(m, id);
      const now = this.clock.now();
      // A cancel must not race a charge: the customer would read "no more charges" and then be charged.
      await this.assertNoOpenAttempt(m, sub);
      if (dto.at_period_end) {
        return this.apply(m, sub, { type: 'cancel_at_period_end', reason: dto.reason, renewalPaidAhead: await this.renewalPaidAhead(m, sub, now) }, actor);
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
      const applied = await this.apply(m, sub, { type: 'cancel_now', reason: dto.reason }, actor, {
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
    return this.get(id);
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
    const terms = await this.plans.terms(sub.planId);
    const previousPeriodStart =
      terms && sub.periodIndex >= 1
        ? periodAt(sub.anchorAt, terms, sub.periodIndex - 1, this.tz).start
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
    const rows = await this.periodPayments(m, sub);
    if (!rows.length) return [];
    const terms = await this.plans.terms(sub.planId);
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

  /** The applied payments of the current paid period (its own and prorated ones), oldest first, with what is left of them. */
  private async periodPayments(m: EntityManager, sub: SubscriptionEntity): Promise<PaymentEntity[]> {
    return m
      .getRepository(PaymentEntity)
      .createQueryBuilder('p')
      .where('p.subscription_id = :id AND p.period_start = :start', { id: sub.id, start: sub.currentPeriodStart })
      .andWhere(`p.status IN ('DONE', 'PARTIAL_CANCELED') AND p.not_applied IS NULL AND p.balance_amount > 0`)
      .orderBy('p.created_at', 'ASC')
      .addOrderBy('p.id', 'ASC')
      .getMany();
  }

  async reactivate(id: string, reason: string | undefined, actor: Actor): Promise<SubscriptionResponseDto> {
    const done = await this.db.transaction(async (m) => this.apply(m, await this.lock(m, id), { type: 'reactivate' }, actor, { reason }));
    await this.charges.runEffects(id, done.effects);
    return this.get(id);
  }

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
      const sub = await this.lock(m, id);
      await this.assertNoOpenAttempt(m, sub);
      return this.apply(m, sub, { type: 'pause', reason: dto.reason, resumeAt }, actor);
    });
    await this.charges.runEffects(id, done.effects);
    return this.get(id);
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
      const sub = await this.lock(m, id);
      await this.assertNoOpenAttempt(m, sub);
      await this.assertConversionConsent(m, sub);
      const applied = await this.apply(m, sub, { type: 'resume' }, actor, { reason });
      if (!applied.effects.some((e) => e.kind === 'charge_now')) return { ...applied, payment: null };
      const plan = await m.getRepository(PlanEntity).findOneByOrFail({ id: applied.sub.planId });
      return { ...applied, payment: await this.charges.open(m, applied.sub, plan) };
    });
    await this.charges.runEffects(id, done.effects, done.retire);
    if (done.payment) await this.sendAndSettle(done.payment, { actor, onDecline: 'dunning' });
    return this.get(id);
  }

  async changePlan(id: string, dto: ChangePlanDto, actor: Actor): Promise<SubscriptionResponseDto> {
    await this.charges.resolveOpenFor(id, { resend: true });
    const changed = await this.db.transaction(async (m) => {
      const sub = await this.lock(m, id);
      if (!ALLOWED_FROM.change_plan.includes(sub.status as never))
        return this.apply(m, sub, { type: 'change_plan', planId: dto.plan_id }, actor).then(() => null);
      const plan = await m.getRepository(PlanEntity).findOneBy({ id: dto.plan_id });
      if (!plan || !plan.active) {
        throw new DomainError('unprocessable', 'invalid_reference', 'plan_id: no active plan has this id', [
          { field: 'plan_id', message: 'no active plan has this id' },
        ]);
      }
      if (plan.id === sub.planId) throw new ConflictError('same_plan', 'The subscription is already on this plan');
      await this.assertNoOpenAttempt(m, sub);
      const before = snapshot(sub);
      const now = this.clock.now();
      const oldPlan = await m.getRepository(PlanEntity).findOneByOrFail({ id: sub.planId });

      if (dto.proration === 'period_end') {
        const applied = await this.apply(m, sub, { type: 'change_plan_at_period_end', planId: plan.id }, actor, { reason: dto.reason });
        return { payment: null, effects: applied.effects };
      }
      if (sub.status === 'trialing') {
        // In a trial nothing was paid: the new plan simply applies from the trial's end.
        const applied = await this.apply(m, sub, { type: 'change_plan', planId: plan.id }, actor, { reason: dto.reason, data: { proration: null } });
        return { payment: null, effects: applied.effects };
      }

      // active, proration now (billing-math planChange): credit the unused part of what was paid for the period.
      // Same interval and count: charge the new price for the rest of the period, which keeps its end. Otherwise
      // (re-anchor): charge the new plan's price for a new period that starts now. A credit above the charge is
      // refunded at once from the period's payments.
      const start = sub.currentPeriodStart!;
      const end = sub.currentPeriodEnd!;
      const at = now < start ? start : now >= end ? new Date(end.getTime() - 1) : now;
      const paidRows = await this.periodPayments(m, sub);
      const q = planChange({
        old: { amount: oldPlan.amount, taxFree: oldPlan.taxFreeAmount, interval: oldPlan.interval, intervalCount: oldPlan.intervalCount },
        new: { amount: plan.amount, taxFree: plan.taxFreeAmount, interval: plan.interval, intervalCount: plan.intervalCount },
        paid: paidRows.reduce((sum, p) => sum + p.balanceAmount, 0),
        paidTaxFree: paidRows.reduce((sum, p) => sum + p.taxFreeAmount - p.refundedTaxFree, 0),
        periodStart: start,
        periodEnd: end,
        at,
      });
      const newPeriod = q.rule === 'reanchor' ? periodAt(at, plan, 0, this.tz) : { index: -1, start, end };
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
        const applied = await this.apply(
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
      const settled = await this.sendAndSettle(prorationPayment, { actor, onDecline: 'record' });
      if (settled.outcome.kind === 'declined') {
        throw new DomainError(
          'payment_failed',
          'payment_failed',
          `The prorated charge was declined, so the plan was not changed: ${settled.outcome.failure.message}`,
          [],
          {
            failure: settled.outcome.failure,
            payment_id: prorationPayment.id,
            subscription: await this.get(id),
          },
        );
      }
      if (settled.outcome.kind === 'unknown') {
        // Sent, no answer: the change is pending until the outcome is known (the next run asks Bootpay).
        return { ...(await this.get(id)), pending_payment: { ...paymentView(settled.payment) } };
      }
    }
    await this.reservations.topUp(id);
    return this.get(id);
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

  async swapBillingKey(id: string, dto: SwapBillingKeyDto, actor: Actor): Promise<SubscriptionResponseDto> {
    await this.charges.resolveOpenFor(id, { resend: true });
    const done = await this.db.transaction(async (m) => {
      const sub = await this.lock(m, id);
      const [key] = await m.query(`SELECT customer_id, status FROM billing_keys WHERE id = $1 FOR SHARE`, [dto.billing_key_id]);
      const err = !key
        ? 'no billing key has this id'
        : key.customer_id !== sub.customerId
          ? 'the billing key belongs to another customer'
          : key.status !== 'active'
            ? 'the billing key is deleted'
            : null;
      if (err && ALLOWED_FROM.swap_billing_key.includes(sub.status as never)) {
        throw new DomainError('unprocessable', 'invalid_reference', `billing_key_id: ${err}`, [{ field: 'billing_key_id', message: err }]);
      }
      await this.assertNoOpenAttempt(m, sub);
      const applied = await this.apply(m, sub, { type: 'swap_billing_key', billingKeyId: dto.billing_key_id }, actor, { reason: dto.reason });
      if (!applied.effects.some((e) => e.kind === 'charge_now')) return { ...applied, payment: null };
      // past_due: the outstanding period is charged at once with the new key.
      const plan = await m.getRepository(PlanEntity).findOneByOrFail({ id: applied.sub.planId });
      return { ...applied, payment: await this.charges.open(m, applied.sub, plan) };
    });
    await this.charges.runEffects(id, done.effects);
    if (done.payment) await this.sendAndSettle(done.payment, { actor, onDecline: 'dunning' });
    await this.reservations.topUp(id);
    return this.get(id);
  }

  /**
   * Admin: charge a past_due or unpaid subscription now. It pays for the outstanding period while that period is
   * still running; when it has already ended, for a new period starting now (see chargePeriod), so the subscription
   * is never left active with its paid period over.
   */
  async retryNow(id: string, actor: Actor, reason?: string): Promise<SubscriptionResponseDto> {
    await this.charges.resolveOpenFor(id, { resend: true });
    const payment = await this.db.transaction(async (m) => {
      const sub = await this.lock(m, id);
      await this.assertNoOpenAttempt(m, sub);
      const applied = await this.apply(m, sub, { type: 'retry' }, actor, { reason });
      const plan = await m.getRepository(PlanEntity).findOneByOrFail({ id: applied.sub.planId });
      return this.charges.open(m, applied.sub, plan);
    });
    await this.sendAndSettle(payment, { actor, onDecline: 'record' });
    return this.get(id);
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
      [sub.id, now, addDays(now, -CONSENT_WINDOW_DAYS, this.tz)],
    );
    if (!consent) {
      throw new ConflictError(
        'consent_required',
        "This subscription was paused at its trial's end for want of the consumer's consent to the paid conversion; record that consent (POST /v1/subscriptions/:id/consents) before resuming it",
      );
    }
  }

  /**
   * Asks the transition authority for `event` under the subscription's row lock, and writes its answer with its
   * audit events; a refusal is a 409 naming the reason and the statuses the action is allowed from. The effects
   * are carried out by the caller after commit (ChargeAttemptsService.runEffects).
   */
  private async apply(
    m: EntityManager,
    sub: SubscriptionEntity,
    event: SubscriptionEvent,
    actor: Actor | 'system',
    opts: { reason?: string | null; data?: Record<string, unknown> } = {},
  ): Promise<{ sub: SubscriptionEntity; effects: Effect[]; retire?: string }> {
    const terms = await this.plans.terms(sub.planId);
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

  // ------------------------------------------------------------------ helpers

  private async sendAndSettle(payment: PaymentEntity, opts: { actor: Actor | 'system'; onDecline: DeclinePolicy }): Promise<SettleResult> {
    if (payment.amount === 0) {
      // Paid entirely by the subscription's credit: settled when it was recorded, nothing goes to Bootpay.
      return { payment, subscription: await this.getEntity(payment.subscriptionId), outcome: { kind: 'succeeded', receipt: null }, effects: [] };
    }
    const outcome: ChargeOutcome = await this.charges.send(payment);
    return this.charges.settle(payment.id, outcome, opts);
  }

  /**
   * Admin: refunds the subscription's credit balance (or part of it) to the card, from its paid payments, newest
   * first, as owed refunds recorded with the change (sent after commit, retried by the run until Bootpay answers).
   */
  async refundCredit(id: string, dto: { amount?: number; reason: string }, actor: Actor): Promise<SubscriptionResponseDto> {
    const done = await this.db.transaction(async (m) => {
      const sub = await this.lock(m, id);
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
      const applied = await this.apply(m, sub, { type: 'credit_refunded', amount: refundable }, actor, { reason: dto.reason });
      return { ...applied, effects: [...applied.effects, ...effects] };
    });
    await this.charges.runEffects(id, done.effects);
    return this.get(id);
  }

  private async lock(m: EntityManager, id: string): Promise<SubscriptionEntity> {
    const sub = await m.getRepository(SubscriptionEntity).createQueryBuilder('s').setLock('pessimistic_write').where('s.id = :id', { id }).getOne();
    if (!sub) throw new NotFoundError('Subscription', id);
    return sub;
  }

  private async assertNoOpenAttempt(m: EntityManager, sub: SubscriptionEntity): Promise<void> {
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
}

/** What is wrong with a new subscription's references, in the order the API reports them. */
function referenceErrors(
  dto: Pick<CreateSubscriptionDto, 'customer_id'>,
  found: { customer: boolean; planActive: boolean | null; key: { customer_id: string; status: string } | null },
): FieldError[] {
  const refs: FieldError[] = [];
  if (!found.customer) refs.push({ field: 'customer_id', message: 'no customer has this id' });
  if (found.planActive === null) refs.push({ field: 'plan_id', message: 'no plan has this id' });
  else if (!found.planActive) refs.push({ field: 'plan_id', message: 'the plan is not active' });
  if (!found.key) refs.push({ field: 'billing_key_id', message: 'no billing key has this id' });
  else if (found.customer && found.key.customer_id !== dto.customer_id)
    refs.push({ field: 'billing_key_id', message: 'the billing key belongs to another customer' });
  else if (found.key.status !== 'active') refs.push({ field: 'billing_key_id', message: 'the billing key is deleted' });
  return refs;
}

/** A new subscription starting at `start`: trialing until the trial's end, or incomplete until its first charge. */
function newSubscription(dto: CreateSubscriptionDto, plan: Pick<PlanTerms, 'id' | 'trialDays'>, start: Date, now: Date, tz: string): SubscriptionEntity {
  const sub = Object.assign(new SubscriptionEntity(), {
    customerId: dto.customer_id,
    planId: plan.id,
    billingKeyId: dto.billing_key_id,
    periodIndex: -1,
    cancelAtPeriodEnd: false,
    cancelReason: null,
    canceledAt: null,
    endedAt: null,
    pausedAt: null,
    pauseReason: null,
    resumeAt: null,
    pendingPlanId: null,
    creditBalance: 0,
    dunningAttempts: 0,
    nextRetryAt: null,
    pastDueSince: null,
    lastFailureCode: null,
    lastFailureMessage: null,
    lockedBy: null,
    lockedUntil: null,
    metadata: dto.metadata ?? {},
    eventSeq: 0,
    createdAt: now,
    updatedAt: now,
  });
  if (plan.trialDays > 0) {
    const trialEnd = addDays(start, plan.trialDays, tz);
    return Object.assign(sub, {
      status: 'trialing',
      anchorAt: trialEnd,
      trialEnd,
      currentPeriodStart: start,
      currentPeriodEnd: trialEnd,
      nextChargeAt: trialEnd,
    });
  }
  return Object.assign(sub, { status: 'incomplete', anchorAt: start, trialEnd: null, currentPeriodStart: null, currentPeriodEnd: null, nextChargeAt: start });
}

/** The audit trail's cursor: opaque like every other (base64url JSON of the last event's global sequence number). */
function eventCursorSeq(cursor: string): number {
  try {
    const v = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8')) as { seq?: unknown };
    if (typeof v.seq === 'number' && Number.isSafeInteger(v.seq) && v.seq >= 1) return v.seq;
  } catch {
    /* refused below */
  }
  throw new InvalidInputError([{ field: 'cursor', message: 'cursor must be a next_cursor value from a previous page' }]);
}

/** `at` moved into [start, end). */
function clampInto(at: Date, start: Date, end: Date): Date {
  return at < start ? start : at >= end ? new Date(end.getTime() - 1) : at;
}
