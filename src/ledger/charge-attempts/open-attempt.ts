import { Inject, Injectable, Logger } from '@nestjs/common';
import { EntityManager } from 'typeorm';
import { returnedRows } from '../../common/db-errors';
import { Clock } from '../../common/clock';
import { ConflictError } from '../../common/errors';
import { Runtime, RUNTIME } from '../../config/runtime';
import { PaymentEntity } from '../../payments/payment.entity';
import type { PlanEntity } from '../../plans/plan.entity';
import { chargeAmounts } from '../charge-records';
import { newPayment } from '../new-payment';
import { orderIdFor, orderIdPrefix } from '../order-id';
import { EventActor, SubscriptionEventsService } from '../subscription-events.service';
import { SubscriptionEntity } from '../subscription.entity';
import { chargePeriod, snapshot, transition } from '../transitions';
import { approvalEvents, CHARGE_ATTEMPTS_LOG_CONTEXT, ClaimedCharge, DueSubscription, OpenedBatch } from './attempt-shared';
import { SettleChargeAction } from './settle-charge';

/**
 * Records charge attempts: one for the API's own charges, a batch for the charge run's claim. A period the
 * subscription's credit pays entirely is recorded as paid and applied at once, never sent.
 */
@Injectable()
export class OpenAttemptAction {
  private readonly logger = new Logger(CHARGE_ATTEMPTS_LOG_CONTEXT);

  constructor(
    private readonly clock: Clock,
    private readonly events: SubscriptionEventsService,
    private readonly settlement: SettleChargeAction,
    @Inject(RUNTIME) private readonly runtime: Runtime,
  ) {}

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
    const t = transition(sub, { type: 'charge_approved', charge: payment }, await this.settlement.context(sub.planId, m));
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
   * conflicts (another worker recorded one first) is left out of the answer. A period the credit pays entirely is
   * recorded and applied here, and counted in `paidByCredit`.
   */
  async openBatch(m: EntityManager, due: DueSubscription[], chargeRunId: string): Promise<OpenedBatch> {
    let paidByCredit = 0;
    if (!due.length) return { charges: [], paidByCredit };
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
        if (await this.insertPaidByCredit(m, byCredit)) {
          await this.settleByCredit(m, sub, byCredit, 'system');
          paidByCredit++;
        }
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
    const charges = inserted.map((r) => {
      const claimed = byId.get(r.id)!;
      claimed.payment.attempt = r.attempt;
      claimed.payment.orderId = r.order_id;
      return claimed;
    });
    return { charges, paidByCredit };
  }
}
