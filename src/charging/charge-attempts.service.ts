import { Inject, Injectable, Logger } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { DataSource, EntityManager } from 'typeorm';
import { returnedRows } from '../common/db-errors';
import { preparedQuery } from '../database/prepared';
import { BillingKeysService } from '../billing-keys/billing-keys.service';
import { Clock } from '../common/clock';
import { failureOf, FailureView } from '../common/gateway-errors';
import { ConflictError } from '../common/errors';
import { BootpayGateway } from '../gateway/bootpay.gateway';
import {
  GatewayDeclinedError,
  GatewayDuplicateError,
  GatewayError,
  GatewayInvalidBillingKeyError,
  GatewayUnknownOutcomeError,
} from '../gateway/gateway.errors';
import type { GatewayReceipt } from '../gateway/gateway.types';
import { OPEN_PAYMENT_STATUSES, PaymentEntity } from '../payments/payment.entity';
import { paymentView } from '../payments/payment-view';
import { APPROVAL_FIELDS, applyApproval, newPayment } from '../payments/new-payment';
import type { PlanEntity } from '../plans/plan.entity';
import { PlansService } from '../plans/plans.service';
import { Runtime, RUNTIME } from '../runtime';
import { auditRow, EventActor, EventDetails, outboundOf, SubscriptionEventsService } from '../subscriptions/subscription-events.service';
import {
  applyCancelNow,
  applyChargeDecline,
  applyChargeSuccess,
  applyPlanChangeNow,
  applyUnpaid,
  CHARGE_SUCCESS_FIELDS,
  nextPeriod,
  snapshot,
} from '../subscriptions/subscription-state';
import { SubscriptionEntity } from '../subscriptions/subscription.entity';
import { orderIdFor, orderIdPrefix } from './order-id';
import { SecretBox } from '../common/secret-box';
import { deliveriesFromCte, outboxRow } from '../outbound-webhooks/outbox.service';
import { ReservationsService } from './reservations.service';

/**
 * What Bootpay said about one attempt.
 * - succeeded: approved (receipt known, or `duplicate`: a re-send of the same order_id was refused because the
 *   first one was approved; the receipt then arrives by webhook);
 * - declined: the card or key was refused (hard or soft);
 * - unknown: sent, no answer: resolved later by re-sending the same order_id, never treated as a decline;
 * - not_charged: Bootpay refused the request itself (we could not reach or authenticate): nothing was charged and
 *   the subscription is left as it was, still due.
 */
export type ChargeOutcome =
  | { kind: 'succeeded'; receipt: GatewayReceipt | null }
  | { kind: 'declined'; failure: FailureView }
  | { kind: 'unknown'; reason: string }
  | { kind: 'not_charged'; failure: FailureView };

/**
 * What a decline does to the subscription: `dunning` (renewals: past_due, retries, final action), `end` (the first
 * charge at creation: the subscription ends), `record` (manual retries and prorated charges: only the failure is
 * noted on the subscription).
 */
export type DeclinePolicy = 'dunning' | 'end' | 'record';

export interface SettleResult {
  payment: PaymentEntity;
  subscription: SubscriptionEntity;
  outcome: ChargeOutcome;
  /** A billing key that no live subscription uses any more and must be deleted at Bootpay (after commit). */
  retireBillingKeyId?: string;
}

export { orderIdFor } from './order-id';

/** The outcome of an attempt whose billing key is gone (deleted, or unreadable): a hard decline, nothing sent. */
const KEY_DELETED: ChargeOutcome = {
  kind: 'declined',
  failure: { code: 'billing_key_deleted', pg_code: null, message: 'The billing key was deleted', hard: true },
};

/** A due subscription claimed by a charge run, with its attempt recorded and everything needed to send and settle it. */
export interface ClaimedCharge {
  payment: PaymentEntity;
  /** The subscription as it was when claimed (under its row lock). */
  subscription: SubscriptionEntity;
  plan: PlanEntity;
  /** The billing key as stored (encrypted), decrypted only when sent; null when the key is gone. */
  keyCiphertext: string | null;
  /**
   * The subscription row's version (PostgreSQL's xmin) when claimed. The outcome is recorded in one statement that
   * applies only if the row is still that version; otherwise (an admin acted meanwhile) it is settled the general way.
   * Null: always settle the general way.
   */
  rowVersion: string | null;
}

