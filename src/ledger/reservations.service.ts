import { Inject, Injectable, Logger } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { DataSource } from 'typeorm';
import { BillingKeysService } from '../billing-keys/billing-keys.service';
import { Clock } from '../common/clock';
import { NotFoundError } from '../common/errors';
import { returnedRows } from '../common/db-errors';
import { FinanceFlagsService } from './finance-flags.service';
import { BootpayGateway } from '../gateway/bootpay.gateway';
import { GatewayError, GatewayReservationAlreadyDoneError, GatewayReservationLimitError, GatewayUnknownOutcomeError } from '../gateway/gateway.errors';
import { PaymentEntity } from '../payments/payment.entity';
import { newPayment } from './new-payment';
import { PlanEntity } from '../plans/plan.entity';
import { Runtime, RUNTIME } from '../config/runtime';
import { orderIdFor } from './order-id';
import { periodAt } from './transitions';
import { SubscriptionEntity } from './subscription.entity';

/** Bootpay allows at most this many outstanding reservations per billing key. */
export const RESERVATIONS_PER_KEY = 10;

/**
 * Reservation mode: for plans with charge_mode `reservation`, coming periods are registered as Bootpay reservations
 * instead of being charged by the run. The budget of 10 outstanding reservations per billing key is shared by every
 * subscription on the key and is never exceeded: the key's row is locked while reservations are counted and
 * recorded. A period that cannot be reserved (budget spent, Bootpay refused) falls back to the scheduled run.
 *
 * Each reservation is a payments row in READY, recorded before Bootpay is called, with the order_id the execution
 * will carry; the execution's result arrives by webhook (or by reservation lookup) and settles that row.
 */
@Injectable()
export class ReservationsService {
  private readonly logger = new Logger(ReservationsService.name);

  constructor(
    @InjectDataSource() private readonly db: DataSource,
    private readonly clock: Clock,
    private readonly gateway: BootpayGateway,
    private readonly billingKeys: BillingKeysService,
    private readonly flags: FinanceFlagsService,
    @Inject(RUNTIME) private readonly runtime: Runtime,
  ) {}

