import { Inject, Injectable, Logger } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { DataSource } from 'typeorm';
import { Clock } from '../../common/clock';
import { returnedRows } from '../../common/db-errors';
import { Runtime, RUNTIME } from '../../config/runtime';
import { BootpayGateway } from '../../gateway/bootpay.gateway';
import { RESERVATION_STATUS } from '../../gateway/gateway.types';
import { PaymentEntity } from '../../payments/payment.entity';
import { ReservationsService } from '../reservations.service';
import { SubscriptionEntity } from '../subscription.entity';
import { transition } from '../transitions';
import { ApplyReceiptAction } from './apply-receipt';
import { CHARGE_ATTEMPTS_LOG_CONTEXT } from './attempt-shared';
import { SendChargeAction } from './send-charge';
import { SettleChargeAction } from './settle-charge';

/**
 * Resolves attempts and reservations left open: stale attempts leased to the charge run, a subscription's open
 * payments settled before an action changes it, and reservations whose execution time has come.
 */
@Injectable()
export class ResolveOpenAction {
  private readonly logger = new Logger(CHARGE_ATTEMPTS_LOG_CONTEXT);

  constructor(
    @InjectDataSource() private readonly db: DataSource,
    private readonly clock: Clock,
    private readonly gateway: BootpayGateway,
    private readonly reservations: ReservationsService,
    private readonly sender: SendChargeAction,
    private readonly settlement: SettleChargeAction,
    private readonly receipts: ApplyReceiptAction,
    @Inject(RUNTIME) private readonly runtime: Runtime,
  ) {}

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
    return transition(sub, { type: 'charge_approved', charge: p }, await this.settlement.context(sub.planId, this.db.manager)).ok;
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
        else if (opts.resend) await this.settlement.settle(p.id, await this.sender.send(p));
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
        const outcome = await this.sender.send(p);
        await this.settlement.settle(p.id, outcome);
        return outcome.kind !== 'unknown';
      }
      await this.reservations.withdrawUnconfirmed(p.id);
      return true;
    }
    const r = await this.gateway.lookupReservation(p.reserveId);
    if (r.receiptId) {
      await this.receipts.applyReceipt(await this.gateway.getReceipt(r.receiptId));
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
}