/** A subscription row as the charge run's claim query returns it. */
export interface DueSubscription {
  subscription: SubscriptionEntity;
  plan: PlanEntity;
  keyCiphertext: string | null;
  rowVersion: string | null;
}

@Injectable()
export class ChargeAttemptsService {
  private readonly logger = new Logger(ChargeAttemptsService.name);

  constructor(
    @InjectDataSource() private readonly db: DataSource,
    private readonly clock: Clock,
    private readonly gateway: BootpayGateway,
    private readonly billingKeys: BillingKeysService,
    private readonly events: SubscriptionEventsService,
    private readonly reservations: ReservationsService,
    private readonly box: SecretBox,
    private readonly plans: PlansService,
    @Inject(RUNTIME) private readonly runtime: Runtime,
  ) {}

  /**
   * What follows a settled charge, after commit: a subscription that ended has its reservations canceled and then,
   * when no live subscription uses it, its billing key deleted; a paid reservation-mode subscription is topped up.
   */
  async afterSettle(result: { subscription: SubscriptionEntity; retireBillingKeyId?: string; outcome: ChargeOutcome }): Promise<void> {
    const sub = result.subscription;
    if (sub.status === 'canceled') {
      await this.reservations.cancelOutstanding(sub.id).catch(() => undefined);
    } else if (result.outcome.kind === 'succeeded' && (await this.plans.terms(sub.planId))?.chargeMode === 'reservation') {
      await this.reservations.topUp(sub.id).catch(() => undefined);
    }
    if (result.retireBillingKeyId) await this.billingKeys.destroyAtGatewayQuietly(result.retireBillingKeyId);
  }

  /**
   * Records the attempt for the subscription's next period, in the caller's transaction (which holds the
   * subscription's row lock). The unique indexes on payments make a second open attempt, or a second success for the
   * same period, impossible whatever the callers do: when another worker recorded one first, nothing is inserted and
   * this answers null (the caller skips the subscription).
   */
  async tryOpen(
    m: EntityManager,
    sub: SubscriptionEntity,
    plan: PlanEntity,
    opts: { chargeRunId?: string | null } = {},
  ): Promise<PaymentEntity | null> {
    const period = nextPeriod(sub, plan, this.runtime.config.businessTimeZone);
    const [{ n }] = await m.query(
      `SELECT count(*)::int AS n FROM payments WHERE subscription_id = $1 AND kind = 'period' AND period_start = $2`,
      [sub.id, period.start],
    );
    const attempt = n + 1;
    const now = this.clock.now();
    const payment = newPayment(
      {
        subscriptionId: sub.id,
        customerId: sub.customerId,
        billingKeyId: sub.billingKeyId,
        kind: 'period',
        orderId: orderIdFor(sub.id, 'period', period.start, attempt),
        orderName: plan.name.slice(0, 100),
        amount: plan.amount,
        taxFreeAmount: plan.taxFreeAmount,
        status: 'IN_PROGRESS',
        attempt,
        periodIndex: period.index,
        periodStart: period.start,
        periodEnd: period.end,
        planId: plan.id,
        chargeRunId: opts.chargeRunId ?? null,
      },
      now,
    );
    const inserted = await m.createQueryBuilder().insert().into(PaymentEntity).values(payment).orIgnore().returning(['id']).execute();
    return (inserted.raw as unknown[]).length ? payment : null;
  }

  /** tryOpen for the API's own charges: a concurrent attempt is a 409, never a second charge. */
  async open(m: EntityManager, sub: SubscriptionEntity, plan: PlanEntity): Promise<PaymentEntity> {
    const payment = await this.tryOpen(m, sub, plan);
    if (!payment) {
      throw new ConflictError('charge_in_progress', 'A charge for this subscription is already in progress; try again once it is settled');
    }
    return payment;
  }