  /** Registers reservations for the subscription's coming periods, up to the horizon and the key's budget. */
  async topUp(subscriptionId: string): Promise<{ registered: number }> {
    const created = await this.db.transaction(async (m) => {
      const sub = await m
        .getRepository(SubscriptionEntity)
        .createQueryBuilder('s')
        .setLock('pessimistic_write')
        .where('s.id = :id', { id: subscriptionId })
        .getOne();
      // With a credit balance the next charges take the credit first: the run charges them (a reservation's amount is
      // fixed when it is registered).
      if (!sub || !['active', 'trialing', 'incomplete'].includes(sub.status) || sub.pendingPlanId || sub.creditBalance > 0) return [];
      const plan = await m.getRepository(PlanEntity).findOneByOrFail({ id: sub.planId });
      if (plan.chargeMode !== 'reservation') return [];
      // A paid conversion (a trial's end) or a price increase (a plan migration) is charged only with the consumer's
      // consent (전자상거래법 13⑥), which the run checks when it falls due: Bootpay would execute a reservation without
      // asking. Such periods are left to the run.
      if (this.runtime.config.consent.required && sub.status === 'trialing') return [];
      const [migration] = await m.query(`SELECT requires_consent FROM plan_migrations WHERE from_plan_id = $1 AND requires_consent`, [plan.id]);
      if (migration) return [];
      // The budget is per key: lock the key so that subscriptions sharing it count one after another.
      const [key] = await m.query(`SELECT status FROM billing_keys WHERE id = $1 FOR UPDATE`, [sub.billingKeyId]);
      if (!key || key.status !== 'active') return [];
      const [{ used }] = await m.query(`SELECT count(*)::int AS used FROM payments WHERE billing_key_id = $1 AND status = 'READY'`, [sub.billingKeyId]);
      let budget = RESERVATIONS_PER_KEY - used;
      const out: PaymentEntity[] = [];
      const now = this.clock.now();
      const tz = this.runtime.config.businessTimeZone;
      for (let i = 1; i <= this.runtime.config.reservations.horizon && budget > 0; i++) {
        const period = periodAt(sub.anchorAt, plan, sub.periodIndex + i, tz);
        if (period.start.getTime() <= now.getTime()) break; // due already: the run charges it
        if (sub.cancelAtPeriodEnd && sub.currentPeriodEnd && period.start.getTime() >= sub.currentPeriodEnd.getTime()) break;
        const [{ taken, attempts, failed }] = await m.query(
          `SELECT count(*) FILTER (WHERE status <> 'ABORTED')::int AS taken, count(*)::int AS attempts,
                  count(*) FILTER (WHERE status = 'ABORTED' AND failure_code IS DISTINCT FROM 'reservation_canceled' AND failure_code IS DISTINCT FROM 'reservation_unconfirmed')::int AS failed
           FROM payments WHERE subscription_id = $1 AND kind = 'period' AND period_start = $2`,
          [sub.id, period.start],
        );
        if (taken > 0) continue;
        // A period whose reservation or charge failed is left to the run (dunning); one whose reservation we canceled
        // ourselves (pause, plan change, key swap, or withdrawn unconfirmed) is reserved again, as a new attempt with its
        // own order_id.
        if (failed > 0) break;
        const attempt = attempts + 1;
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
            status: 'READY',
            attempt,
            periodIndex: period.index,
            periodStart: period.start,
            periodEnd: period.end,
            planId: plan.id,
            reserveExecuteAt: period.start,
          },
          now,
        );
        await m.getRepository(PaymentEntity).insert(payment);
        out.push(payment);
        budget--;
      }
      return out;
    });

    let registered = 0;
    for (const p of created) {
      if (await this.register(p)) registered++;
      else break;
    }
    return { registered };
  }

  /** Sends one recorded reservation to Bootpay. False when it could not be made (the run charges that period). */
  private async register(p: PaymentEntity): Promise<boolean> {
    try {
      const key = await this.billingKeys.reveal(p.billingKeyId);
      const res = await this.gateway.reserve({
        billingKey: key,
        orderId: p.orderId,
        orderName: p.orderName,
        price: p.amount,
        taxFree: p.taxFreeAmount,
        executeAt: p.reserveExecuteAt!,
        feedbackUrl: this.runtime.config.publicBaseUrl ? `${this.runtime.config.publicBaseUrl}/v1/webhooks/bootpay` : undefined,
        metadata: { subscription_id: p.subscriptionId, payment_id: p.id },
      });
      await this.db.query(`UPDATE payments SET reserve_id = $2, updated_at = $3 WHERE id = $1`, [p.id, res.reserveId, this.clock.now()]);
      return true;
    } catch (err) {
      if (err instanceof GatewayUnknownOutcomeError) {
        // It may exist at Bootpay: keep it READY (unconfirmed). If it executes, its webhook settles it; if not, the
        // run re-sends the same order_id after the execution time (a duplicate means it went through).
        this.logger.warn({ message: 'reservation outcome unknown', payment_id: p.id });
        return false;
      }
      const code = err instanceof GatewayReservationLimitError ? 'reservation_limit' : err instanceof GatewayError ? String(err.code) : 'reservation_failed';
      await this.db.query(
        `UPDATE payments SET status = 'ABORTED', failure_code = $2, failure_message = $3, failure_hard = false, updated_at = $4 WHERE id = $1 AND status = 'READY'`,
        [p.id, code.slice(0, 64), 'The reservation could not be made; the scheduled run charges this period', this.clock.now()],
      );
      this.logger.warn({ message: 'reservation not made; falling back to the scheduled run', payment_id: p.id, code });
      return false;
    }
  }

  /**
   * Cancels the subscription's outstanding reservations at Bootpay (before its key may be deleted: deleting a key
   * does not cancel its reservations). One that already executed is left for its webhook to settle.
   */
  async cancelOutstanding(subscriptionId: string): Promise<{ canceled: number; left: number }> {
    const rows: { id: string; reserve_id: string | null }[] = await this.db.query(
      `SELECT id, reserve_id FROM payments WHERE subscription_id = $1 AND status = 'READY' ORDER BY period_start`,
      [subscriptionId],
    );
    let canceled = 0;
    let left = 0;
    for (const r of rows) {
      if (!r.reserve_id) {
        // Never confirmed by Bootpay (its registration had no answer): it cannot be canceled or looked up there. While
        // the subscription goes on it stays, and once its time has come the run asks Bootpay by re-sending its
        // order_id (a duplicate means it executed). A paused or ended subscription must not be charged: it is
        // withdrawn unsent, and finance is told to look for it at Bootpay (a late webhook of it is refunded).
        const [sub] = await this.db.query(`SELECT status FROM subscriptions WHERE id = $1`, [subscriptionId]);
        if (sub && (sub.status === 'paused' || sub.status === 'canceled')) {
          await this.withdrawUnconfirmed(r.id);
          canceled++;
        } else {
          left++;
        }
        continue;
      }
      try {
        await this.gateway.cancelReservation(r.reserve_id);
      } catch (err) {
        // Already executed (or revoked) at Bootpay: it stays READY so that nothing reserves or charges the period
        // again; its webhook, or the run's reservation lookup, settles it from Bootpay's answer.
        left++;
        this.logger.warn({
          message:
            err instanceof GatewayReservationAlreadyDoneError
              ? 'reservation already executed or revoked at Bootpay; left to be settled'
              : 'reservation not canceled; retried later',
          payment_id: r.id,
          code: err instanceof GatewayError ? err.code : 'unknown',
        });
        continue;
      }
      await this.db.query(
        `UPDATE payments SET status = 'ABORTED', failure_code = 'reservation_canceled', failure_message = 'The reservation was canceled', failure_hard = false, updated_at = $2
         WHERE id = $1 AND status = 'READY'`,
        [r.id, this.clock.now()],
      );
      canceled++;
    }
    return { canceled, left };
  }

  /** A reservation whose registration was never confirmed, withdrawn without sending anything. */
  async withdrawUnconfirmed(paymentId: string): Promise<void> {
    await this.db.transaction(async (m) => {
      const rows = returnedRows<{ id: string; subscription_id: string; order_id: string; reserve_execute_at: Date | null }>(
        await m.query(
          `UPDATE payments SET status = 'ABORTED', failure_code = 'reservation_unconfirmed',
             failure_message = 'The reservation was never confirmed by Bootpay and was withdrawn; a late execution is refunded', failure_hard = false, updated_at = $2
           WHERE id = $1 AND status = 'READY' AND reserve_id IS NULL RETURNING id, subscription_id, order_id, reserve_execute_at`,
          [paymentId, this.clock.now()],
        ),
      );
      for (const p of rows) {
        // Bootpay may still hold it (and has no lookup by order_id): if it executes and its webhook is lost too,
        // only a look at Bootpay's admin finds it.
        await this.flags.raise(m, {
          kind: 'reservation_unconfirmed',
          subscriptionId: p.subscription_id,
          paymentId: p.id,
          message: `A reservation whose registration Bootpay never confirmed (order_id ${p.order_id}, due ${p.reserve_execute_at ? new Date(p.reserve_execute_at).toISOString() : 'unknown'}) was withdrawn; if Bootpay executed it and no webhook arrives, refund it there`,
        });
      }
    });
  }

  /** GET /v1/billing-keys/:id/reservations: the key's budget and its outstanding reservations. */
  async forKey(billingKeyId: string) {
    const [key] = await this.db.query(`SELECT id FROM billing_keys WHERE id = $1`, [billingKeyId]);
    if (!key) throw new NotFoundError('Billing key', billingKeyId);
    const rows = await this.db.getRepository(PaymentEntity).find({ where: { billingKeyId, status: 'READY' }, order: { reserveExecuteAt: 'ASC' } });
    return {
      billing_key_id: billingKeyId,
      budget: { limit: RESERVATIONS_PER_KEY, used: rows.length, available: Math.max(0, RESERVATIONS_PER_KEY - rows.length) },
      reservations: rows.map((p) => ({
        payment_id: p.id,
        subscription_id: p.subscriptionId,
        reserve_id: p.reserveId,
        confirmed: p.reserveId !== null,
        order_id: p.orderId,
        amount: p.amount,
        tax_free_amount: p.taxFreeAmount,
        execute_at: p.reserveExecuteAt?.toISOString() ?? null,
        period: { start: p.periodStart.toISOString(), end: p.periodEnd.toISOString() },
      })),
    };
  }
}
