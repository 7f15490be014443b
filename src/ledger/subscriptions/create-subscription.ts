import { Injectable } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { DataSource } from 'typeorm';
import type { Actor } from '../../auth/auth.decorators';
import { addDays } from '../../billing-math';
import { ChargeAttemptsService } from '../charge-attempts.service';
import { snapshot } from '../transitions';
import { ReservationsService } from '../reservations.service';
import { Clock } from '../../common/clock';
import { DomainError, FieldError, InvalidInputError } from '../../common/errors';
import { PlanEntity } from '../../plans/plan.entity';
import { PlansService, PlanTerms } from '../../plans/plans.service';
import { CreateSubscriptionDto, SubscriptionResponseDto } from '../dto/subscription.dto';
import { auditRow, outboundOf, SubscriptionEventsService } from '../subscription-events.service';
import { deliveriesFromCte, outboxRow } from '../../outbound-webhooks/outbox.service';
import { preparedQuery } from '../../common/prepared';
import { randomUUID } from 'node:crypto';
import { SubscriptionEntity } from '../subscription.entity';
import { subscriptionView } from '../subscription-view';
import { SubscriptionWriter } from './subscription-writer';

/**
 * A notice the consumer must be sent the moment a subscription is created (a trial that starts inside the 30 days
 * before its paid conversion, 전자상거래법 13⑥), written by the creation statement itself. The rules are the caller's
 * (src/consents); the ledger only writes it, once: the same row the hourly sweep would write.
 */
export interface CreationNotice {
  kind: 'consent_required';
  changeKey: string;
  changeAt: Date;
  /** The notice as the consumer reads it; `plan.name` is filled in by the statement from the plan row it reads. */
  object: Record<string, unknown> & { plan: { id: string; name: string | null } };
}

/** Decides, from the subscription about to be written and its plan, whether a notice goes with it. */
export type NoticeAtCreation = (sub: SubscriptionEntity, plan: PlanTerms) => CreationNotice | null;

const NOTICE_EVENT = 'subscription.consent_required';

const MAX_FUTURE_START_MS = 366 * 24 * 60 * 60 * 1000;
const CLOCK_SKEW_MS = 60 * 1000;

/** Creates a subscription: with a charge of its first period at once, or (a trial, a future start) in one statement. */
@Injectable()
export class CreateSubscriptionAction {
  constructor(
    @InjectDataSource() private readonly db: DataSource,
    private readonly clock: Clock,
    private readonly charges: ChargeAttemptsService,
    private readonly events: SubscriptionEventsService,
    private readonly reservations: ReservationsService,
    private readonly plans: PlansService,
    private readonly w: SubscriptionWriter,
  ) {}