  /**
   * Records the attempts for a batch of due subscriptions in one statement, in the caller's transaction (which holds
   * their row locks). The attempt number is counted and the order_id completed by the database; the same unique
   * indexes as in tryOpen make a second open attempt or a second success impossible: a subscription whose attempt
   * conflicts (another worker recorded one first) is left out of the answer.
   */
  async openBatch(m: EntityManager, due: DueSubscription[], chargeRunId: string): Promise<ClaimedCharge[]> {
    if (!due.length) return [];
    const now = this.clock.now();
    const tz = this.runtime.config.businessTimeZone;
    const byId = new Map<string, ClaimedCharge>();
    const rows: Record<string, unknown>[] = [];
    for (const d of due) {
      // A claim of a thousand is a few tens of milliseconds of work: the event loop is let go every 100, so the
      // answers of the charges in flight are not kept waiting.
      if (rows.length % 100 === 99) await new Promise((resolve) => setImmediate(resolve));
      const { subscription: sub, plan } = d;
      const period = nextPeriod(sub, plan, tz);
      const payment = newPayment(
        {
          subscriptionId: sub.id,
          customerId: sub.customerId,
          billingKeyId: sub.billingKeyId,
          kind: 'period',
          orderId: orderIdPrefix(sub.id, 'period', period.start),
          orderName: plan.name.slice(0, 100),
          amount: plan.amount,
          taxFreeAmount: plan.taxFreeAmount,
          status: 'IN_PROGRESS',
          attempt: 0,
          periodIndex: period.index,
          periodStart: period.start,
          periodEnd: period.end,
          planId: plan.id,
          chargeRunId,
        },
        now,
      );
      byId.set(payment.id, { payment, subscription: sub, plan, keyCiphertext: d.keyCiphertext, rowVersion: d.rowVersion });
      rows.push({
        id: payment.id,
        subscription_id: payment.subscriptionId,
        customer_id: payment.customerId,
        billing_key_id: payment.billingKeyId,
        kind: payment.kind,
        order_id: payment.orderId,
        order_name: payment.orderName,
        amount: payment.amount,
        tax_free_amount: payment.taxFreeAmount,
        vat: payment.vat,
        balance_amount: payment.balanceAmount,
        refunded_tax_free: payment.refundedTaxFree,
        status: payment.status,
        period_index: payment.periodIndex,
        period_start: payment.periodStart,
        period_end: payment.periodEnd,
        plan_id: payment.planId,
        charge_run_id: payment.chargeRunId,
        requested_at: now,
        created_at: now,
        updated_at: now,
      });
    }
    const inserted = returnedRows<{ id: string; attempt: number; order_id: string }>(
      await m.query(
        `INSERT INTO payments (id, subscription_id, customer_id, billing_key_id, kind, order_id, order_name, amount, tax_free_amount, vat,
           balance_amount, refunded_tax_free, status, attempt, period_index, period_start, period_end, plan_id, charge_run_id,
           requested_at, created_at, updated_at)
         SELECT t.id, t.subscription_id, t.customer_id, t.billing_key_id, t.kind, t.order_id || (c.n + 1), t.order_name, t.amount,
           t.tax_free_amount, t.vat, t.balance_amount, t.refunded_tax_free, t.status, c.n + 1, t.period_index, t.period_start,
           t.period_end, t.plan_id, t.charge_run_id, t.requested_at, t.created_at, t.updated_at
         FROM jsonb_populate_recordset(NULL::payments, $1::jsonb) t
         CROSS JOIN LATERAL (SELECT count(*)::int AS n FROM payments p
           WHERE p.subscription_id = t.subscription_id AND p.kind = t.kind AND p.period_start = t.period_start) c
         ON CONFLICT DO NOTHING
         RETURNING id, attempt, order_id`,
        [JSON.stringify(rows)],
      ),
    );
    return inserted.map((r) => {
      const claimed = byId.get(r.id)!;
      claimed.payment.attempt = r.attempt;
      claimed.payment.orderId = r.order_id;
      return claimed;
    });
  }

