import { Inject, Injectable, Logger, Optional } from '@nestjs/common';
import { ChargeMetricOutcome, MetricsService } from '../metrics/metrics.service';
import { InjectDataSource } from '@nestjs/typeorm';
import { DataSource, EntityManager } from 'typeorm';
import { returnedRows, withRetries } from '../common/db-errors';
import { chargeAmounts, ColumnWriter, columnWriter, receiptMismatchOf, sameMaskedCard } from './charge-records';

export { chargeAmounts, receiptMismatchOf } from './charge-records';
import { preparedQuery } from '../common/prepared';
import { BillingKeysService } from '../billing-keys/billing-keys.service';
import { Clock } from '../common/clock';
import { failureOf, FailureView } from '../gateway/domain-errors';
import { ConflictError } from '../common/errors';
import { BootpayGateway } from '../gateway/bootpay.gateway';
import {
  GatewayDeclinedError,
  GatewayDuplicateError,
  GatewayError,
  GatewayInvalidBillingKeyError,
  GatewayUnknownOutcomeError,
} from '../gateway/gateway.errors';
import { GatewayReceipt, RECEIPT_STATUS, RESERVATION_STATUS } from '../gateway/gateway.types';
import { OPEN_PAYMENT_STATUSES, PaymentEntity } from '../payments/payment.entity';
import { paymentView } from '../payments/payment-view';
import { APPROVAL_FIELDS, applyApproval, newPayment } from './new-payment';
import type { PlanEntity } from '../plans/plan.entity';
import { PlansService } from '../plans/plans.service';
import { Runtime, RUNTIME } from '../config/runtime';
import { auditRow, EventActor, EventDetails, outboundOf, SubscriptionEventsService } from './subscription-events.service';
import { chargePeriod, CHARGE_SUCCESS_FIELDS, DeclinePolicy, Effect, snapshot, SubscriptionEvent, transition } from './transitions';
import { FinanceFlagsService } from './finance-flags.service';
import { RefundsService } from './refunds.service';
import { SubscriptionEntity } from './subscription.entity';
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
  | { kind: 'not_charged'; failure: FailureView }
  /** A fault of this service (a billing key that cannot be decrypted, a setting): nothing was sent. Never a decline. */
  | { kind: 'local_fault'; failure: FailureView };

export type { DeclinePolicy } from './transitions';

export interface SettleResult {
  payment: PaymentEntity;
  subscription: SubscriptionEntity;
  outcome: ChargeOutcome;
  /** What must follow the commit (the transition's effects). */
  effects: Effect[];
  /** A billing key that no live subscription uses any more and must be deleted at Bootpay (after commit). */
  retireBillingKeyId?: string;
}

export { orderIdFor } from './order-id';

/** The outcome of an attempt whose billing key was deleted: a hard decline, nothing sent. */
const KEY_DELETED: ChargeOutcome = {
  kind: 'declined',
  failure: { code: 'billing_key_deleted', pg_code: null, message: 'The billing key was deleted', hard: true },
};