  async create(dto: CreateSubscriptionDto, actor: Actor, noticeAt?: NoticeAtCreation): Promise<SubscriptionResponseDto> {
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
    // subscription, its audit events (with a trial's consent notice) and its outbox rows.
    const terms = await this.plans.terms(dto.plan_id);
    if (terms && (terms.trialDays > 0 || startAt)) return this.createWithoutCharge(dto, terms, startAt, now, actor, noticeAt);

    const { sub, payment } = await this.db.transaction(async (m) => {
      const customer = await m.query(`SELECT id FROM customers WHERE id = $1`, [dto.customer_id]);
      const plan = await m.getRepository(PlanEntity).findOneBy({ id: dto.plan_id });
      const [key] = await m.query(`SELECT customer_id, status FROM billing_keys WHERE id = $1 FOR SHARE`, [dto.billing_key_id]);
      const refs = referenceErrors(dto, { customer: customer.length > 0, planActive: plan ? plan.active : null, key: key ?? null });
      if (refs.length || !plan) {
        throw new DomainError('unprocessable', 'invalid_reference', refs.map((r) => `${r.field}: ${r.message}`).join('; '), refs);
      }
      const sub = newSubscription(dto, plan, startAt ?? now, now, this.w.tz);
      const saved = await m.getRepository(SubscriptionEntity).save(sub);
      await this.events.record(m, saved, 'subscription.created', actor, { after: snapshot(saved), data: { plan_id: plan.id } });
      const payment = plan.trialDays === 0 && !startAt ? await this.charges.open(m, saved, plan) : null;
      return { sub: saved, payment };
    });

    if (!payment) {
      await this.reservations.topUp(sub.id);
      return this.w.get(sub.id);
    }
    const settled = await this.w.sendAndSettle(payment, { actor, onDecline: 'end' });
    if (settled.outcome.kind === 'not_charged' || settled.outcome.kind === 'local_fault') {
      // Bootpay could not be asked at all: end the subscription rather than leave one the caller was told failed.
      await this.db.transaction(async (m) =>
        this.w.apply(m, await this.w.lock(m, sub.id), { type: 'cancel_now', reason: 'first payment could not be made' }, actor),
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
        subscription: await this.w.get(sub.id),
      });
    }
    return this.w.get(sub.id);
  }

  /** A subscription that starts with a trial or later: no charge now, one statement, answered from what was written. */
  private async createWithoutCharge(
    dto: CreateSubscriptionDto,
    plan: PlanTerms,
    startAt: Date | null,
    now: Date,
    actor: Actor,
    noticeAt?: NoticeAtCreation,
  ): Promise<SubscriptionResponseDto> {
    const sub = newSubscription(dto, plan, startAt ?? now, now, this.w.tz);
    sub.id = randomUUID();
    const notice = noticeAt?.(sub, plan) ?? null;
    sub.eventSeq = notice ? 2 : 1;
    const details = { after: snapshot(sub), data: { plan_id: plan.id } };
    const audit = [auditRow(sub, 'subscription.created', actor, details, 1, now)];
    const outbound = [outboundOf(sub, 'subscription.created', details, 1)];
    const notices: Record<string, unknown>[] = [];
    if (notice) {
      // The event the sweep would record (SubscriptionEventsService.record), with the subscription's second number.
      const id = randomUUID();
      const noticeDetails = { object: { id, ...notice.object }, data: { notice_id: id, ...notice.object } };
      audit.push(auditRow(sub, NOTICE_EVENT, 'system', noticeDetails, 2, now));
      outbound.push(outboundOf(sub, NOTICE_EVENT, noticeDetails, 2));
      notices.push({ id, subscription_id: sub.id, kind: notice.kind, change_key: notice.changeKey, change_at: notice.changeAt, created_at: now });
    }
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
         SELECT active, name FROM plans WHERE id = $2
       ), k AS (
         SELECT customer_id, status FROM billing_keys WHERE id = $3 FOR SHARE
       ), ok AS (
         SELECT 1 FROM c, pl, k WHERE pl.active AND k.customer_id = c.id AND k.status = 'active'
       ), s AS (
         INSERT INTO subscriptions (${columns}) SELECT ${columns} FROM jsonb_populate_record(NULL::subscriptions, $4::jsonb), ok RETURNING id
       ), ev AS (
         INSERT INTO subscription_events (subscription_id, type, actor_type, actor_id, actor_name, reason, before, after, data, created_at)
         SELECT e.subscription_id, e.type, e.actor_type, e.actor_id, e.actor_name, e.reason, e.before, e.after,
                CASE WHEN e.type = '${NOTICE_EVENT}' THEN jsonb_set(e.data, '{plan,name}', to_jsonb(pl.name)) ELSE e.data END, e.created_at
         FROM jsonb_populate_recordset(NULL::subscription_events, $5::jsonb) e, s, pl
       ), we AS (
         INSERT INTO webhook_events (id, type, subscription_id, sequence, payload, created_at)
         SELECT w.id, w.type, w.subscription_id, w.sequence,
                CASE WHEN w.type = '${NOTICE_EVENT}' THEN jsonb_set(w.payload, '{data,object,plan,name}', to_jsonb(pl.name)) ELSE w.payload END,
                w.created_at
         FROM jsonb_populate_recordset(NULL::webhook_events, $6::jsonb) w, s, pl
         RETURNING id, type
       ), wd AS (
         ${deliveriesFromCte('$7')}
       ), cn AS (
         INSERT INTO consent_notices (id, subscription_id, kind, change_key, change_at, created_at)
         SELECT n.id, n.subscription_id, n.kind, n.change_key, n.change_at, n.created_at FROM jsonb_populate_recordset(NULL::consent_notices, $8::jsonb) n, s
       )
       SELECT EXISTS (SELECT 1 FROM c) AS customer, (SELECT active FROM pl) AS plan_active, (SELECT customer_id FROM k) AS key_customer_id,
              (SELECT status FROM k) AS key_status, EXISTS (SELECT 1 FROM s) AS created`,
      [
        dto.customer_id,
        dto.plan_id,
        dto.billing_key_id,
        JSON.stringify(row),
        JSON.stringify(audit),
        JSON.stringify(outbound.flatMap((o) => (o ? [outboxRow(o, now)] : []))),
        now,
        JSON.stringify(notices),
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
      return this.w.get(sub.id);
    }
    return { ...subscriptionView(sub), latest_payment: null };
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