  /** Unknown outcomes of claimed charges, in one statement: they stay open and are resolved by a later run. */
  async markUnknown(paymentIds: string[]): Promise<void> {
    if (!paymentIds.length) return;
    await preparedQuery(
      this.db,
      'charges_unknown',
      `UPDATE payments SET status = 'UNKNOWN', updated_at = $2 WHERE id = ANY($1::uuid[]) AND status IN ('IN_PROGRESS', 'UNKNOWN')`,
      [paymentIds, this.clock.now()],
    );
  }

  /**
   * Approvals of claimed charges, in one statement: each payment, its subscription's new period, the audit events and
   * the outbox. A subscription is included only if its row is still the version the claim read (nobody changed it
   * meanwhile) and its payment still open; the answer lists the payments recorded. The others must be settled the
   * general way (settle()), which re-reads everything under locks.
   */
  async settleSucceededBatch(items: { claim: ClaimedCharge; receipt: GatewayReceipt | null }[]): Promise<Set<string>> {
    const now = this.clock.now();
    const rows: Record<string, unknown>[] = [];
    const audit: Record<string, unknown>[] = [];
    const outbox: Record<string, unknown>[] = [];
    // Timestamps travel as epoch milliseconds and the time of the batch as one string: a JSON Date costs more than
    // everything else in an approval.
    const nowIso = now.toISOString();
    for (const { claim, receipt } of items) {
      // The claim's own objects are updated: if the batch cannot record them, settle() starts again from the database.
      const { payment, subscription: sub } = claim;
      if (!claim.rowVersion || sub.status === 'canceled' || payment.kind !== 'period') continue;
      applyApproval(payment, receipt, now);
      const wasActive = sub.status === 'active';
      const before = wasActive ? null : snapshot(sub);
      const firstSequence = sub.eventSeq + 1;
      applyChargeSuccess(sub, { index: payment.periodIndex, start: payment.periodStart, end: payment.periodEnd }, now);
      approvalEvents(payment, sub, before).forEach((e, i) => {
        const sequence = firstSequence + i;
        sub.eventSeq = sequence;
        audit.push({ ...auditRow(sub, e.type, 'system', e.opts, sequence, now), created_at: nowIso });
        const o = outboundOf(sub, e.type, e.opts, sequence);
        if (o) outbox.push({ ...outboxRow(o, now), created_at: nowIso });
      });
      rows.push({
        subscription_id: sub.id,
        payment_id: payment.id,
        row_version: claim.rowVersion,
        pay: this.approvalColumns().payment.values(payment),
        sub: this.approvalColumns().subscription.values(sub),
      });
    }
    if (!rows.length) return new Set();
    const applied = await preparedQuery<{ id: string }>(
      this.db,
      'charges_succeeded',
      `WITH i AS (
         SELECT * FROM jsonb_to_recordset($1::jsonb) AS x(subscription_id uuid, payment_id uuid, row_version text, pay jsonb, sub jsonb)
       ), g AS (
         SELECT i.* FROM i
         JOIN subscriptions s ON s.id = i.subscription_id AND s.xmin = i.row_version::xid
         JOIN payments p ON p.id = i.payment_id AND p.subscription_id = s.id AND p.status IN ('IN_PROGRESS', 'UNKNOWN')
         ORDER BY i.subscription_id
         FOR UPDATE OF s, p
       ), pay AS (
         UPDATE payments p SET ${this.approvalColumns().payment.set('g.pay')} FROM g WHERE p.id = g.payment_id RETURNING p.id
       ), sub AS (
         UPDATE subscriptions s SET ${this.approvalColumns().subscription.set('g.sub')} FROM g WHERE s.id = g.subscription_id
       ), ev AS (
         INSERT INTO subscription_events (subscription_id, type, actor_type, actor_id, actor_name, reason, before, after, data, created_at)
         SELECT e.subscription_id, e.type, e.actor_type, e.actor_id, e.actor_name, e.reason, e.before, e.after, e.data, e.created_at
         FROM jsonb_populate_recordset(NULL::subscription_events, $2::jsonb) e WHERE e.subscription_id IN (SELECT subscription_id FROM g)
       ), we AS (
         INSERT INTO webhook_events (id, type, subscription_id, sequence, payload, created_at)
         SELECT w.id, w.type, w.subscription_id, w.sequence, w.payload, w.created_at
         FROM jsonb_populate_recordset(NULL::webhook_events, $3::jsonb) w WHERE w.subscription_id IN (SELECT subscription_id FROM g)
         RETURNING id, type
       ), wd AS (
         ${deliveriesFromCte('$4')}
       )
       SELECT id FROM pay`,
      [JSON.stringify(rows), JSON.stringify(audit), JSON.stringify(outbox), now],
    );
    return new Set(applied.map((r) => r.id));
  }