/** A stored billing key this instance cannot decrypt (another encryption key): a local fault, nothing sent. */
const KEY_UNREADABLE: ChargeOutcome = {
  kind: 'local_fault',
  failure: {
    code: 'local_fault',
    pg_code: null,
    message: "The billing key could not be decrypted with this instance's BILLING_KEY_ENCRYPTION_KEY; nothing was sent",
    hard: false,
  },
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
  /** The consent this charge relies on (a paid conversion, or the first charge at a migrated price), recorded on it. */
  consentId?: string | null;
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
    private readonly flags: FinanceFlagsService,
    private readonly refunds: RefundsService,
    @Inject(RUNTIME) private readonly runtime: Runtime,
    @Optional() private readonly metrics?: MetricsService,
  ) {}

  /** What follows a settled charge, after commit: the transition's effects (see {@link runEffects}). */
  async afterSettle(result: Pick<SettleResult, 'subscription' | 'effects' | 'retireBillingKeyId'>): Promise<void> {
    await this.runEffects(result.subscription.id, result.effects, result.retireBillingKeyId);
  }

  /**
   * Carries out a transition's effects after its commit. Each is safe to repeat and is retried by the charge run
   * when it fails here (leftover reservations, pending key deletions, owed refunds, reservation top-ups), so a
   * failure is logged with its context and does not undo the committed change. Reservations are canceled before a
   * billing key is deleted (deleting a key at Bootpay does not cancel its reservations).
   */
  async runEffects(subscriptionId: string, effects: Effect[], retireBillingKeyId?: string): Promise<void> {
    const attempt = async (what: string, run: () => Promise<unknown>) => {
      try {
        await run();
      } catch (err) {
        this.logger.warn({
          message: `${what} failed after commit; the charge run retries it`,
          subscription_id: subscriptionId,
          error: err instanceof Error ? err.message : String(err),
        });
      }
    };
    if (effects.some((e) => e.kind === 'cancel_reservations'))
      await attempt('canceling reservations', () => this.reservations.cancelOutstanding(subscriptionId));
    for (const e of effects) {
      if (e.kind === 'refund_payment') await attempt('an owed refund', () => this.refunds.resolveUnknown({ paymentId: e.paymentId }));
    }
    if (effects.some((e) => e.kind === 'top_up_reservations')) await attempt('registering reservations', () => this.reservations.topUp(subscriptionId));
    if (retireBillingKeyId) await this.billingKeys.destroyAtGatewayQuietly(retireBillingKeyId);
  }

  /**
   * Records the attempt for the subscription's next period, in the caller's transaction (which holds the
   * subscription's row lock). The unique indexes on payments make a second open attempt, or a second success for the
   * same period, impossible whatever the callers do: when another worker recorded one first, nothing is inserted and
   * this answers null (the caller skips the subscription).
   */
  async tryOpen(m: EntityManager, sub: SubscriptionEntity, plan: PlanEntity, opts: { chargeRunId?: string | null } = {}): Promise<PaymentEntity | null> {
    const period = chargePeriod(sub, plan, this.clock.now(), this.runtime.config.businessTimeZone);
    const [{ n }] = await m.query(`SELECT count(*)::int AS n FROM payments WHERE subscription_id = $1 AND kind = 'period' AND period_start = $2`, [
      sub.id,
      period.start,
    ]);
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
        ...chargeAmounts(sub, plan),
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
    if (payment.amount === 0) {
      // The subscription's credit pays the whole period: nothing goes to Bootpay.
      if (!(await this.insertPaidByCredit(m, payment))) return null;
      await this.settleByCredit(m, sub, payment, 'system');
      return payment;
    }
    const inserted = await m.createQueryBuilder().insert().into(PaymentEntity).values(payment).orIgnore().returning(['id']).execute();
    return (inserted.raw as unknown[]).length ? payment : null;
  }

  /** Records a charge the subscription's credit covers entirely (0 won at the card): DONE at once, never sent. */
  private async insertPaidByCredit(m: EntityManager, payment: PaymentEntity): Promise<boolean> {
    const now = this.clock.now();
    Object.assign(payment, { status: 'DONE', approvedAt: now, updatedAt: now });
    const inserted = await m.createQueryBuilder().insert().into(PaymentEntity).values(payment).orIgnore().returning(['id']).execute();
    return (inserted.raw as unknown[]).length > 0;
  }

  /** Applies a charge paid by credit to its subscription, in the caller's transaction (which holds its row lock). */
  private async settleByCredit(m: EntityManager, sub: SubscriptionEntity, payment: PaymentEntity, actor: EventActor): Promise<void> {
    const before = snapshot(sub);
    const t = transition(sub, { type: 'charge_approved', charge: payment }, await this.context(sub.planId, m));
    if (!t.ok) throw new Error(`a charge paid by credit was refused: ${t.message}`);
    await m.getRepository(SubscriptionEntity).save(t.sub);
    Object.assign(sub, t.sub);
    await this.events.record(m, sub, 'payment.succeeded', actor, approvalEvents(payment, sub, null)[0].opts);
    for (const e of t.events) await this.events.record(m, sub, e.type, actor, { reason: e.reason, data: e.data, before, after: snapshot(sub) });
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
      let period: ReturnType<typeof chargePeriod>;
      try {
        period = chargePeriod(sub, plan, now, tz);
      } catch (err) {
        // One subscription whose period cannot be computed never stops the others: it is left out (still due) and
        // logged for an operator.
        this.logger.error({
          message: 'subscription left out of the run: its period cannot be computed',
          subscription_id: sub.id,
          error: err instanceof Error ? err.message : String(err),
        });
        continue;
      }
      if ((sub.creditBalance ?? 0) >= plan.amount) {
        // Paid by the subscription's credit: recorded and applied here, nothing to send (rare; the general way).
        const [{ n }] = await m.query(`SELECT count(*)::int AS n FROM payments WHERE subscription_id = $1 AND kind = 'period' AND period_start = $2`, [
          sub.id,
          period.start,
        ]);
        const byCredit = newPayment(
          {
            subscriptionId: sub.id,
            customerId: sub.customerId,
            billingKeyId: sub.billingKeyId,
            kind: 'period',
            orderId: orderIdFor(sub.id, 'period', period.start, n + 1),
            orderName: plan.name.slice(0, 100),
            ...chargeAmounts(sub, plan),
            status: 'DONE',
            attempt: n + 1,
            periodIndex: period.index,
            periodStart: period.start,
            periodEnd: period.end,
            planId: plan.id,
            chargeRunId,
            consentId: d.consentId ?? null,
          },
          now,
        );
        if (await this.insertPaidByCredit(m, byCredit)) await this.settleByCredit(m, sub, byCredit, 'system');
        continue;
      }
      const payment = newPayment(
        {
          subscriptionId: sub.id,
          customerId: sub.customerId,
          billingKeyId: sub.billingKeyId,
          kind: 'period',
          orderId: orderIdPrefix(sub.id, 'period', period.start),
          orderName: plan.name.slice(0, 100),
          ...chargeAmounts(sub, plan),
          status: 'IN_PROGRESS',
          attempt: 0,
          periodIndex: period.index,
          periodStart: period.start,
          periodEnd: period.end,
          planId: plan.id,
          chargeRunId,
          consentId: d.consentId ?? null,
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
        credit_applied: payment.creditApplied,
        consent_id: payment.consentId,
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
        `INSERT INTO payments (id, subscription_id, customer_id, billing_key_id, kind, order_id, order_name, amount, tax_free_amount, credit_applied, consent_id, vat,
           balance_amount, refunded_tax_free, status, attempt, period_index, period_start, period_end, plan_id, charge_run_id,
           requested_at, created_at, updated_at)
         SELECT t.id, t.subscription_id, t.customer_id, t.billing_key_id, t.kind, t.order_id || (c.n + 1), t.order_name, t.amount,
           t.tax_free_amount, t.credit_applied, t.consent_id, t.vat, t.balance_amount, t.refunded_tax_free, t.status, c.n + 1, t.period_index, t.period_start,
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
    const marked = await preparedQuery<{ id: string }>(
      this.db,
      'charges_unknown',
      `UPDATE payments SET status = 'UNKNOWN', updated_at = $2 WHERE id = ANY($1::uuid[]) AND status IN ('IN_PROGRESS', 'UNKNOWN') RETURNING id`,
      [paymentIds, this.clock.now()],
    );
    if (marked.length) this.metrics?.chargeRecorded('unknown', marked.length);
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
    const tz = this.runtime.config.businessTimeZone;
    for (const { claim, receipt } of items) {
      // The claim's own objects are updated: if the batch cannot record them, settle() starts again from the database.
      const { payment, subscription: claimed } = claim;
      if (!claim.rowVersion || payment.kind !== 'period' || (receipt && receiptMismatchOf(payment, receipt))) continue;
      // The transition authority decides here too; anything but a plain approval takes the general way (settle).
      const t = transition(claimed, { type: 'charge_approved', charge: payment }, { now, tz, plan: claim.plan, dunning: this.runtime.config.dunning });
      if (!t.ok) continue;
      const sub = t.sub;
      claim.subscription = sub;
      applyApproval(payment, receipt, now);
      const before = claimed.status === 'active' ? null : snapshot(claimed);
      const firstSequence = sub.eventSeq + 1;
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
    if (applied.length) this.metrics?.chargeRecorded('approved', applied.length);
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
    if (claim.plan.chargeMode === 'reservation') await this.runEffects(claim.subscription.id, [{ kind: 'top_up_reservations' }]);
  }

  /** Sends a claimed charge, its billing key decrypted just now and forgotten right after. */
  async sendClaimed(claim: ClaimedCharge): Promise<ChargeOutcome> {
    const ciphertext = claim.keyCiphertext;
    claim.keyCiphertext = null;
    let key: string;
    if (!ciphertext) return KEY_DELETED;
    try {
      key = this.box.decrypt(ciphertext, claim.payment.billingKeyId);
    } catch {
      return KEY_UNREADABLE;
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
    } catch (err) {
      // A deleted key is a decline; anything else (decryption with another key, the database) is a local fault.
      if (err instanceof ConflictError && err.code === 'billing_key_deleted') return KEY_DELETED;
      this.logger.error({
        message: 'billing key could not be read; nothing sent',
        payment_id: payment.id,
        error_name: err instanceof Error ? err.name : typeof err,
      });
      return KEY_UNREADABLE;
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
   * Records an outcome: the payment row, the subscription's new state (as the transition authority decides) and the
   * audit events, in one transaction. Idempotent: a payment that is no longer open (settled by another worker or a
   * webhook) is left alone, except that an approval Bootpay shows for a payment recorded as not charged is money
   * that moved: it is recorded, and applied only if the subscription still waits for it (else refunded).
   * A receipt that does not fit its payment (price, tax-free part, status, payment id, card) is never applied: the
   * attempt is aborted and finance is told.
   */
  async settle(paymentId: string, outcome: ChargeOutcome, opts: { actor?: EventActor; onDecline?: DeclinePolicy } = {}): Promise<SettleResult> {
    const actor = opts.actor ?? 'system';
    // Settlements of charges on one billing key meet on its row (an ending deletes a key no longer used): a deadlock
    // between them aborts one, which is run again from the start (it re-reads everything under its locks).
    let recorded = false;
    const result = await withRetries(() => this.settleOnce(paymentId, outcome, opts, actor, () => (recorded = true)));
    if (recorded) this.metrics?.chargeRecorded(metricOutcomeOf(result.payment, outcome));
    await this.afterSettle(result);
    return result;
  }

  private async settleOnce(
    paymentId: string,
    outcome: ChargeOutcome,
    opts: { onDecline?: DeclinePolicy },
    actor: EventActor,
    markRecorded: () => void,
  ): Promise<SettleResult> {
    return this.db.transaction(async (m) => {
      const pre = await m.getRepository(PaymentEntity).findOneByOrFail({ id: paymentId });
      // Settlements of charges on one billing key go one after another (an ending may delete the key, under its row
      // lock): without this, two declines on a shared key deadlock.
      await m.query(`SELECT pg_advisory_xact_lock(hashtextextended($1, 7301010))`, [pre.billingKeyId]);
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
      const open = OPEN_PAYMENT_STATUSES.includes(payment.status);
      const lateApproval = payment.status === 'ABORTED' && outcome.kind === 'succeeded' && outcome.receipt !== null;
      const unchanged: SettleResult = { payment, subscription: sub, outcome, effects: [] };
      if (!open && !lateApproval) return unchanged;
      markRecorded();
      const now = this.clock.now();
      payment.updatedAt = now;

      switch (outcome.kind) {
        case 'succeeded': {
          const receipt = outcome.receipt;
          if (
            receipt &&
            receipt.status === RECEIPT_STATUS.CANCELLED &&
            !(await this.receiptMismatch(m, payment, { ...receipt, status: RECEIPT_STATUS.COMPLETED }))
          ) {
            // Approved and then fully refunded at Bootpay before this service learnt of the approval: the payment
            // records both, the subscription is not advanced by it (the period stays due), and finance is told.
            applyApproval(payment, receipt, now);
            Object.assign(payment, {
              balanceAmount: payment.amount - receipt.cancelledPrice,
              refundedTaxFree: receipt.cancelledTaxFree,
              status: 'CANCELED',
              canceledAt: receipt.cancelledAt ?? now,
              notApplied: 'refunded_before_settled',
            });
            await m.getRepository(PaymentEntity).save(payment);
            await this.events.record(m, sub, 'payment.not_applied', actor, {
              reason: 'approved and fully refunded at Bootpay before it was settled here',
              data: { payment_id: payment.id, code: 'refunded_before_settled' },
            });
            await this.flags.raise(m, {
              kind: 'charge_not_applied',
              subscriptionId: sub.id,
              paymentId: payment.id,
              message: `Payment ${payment.id} was approved and fully refunded at Bootpay (receipt ${receipt.receiptId}) before it was settled here; the period was not applied and stays due`,
            });
            return { payment, subscription: sub, outcome, effects: [] };
          }
          if (outcome.receipt) {
            const mismatch = await this.receiptMismatch(m, payment, outcome.receipt);
            if (mismatch) {
              await this.flags.raise(m, {
                kind: 'receipt_mismatch',
                subscriptionId: sub.id,
                paymentId: payment.id,
                message: `Bootpay's receipt ${outcome.receipt.receiptId} does not fit payment ${payment.id}: ${mismatch}`,
                data: {
                  receipt_id: outcome.receipt.receiptId,
                  price: outcome.receipt.price,
                  tax_free: outcome.receipt.taxFree,
                  status: outcome.receipt.status,
                },
              });
              if (open) {
                this.abort(payment, {
                  code: 'receipt_mismatch',
                  pg_code: null,
                  message: `Bootpay's receipt does not fit this payment: ${mismatch}`,
                  hard: false,
                });
                await m.getRepository(PaymentEntity).save(payment);
                await this.events.record(m, sub, 'payment.failed', actor, {
                  data: { payment_id: payment.id, failure: { code: 'receipt_mismatch', message: mismatch }, attempt: payment.attempt, charged: null },
                  object: { ...paymentView(payment) },
                });
              }
              this.logger.warn({
                message: 'receipt does not fit its payment; not applied',
                payment_id: payment.id,
                receipt_id: outcome.receipt.receiptId,
                mismatch,
              });
              return unchanged;
            }
          }
          payment.failureCode = null;
          payment.failurePgCode = null;
          payment.failureMessage = null;
          payment.failureHard = null;
          applyApproval(payment, outcome.receipt, now);
          const before = snapshot(sub);
          const t = transition(sub, { type: 'charge_approved', charge: payment }, await this.context(sub.planId, m));
          // Money moved either way: the payment is recorded as approved; one the subscription refused is marked not
          // applied (it does not count as its period's payment, and is refunded).
          payment.notApplied = t.ok ? null : t.code.slice(0, 64);
          await m.getRepository(PaymentEntity).save(payment);
          if (t.ok) {
            // The subscription is written first, so every event of this change tells it as it now stands.
            await m.getRepository(SubscriptionEntity).save(t.sub);
            await this.events.record(m, t.sub, 'payment.succeeded', actor, approvalEvents(payment, t.sub, null)[0].opts);
            for (const e of t.events) await this.events.record(m, t.sub, e.type, actor, { reason: e.reason, data: e.data, before, after: snapshot(t.sub) });
            return { payment, subscription: t.sub, outcome, effects: t.effects };
          }
          await this.events.record(m, sub, 'payment.succeeded', actor, approvalEvents(payment, sub, null)[0].opts);
          await this.refuseApproval(m, sub, payment, t, actor);
          return { payment, subscription: sub, outcome, effects: t.effects };
        }
        case 'declined':
        case 'not_charged':
        case 'local_fault': {
          this.abort(payment, outcome.failure, outcome.kind === 'declined' ? outcome.failure.hard : false);
          await m.getRepository(PaymentEntity).save(payment);
          const failed = {
            data: { payment_id: payment.id, failure: outcome.failure, attempt: payment.attempt, charged: false },
            object: { ...paymentView(payment) },
          };
          // Bootpay never saw a card decision (or nothing was sent): the subscription stays as it was, still due.
          const t =
            outcome.kind === 'declined'
              ? transition(
                  sub,
                  { type: 'charge_declined', charge: payment, failure: outcome.failure, policy: opts.onDecline },
                  await this.context(sub.planId, m),
                )
              : null;
          if (!t || !t.ok) {
            await this.events.record(m, sub, 'payment.failed', actor, failed);
            return { payment, subscription: sub, outcome, effects: [] };
          }
          const before = snapshot(sub);
          // The subscription is written first, so every event of this change tells it as it now stands.
          await m.getRepository(SubscriptionEntity).save(t.sub);
          await this.events.record(m, t.sub, 'payment.failed', actor, failed);
          for (const e of t.events) await this.events.record(m, t.sub, e.type, actor, { reason: e.reason, data: e.data, before, after: snapshot(t.sub) });
          let retireBillingKeyId: string | undefined;
          if (t.effects.some((e) => e.kind === 'retire_billing_key') && (await this.billingKeys.markForDeletionIfUnused(m, t.sub.billingKeyId))) {
            retireBillingKeyId = t.sub.billingKeyId;
          }
          return { payment, subscription: t.sub, outcome, effects: t.effects, retireBillingKeyId };
        }
        case 'unknown': {
          payment.status = 'UNKNOWN';
          await m.getRepository(PaymentEntity).save(payment);
          return { payment, subscription: sub, outcome, effects: [] };
        }
      }
    });
  }

  /**
   * An approval the subscription refused (see the transition table): the money is owed back. A full refund is
   * recorded now, in this transaction, and sent after commit (the run retries it until Bootpay answers); finance
   * is told either way.
   */
  private async refuseApproval(
    m: EntityManager,
    sub: SubscriptionEntity,
    payment: PaymentEntity,
    t: { code: string; message: string },
    actor: EventActor,
  ): Promise<void> {
    await this.events.record(m, sub, 'payment.not_applied', actor, { reason: t.message, data: { payment_id: payment.id, code: t.code } });
    const refund = payment.receiptId
      ? await this.refunds.recordOwed(m, payment, {
          amount: payment.balanceAmount,
          taxFreeAmount: payment.taxFreeAmount - payment.refundedTaxFree,
          reason: `not applied: ${t.message}`,
        })
      : null;
    await this.flags.raise(m, {
      kind: refund ? 'charge_not_applied' : 'refund_needed',
      subscriptionId: sub.id,
      paymentId: payment.id,
      message: refund
        ? `${t.message}; refunded in full (refund ${refund.id})`
        : `${t.message}; not refunded automatically (${payment.receiptId ? 'another refund of the payment is in flight' : "Bootpay's receipt is not known yet"})`,
      data: { code: t.code, amount: payment.amount, refund_id: refund?.id ?? null },
    });
    this.logger.warn({
      message: 'approved charge not applied to its subscription',
      payment_id: payment.id,
      subscription_id: sub.id,
      code: t.code,
      refunded: Boolean(refund),
    });
  }

  private abort(payment: PaymentEntity, failure: FailureView, hard = false): void {
    payment.status = 'ABORTED';
    payment.failureCode = failure.code.slice(0, 64);
    payment.failurePgCode = failure.pg_code?.slice(0, 64) ?? null;
    payment.failureMessage = failure.message.slice(0, 500);
    payment.failureHard = hard;
  }

  /** Why Bootpay's receipt does not fit the payment it names, or null when it does. */
  private async receiptMismatch(m: EntityManager, payment: PaymentEntity, receipt: GatewayReceipt): Promise<string | null> {
    const mismatch = receiptMismatchOf(payment, receipt);
    if (mismatch) return mismatch;
    if (receipt.cardNoMasked) {
      const [key] = await m.query(`SELECT card_no_masked FROM billing_keys WHERE id = $1`, [payment.billingKeyId]);
      if (key?.card_no_masked && !sameMaskedCard(key.card_no_masked, receipt.cardNoMasked)) return `card ${receipt.cardNoMasked} is not the billing key's card`;
    }
    return null;
  }

  /**
   * Applies an event the charge run decided for a subscription it claimed (its period's end, a consent decision), in
   * the claim's transaction (which holds the row lock): the transition, its audit events, and the billing key marked
   * for deletion when an ending leaves it unused (the caller deletes it at Bootpay after commit).
   */
  async applyInClaim(
    m: EntityManager,
    sub: SubscriptionEntity,
    event: SubscriptionEvent,
  ): Promise<{ sub: SubscriptionEntity; retireBillingKeyId?: string } | { refused: string }> {
    const terms = await this.plans.terms(sub.planId, m);
    if (!terms) return { refused: 'plan_not_found' };
    const t = transition(sub, event, { now: this.clock.now(), tz: this.runtime.config.businessTimeZone, plan: terms, dunning: this.runtime.config.dunning });
    if (!t.ok) return { refused: t.code };
    const before = snapshot(sub);
    await m.getRepository(SubscriptionEntity).save(t.sub);
    for (const e of t.events) await this.events.record(m, t.sub, e.type, 'system', { reason: e.reason, before, after: snapshot(t.sub), data: e.data });
    const retire = t.effects.some((e) => e.kind === 'retire_billing_key') && (await this.billingKeys.markForDeletionIfUnused(m, t.sub.billingKeyId));
    return { sub: t.sub, retireBillingKeyId: retire ? t.sub.billingKeyId : undefined };
  }

  /**
   * Takes attempts left open longer than a charge can take (a crash, or an answer lost), under a short lease so that
   * concurrent runs do not take the same ones; the run resolves each by re-sending its order_id.
   */
  async leaseStaleAttempts(staleBefore: Date, now: Date, limit: number): Promise<PaymentEntity[]> {
    const claimed = returnedRows<{ id: string }>(
      await this.db.query(
        `UPDATE payments SET updated_at = $2 WHERE id IN (
           SELECT id FROM payments WHERE status IN ('IN_PROGRESS', 'UNKNOWN') AND updated_at <= $1
           ORDER BY updated_at LIMIT $3 FOR UPDATE SKIP LOCKED)
         RETURNING id`,
        [staleBefore, now, limit],
      ),
    );
    if (!claimed.length) return [];
    return this.db.getRepository(PaymentEntity).findBy(claimed.map((r) => ({ id: r.id })));
  }

  /**
   * Whether the subscription would apply an approval of `p` now (the transition authority's answer, on the row as it
   * stands): asked before an order_id is sent outside a claim, so nothing is charged that would only be refunded.
   */
  private async wouldApply(p: PaymentEntity): Promise<boolean> {
    const sub = await this.db.getRepository(SubscriptionEntity).findOneBy({ id: p.subscriptionId });
    if (!sub) return false;
    return transition(sub, { type: 'charge_approved', charge: p }, await this.context(sub.planId, this.db.manager)).ok;
  }

  /** What the transition authority needs besides the subscription: time, time zone, plan terms, dunning policy. */
  private async context(planId: string, m: EntityManager) {
    const terms = await this.plans.terms(planId, m);
    if (!terms) throw new Error(`plan ${planId} not found`);
    return { now: this.clock.now(), tz: this.runtime.config.businessTimeZone, plan: terms, dunning: this.runtime.config.dunning };
  }

  /**
   * Settles what can be settled of a subscription's open payments before an action changes it, by asking Bootpay:
   * reservations whose execution time has come are looked up (an executed one is applied from its receipt), and a
   * reservation whose registration was never confirmed is resolved by sending its order_id if the subscription still
   * owes its period, else withdrawn unsent (if Bootpay executes it anyway, its receipt arrives as a late approval and
   * is refunded). With `resend`, attempts left without an answer are resolved by re-sending the same order_id (never
   * a second charge). What is still open afterwards makes the action a 409 (see assertNoOpenAttempt).
   */
  async resolveOpenFor(subscriptionId: string, opts: { resend?: boolean } = {}): Promise<void> {
    const now = this.clock.now();
    const staleBefore = new Date(now.getTime() - Math.max(60_000, 2 * this.runtime.gateway.chargeTimeoutMs));
    const rows = await this.db
      .getRepository(PaymentEntity)
      .createQueryBuilder('p')
      .where('p.subscription_id = :id', { id: subscriptionId })
      .andWhere(`((p.status = 'READY' AND p.reserve_execute_at <= :now) OR (p.status IN ('IN_PROGRESS', 'UNKNOWN') AND p.updated_at <= :stale))`, {
        now,
        stale: staleBefore,
      })
      .getMany();
    for (const p of rows) {
      try {
        if (p.status === 'READY') await this.resolveReservation(p, { sendUnconfirmed: true });
        else if (opts.resend) await this.settle(p.id, await this.send(p));
      } catch (err) {
        this.logger.warn({ message: 'open payment not resolved before an action', payment_id: p.id, error: err instanceof Error ? err.message : String(err) });
      }
    }
  }

  /**
   * A reservation whose execution time has come: Bootpay's reservation lookup says what happened, and its receipt
   * settles the payment. An unconfirmed one (no reserve_id: its registration had no answer) cannot be looked up:
   * with `sendUnconfirmed`, and only if the subscription still owes the period (the transition authority would apply
   * its approval now), the same order_id is sent, which Bootpay refuses as a duplicate if the reservation executed;
   * otherwise it is withdrawn unsent (a late execution is refunded). Answers whether the payment left READY.
   * (No action can change the subscription meanwhile: a reservation whose time has come makes actions a 409.)
   */
  async resolveReservation(p: PaymentEntity, opts: { sendUnconfirmed: boolean }): Promise<boolean> {
    if (!p.reserveId) {
      if (opts.sendUnconfirmed && (await this.wouldApply(p))) {
        const outcome = await this.send(p);
        await this.settle(p.id, outcome);
        return outcome.kind !== 'unknown';
      }
      await this.reservations.withdrawUnconfirmed(p.id);
      return true;
    }
    const r = await this.gateway.lookupReservation(p.reserveId);
    if (r.receiptId) {
      await this.applyReceipt(await this.gateway.getReceipt(r.receiptId));
      return true;
    }
    if (r.status === RESERVATION_STATUS.REVOKED) {
      await this.db.query(
        `UPDATE payments SET status = 'ABORTED', failure_code = 'reservation_revoked', failure_message = 'The reservation was revoked at Bootpay', failure_hard = false, updated_at = $2 WHERE id = $1 AND status = 'READY'`,
        [p.id, this.clock.now()],
      );
      return true;
    }
    return false;
  }

  /**
   * Applies what Bootpay says about a receipt (from its webhook, a reservation lookup or a receipt lookup) to the
   * payment with its order_id: an open attempt is settled from it; an approved one gets the receipt details a
   * duplicate-order answer could not give; cancellations made at Bootpay set the payment's refunded figures.
   */
  async applyReceipt(receipt: GatewayReceipt): Promise<'settled' | 'updated' | 'unchanged' | 'unmatched'> {
    const payment = await this.db.getRepository(PaymentEntity).findOneBy({ orderId: receipt.orderId });
    if (!payment) {
      this.logger.warn({ message: 'receipt matches no payment', receipt_id: receipt.receiptId });
      return 'unmatched';
    }
    const approvedOrCancelled = receipt.status === RECEIPT_STATUS.COMPLETED || receipt.status === RECEIPT_STATUS.CANCELLED;
    if (
      OPEN_PAYMENT_STATUSES.includes(payment.status) ||
      (payment.status === 'ABORTED' && approvedOrCancelled && receipt.status === RECEIPT_STATUS.COMPLETED)
    ) {
      if (approvedOrCancelled) {
        const settled = await this.settle(payment.id, { kind: 'succeeded', receipt });
        if (settled.payment.status === 'DONE' && receipt.cancelledPrice > 0) await this.applyCancellation(payment.id, receipt);
        return 'settled';
      }
      if (receipt.status === RECEIPT_STATUS.APPROVAL_FAILED || receipt.status === RECEIPT_STATUS.FAILED_MIDWAY) {
        if (payment.status === 'ABORTED') return 'unchanged';
        // A failed execution says only that the reservation did not charge. Once the run has sent the order_id itself
        // (IN_PROGRESS or UNKNOWN: the reservation was late or never confirmed), that send's outcome is still open:
        // Bootpay may have approved it (a late execution then fails as a duplicate order). It is resolved by
        // re-sending the same order_id, never settled as a decline from the reservation's receipt.
        if (payment.status !== 'READY') {
          this.logger.warn({
            message: "a reservation's failed execution arrived while the order is sent directly; left to that send's resolution",
            payment_id: payment.id,
            receipt_id: receipt.receiptId,
          });
          return 'unchanged';
        }
        await this.settle(payment.id, {
          kind: 'declined',
          failure: { code: 'PAYMENT_REQUEST_FAILED', pg_code: null, message: receipt.statusLocale || 'the reserved payment failed', hard: false },
        });
        return 'settled';
      }
      return 'unchanged';
    }
    if (!['DONE', 'PARTIAL_CANCELED', 'CANCELED'].includes(payment.status)) return 'unchanged';
    // Already approved: a receipt for it must be the one approved (a different receipt with its order_id is
    // finance's to look at), and it fills in what a duplicate-order resolution could not know.
    if (payment.receiptId && payment.receiptId !== receipt.receiptId) {
      await this.db.transaction((m) =>
        this.flags.raise(m, {
          kind: 'receipt_mismatch',
          subscriptionId: payment.subscriptionId,
          paymentId: payment.id,
          message: `Bootpay's receipt ${receipt.receiptId} carries the order_id of payment ${payment.id}, approved with receipt ${payment.receiptId}`,
        }),
      );
      return 'unchanged';
    }
    let changed = false;
    if (!payment.receiptId && receipt.status !== RECEIPT_STATUS.APPROVAL_FAILED) {
      const mismatch = await this.receiptMismatch(this.db.manager, payment, { ...receipt, status: RECEIPT_STATUS.COMPLETED });
      if (mismatch) {
        await this.db.transaction((m) =>
          this.flags.raise(m, {
            kind: 'receipt_mismatch',
            subscriptionId: payment.subscriptionId,
            paymentId: payment.id,
            message: `Bootpay's receipt ${receipt.receiptId} does not fit approved payment ${payment.id}: ${mismatch}`,
          }),
        );
        return 'unchanged';
      }
      await this.db.query(
        `UPDATE payments SET receipt_id = $2, card_company = $3, card_no_masked = $4, receipt_url = $5, updated_at = $6 WHERE id = $1 AND receipt_id IS NULL`,
        [payment.id, receipt.receiptId, receipt.cardCompany, receipt.cardNoMasked, receipt.receiptUrl, this.clock.now()],
      );
      changed = true;
    }
    if (receipt.cancelledPrice > 0) changed = (await this.applyCancellation(payment.id, receipt)) || changed;
    return changed ? 'updated' : 'unchanged';
  }

  /** Sets the payment's refunded figures from Bootpay's receipt; a cancel made at Bootpay is recorded as a refund. */
  private async applyCancellation(paymentId: string, receipt: GatewayReceipt): Promise<boolean> {
    return this.refunds.syncFromReceipt(paymentId, receipt);
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

/** How a settled charge counts in the metrics (billing_charges_total). */
function metricOutcomeOf(payment: PaymentEntity, outcome: ChargeOutcome): ChargeMetricOutcome {
  if (payment.status === 'UNKNOWN') return 'unknown';
  if (payment.notApplied) return 'not_applied';
  if (payment.status === 'DONE' || payment.status === 'PARTIAL_CANCELED') return 'approved';
  if (outcome.kind === 'declined') return outcome.failure.hard ? 'declined_hard' : 'declined_soft';
  if (outcome.kind === 'local_fault') return 'local_fault';
  return 'aborted';
}
