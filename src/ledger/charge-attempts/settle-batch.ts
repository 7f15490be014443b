import { Inject, Injectable, Optional } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { DataSource } from 'typeorm';
import { Clock } from '../../common/clock';
import { preparedQuery } from '../../common/prepared';
import { Runtime, RUNTIME } from '../../config/runtime';
import { GatewayReceipt } from '../../gateway/gateway.types';
import { MetricsService } from '../../metrics/metrics.service';
import { deliveriesFromCte, outboxRow } from '../../outbound-webhooks/outbox.service';
import { PaymentEntity } from '../../payments/payment.entity';
import { ColumnWriter, columnWriter, receiptMismatchOf } from '../charge-records';
import { APPROVAL_FIELDS, applyApproval } from '../new-payment';
import { auditRow, outboundOf } from '../subscription-events.service';
import { SubscriptionEntity } from '../subscription.entity';
import { CHARGE_SUCCESS_FIELDS, snapshot, transition } from '../transitions';
import { approvalEvents, ClaimedCharge } from './attempt-shared';
import { ChargeEffects } from './charge-effects';

/**
 * Records the charge run's outcomes of claimed charges in bulk: plain approvals in one statement (those whose
 * subscription nobody changed meanwhile), unknown outcomes in another. Everything else is settled the general way.
 */
@Injectable()
export class SettleBatchAction {
  constructor(
    @InjectDataSource() private readonly db: DataSource,
    private readonly clock: Clock,
    private readonly effects: ChargeEffects,
    @Inject(RUNTIME) private readonly runtime: Runtime,
    @Optional() private readonly metrics?: MetricsService,
  ) {}

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
    if (claim.plan.chargeMode === 'reservation') await this.effects.runEffects(claim.subscription.id, [{ kind: 'top_up_reservations' }]);
  }
}