  private approvalColumnsCache: { payment: ColumnWriter<PaymentEntity>; subscription: ColumnWriter<SubscriptionEntity> } | null = null;

  /** How settleSucceededBatch writes an approval: the fields the state functions set, and the event sequence. */
  private approvalColumns() {
    this.approvalColumnsCache ??= {
      payment: columnWriter(this.db, PaymentEntity, APPROVAL_FIELDS),
      subscription: columnWriter(this.db, SubscriptionEntity, [...CHARGE_SUCCESS_FIELDS, 'eventSeq']),
    };
    return this.approvalColumnsCache;
  }

  /**
   * What follows a claimed charge's approval recorded by settleSucceededBatch, after commit: a reservation-mode
   * subscription charged by the run (its reservation could not be made) gets its coming periods registered.
   */
  async afterBatchSuccess(claim: ClaimedCharge): Promise<void> {
    if (claim.plan.chargeMode === 'reservation') await this.reservations.topUp(claim.subscription.id).catch(() => undefined);
  }

  /** Sends a claimed charge, its billing key decrypted just now and forgotten right after. */
  async sendClaimed(claim: ClaimedCharge): Promise<ChargeOutcome> {
    const ciphertext = claim.keyCiphertext;
    claim.keyCiphertext = null;
    let key: string;
    try {
      if (!ciphertext) return KEY_DELETED;
      key = this.box.decrypt(ciphertext, claim.payment.billingKeyId);
    } catch {
      return KEY_DELETED;
    }
    return this.charge(claim.payment, key);
  }

  /**
   * Sends an open attempt to Bootpay. A re-send of an attempt whose first send had no answer uses the same
   * order_id: Bootpay refuses it as a duplicate if the first went through, so this can never charge twice.
   */
  async send(payment: PaymentEntity): Promise<ChargeOutcome> {
    let key: string;
    try {
      key = await this.billingKeys.reveal(payment.billingKeyId);
    } catch {
      return KEY_DELETED;
    }
    return this.charge(payment, key);
  }

  private async charge(payment: PaymentEntity, key: string): Promise<ChargeOutcome> {
    try {
      const receipt = await this.gateway.charge({
        billingKey: key,
        orderId: payment.orderId,
        orderName: payment.orderName,
        price: payment.amount,
        taxFree: payment.taxFreeAmount,
        feedbackUrl: this.runtime.config.publicBaseUrl ? `${this.runtime.config.publicBaseUrl}/v1/webhooks/bootpay` : undefined,
        metadata: { subscription_id: payment.subscriptionId, payment_id: payment.id },
      });
      return { kind: 'succeeded', receipt };
    } catch (err) {
      return this.classify(err);
    }
  }

  private classify(err: unknown): ChargeOutcome {
    if (err instanceof GatewayDuplicateError) return { kind: 'succeeded', receipt: null };
    if (err instanceof GatewayDeclinedError || err instanceof GatewayInvalidBillingKeyError) {
      return { kind: 'declined', failure: failureOf(err) };
    }
    if (err instanceof GatewayUnknownOutcomeError) return { kind: 'unknown', reason: err.reason };
    if (err instanceof GatewayError) return { kind: 'not_charged', failure: failureOf(err) };
    // Anything unexpected after the request may have left: treat as unknown, never as a decline.
    this.logger.error({ message: 'unexpected error while charging', error_name: err instanceof Error ? err.name : typeof err });
    return { kind: 'unknown', reason: 'unexpected_error' };
  }

  /**
   * Records an outcome: the payment row, the subscription's new state and the audit events, in one transaction.
   * Settling is idempotent: a payment that is no longer open (settled by another worker or a webhook) is left alone.
   */
  async settle(
    paymentId: string,
    outcome: ChargeOutcome,
    opts: { actor?: EventActor; onDecline?: DeclinePolicy } = {},
  ): Promise<SettleResult> {
    const actor = opts.actor ?? 'system';
    const result = await this.db.transaction(async (m) => {
      const pre = await m.getRepository(PaymentEntity).findOneByOrFail({ id: paymentId });
      const sub = await m
        .getRepository(SubscriptionEntity)
        .createQueryBuilder('s')
        .setLock('pessimistic_write')
        .where('s.id = :id', { id: pre.subscriptionId })
        .getOneOrFail();
      const payment = await m
        .getRepository(PaymentEntity)
        .createQueryBuilder('p')
        .setLock('pessimistic_write')
        .where('p.id = :id', { id: paymentId })
        .getOneOrFail();
      if (!OPEN_PAYMENT_STATUSES.includes(payment.status)) return { payment, subscription: sub, outcome };
      const now = this.clock.now();
      const before = snapshot(sub);
      let retireBillingKeyId: string | undefined;
      payment.updatedAt = now;

      switch (outcome.kind) {
        case 'succeeded': {
          applyApproval(payment, outcome.receipt, now);
          await m.getRepository(PaymentEntity).save(payment);
          const wasActive = sub.status === 'active';
          if (payment.kind === 'proration') {
            if (sub.status !== 'canceled' && sub.planId !== payment.planId) {
              const fromPlanId = sub.planId;
              applyPlanChangeNow(sub, payment.planId, now);
              await m.getRepository(SubscriptionEntity).save(sub);
              await this.events.record(m, sub, 'subscription.plan_changed', actor, { before, after: snapshot(sub), data: { from_plan_id: fromPlanId, to_plan_id: payment.planId, proration_payment_id: payment.id } });
            }
          } else if (sub.status !== 'canceled') {
            applyChargeSuccess(sub, { index: payment.periodIndex, start: payment.periodStart, end: payment.periodEnd }, now);
          }
          await m.getRepository(SubscriptionEntity).save(sub);
          for (const e of approvalEvents(payment, sub, wasActive ? null : before)) await this.events.record(m, sub, e.type, actor, e.opts);
          break;
        }
        case 'declined':
        case 'not_charged': {
          payment.status = 'ABORTED';
          payment.failureCode = outcome.failure.code.slice(0, 64);
          payment.failurePgCode = outcome.failure.pg_code?.slice(0, 64) ?? null;
          payment.failureMessage = outcome.failure.message.slice(0, 500);
          payment.failureHard = outcome.kind === 'declined' ? outcome.failure.hard : false;
          await m.getRepository(PaymentEntity).save(payment);
          await this.events.record(m, sub, 'payment.failed', actor, {
            data: { payment_id: payment.id, failure: outcome.failure, attempt: payment.attempt, charged: false },
            object: { ...paymentView(payment) },
          });
          if (outcome.kind === 'not_charged') break; // Bootpay never saw a card decision: the subscription stays due.
          if (opts.onDecline === 'record' || payment.kind === 'proration') {
            sub.lastFailureCode = payment.failureCode;
            sub.lastFailureMessage = payment.failureMessage;
            sub.updatedAt = now;
            await m.getRepository(SubscriptionEntity).save(sub);
            break;
          }
          // Without a policy: a subscription that never started (incomplete) ends; any other enters dunning.
          if ((opts.onDecline ?? (sub.status === 'incomplete' ? 'end' : 'dunning')) === 'end') {
            applyCancelNow(sub, 'first payment failed', now);
            sub.lastFailureCode = payment.failureCode;
            sub.lastFailureMessage = payment.failureMessage;
            await m.getRepository(SubscriptionEntity).save(sub);
            await this.events.record(m, sub, 'subscription.canceled', actor, { reason: 'first payment failed', before, after: snapshot(sub) });
            break;
          }
          const decision = applyChargeDecline(sub, outcome.failure, now, this.runtime.config.dunning);
          if (decision.action === 'final') {
            if (decision.finalAction === 'cancel') {
              applyCancelNow(sub, outcome.failure.hard ? `hard decline: ${outcome.failure.code}` : 'dunning exhausted', now);
              await m.getRepository(SubscriptionEntity).save(sub);
              await this.events.record(m, sub, 'subscription.canceled', actor, { reason: sub.cancelReason, before, after: snapshot(sub) });
              retireBillingKeyId = (await this.billingKeys.markForDeletionIfUnused(m, sub.billingKeyId)) ? sub.billingKeyId : undefined;
            } else {
              applyUnpaid(sub, now);
              await m.getRepository(SubscriptionEntity).save(sub);
              await this.events.record(m, sub, 'subscription.unpaid', actor, { before, after: snapshot(sub) });
            }
          } else {
            await m.getRepository(SubscriptionEntity).save(sub);
            if (before.status !== 'past_due') {
              await this.events.record(m, sub, 'subscription.past_due', actor, { before, after: snapshot(sub) });
            }
          }
          break;
        }
        case 'unknown': {
          payment.status = 'UNKNOWN';
          await m.getRepository(PaymentEntity).save(payment);
          break;
        }
      }
      return { payment, subscription: sub, outcome, retireBillingKeyId };
    });
    await this.afterSettle(result);
    return result;
  }
}

/**
 * What an approval tells, in order: the payment, then the subscription's activation when it was not active before
 * (`before`: its state then; null when it was active). Both ways of settling record exactly these.
 */
function approvalEvents(payment: PaymentEntity, sub: SubscriptionEntity, before: Record<string, unknown> | null): { type: string; opts: EventDetails }[] {
  const events: { type: string; opts: EventDetails }[] = [
    {
      type: 'payment.succeeded',
      opts: {
        data: { payment_id: payment.id, amount: payment.amount, period_start: payment.periodStart.toISOString(), attempt: payment.attempt },
        object: { ...paymentView(payment) },
      },
    },
  ];
  if (before && sub.status === 'active') events.push({ type: 'subscription.activated', opts: { before, after: snapshot(sub) } });
  return events;
}

interface ColumnWriter<E> {
  /** The fields of an entity as a JSON object by column name, times as epoch milliseconds. */
  values(entity: E): Record<string, unknown>;
  /** `column = value, ...` reading such an object from the SQL expression `source` (jsonb). */
  set(source: string): string;
}

/** Writes the given fields of an entity from memory in one statement, typed by the entity's own column metadata. */
function columnWriter<E extends object>(db: DataSource, entity: new () => E, fields: readonly (keyof E & string)[]): ColumnWriter<E> {
  const meta = db.getMetadata(entity);
  const columns = fields.map((f) => {
    const column = meta.findColumnWithPropertyName(f);
    if (!column) throw new Error(`${meta.name} has no column for ${f}`);
    return { field: f, name: column.databaseName, type: String(column.type) };
  });
  return {
    values: (e) => {
      const out: Record<string, unknown> = {};
      for (const c of columns) out[c.name] = toJsonValue(e[c.field as keyof E]);
      return out;
    },
    set: (source) =>
      columns
        .map((c) => `${c.name} = ${c.type === 'timestamptz' ? `to_timestamp((${source}->>'${c.name}')::float8 / 1000)` : `(${source}->>'${c.name}')::${c.type}`}`)
        .join(', '),
  };
}

/** A JSON Date costs more than the rest of an approval: times travel as epoch milliseconds. */
function toJsonValue(v: unknown): unknown {
  return v instanceof Date ? v.getTime() : v;
}
