import { Injectable } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { DataSource, EntityManager, EntitySubscriberInterface, In, QueryRunner, TransactionCommitEvent, TransactionRollbackEvent } from 'typeorm';
import type { Actor } from '../auth/auth.decorators';
import { Clock } from '../common/clock';
import { returnedRows } from '../common/db-errors';
import { isOutboundEventType, OutboundEvent, OutboxService } from '../outbound-webhooks/outbox.service';
import { paymentView } from '../payments/payment-view';
import { PaymentEntity } from '../payments/payment.entity';
import { SubscriptionEventEntity } from './subscription-event.entity';
import { subscriptionView } from './subscription-view';
import { SubscriptionEntity } from './subscription.entity';

export type EventActor = Actor | 'system';

export interface EventDetails {
  reason?: string | null;
  before?: Record<string, unknown> | null;
  after?: Record<string, unknown> | null;
  data?: Record<string, unknown> | null;
  /** The object sent to the SaaS backend's webhooks; the subscription itself by default. */
  object?: Record<string, unknown>;
}

/**
 * The subscription_events row of an event with sequence number `sequence` (the subscription's event_seq after it), or
 * null for an event that is not sent (it takes no number).
 */
export function auditRow(sub: SubscriptionEntity, type: string, actor: EventActor, opts: EventDetails, sequence: number | null, now: Date) {
  return {
    subscription_id: sub.id,
    type,
    actor_type: actor === 'system' ? ('system' as const) : (actor.type ?? 'api_key'),
    actor_id: actor === 'system' ? null : actor.apiKeyId,
    actor_name: actor === 'system' ? 'system' : actor.name.slice(0, 100),
    reason: opts.reason?.slice(0, 500) ?? null,
    before: opts.before ?? null,
    after: opts.after ?? null,
    data: { sequence, ...(opts.data ?? {}) },
    created_at: now,
  };
}

/**
 * What the SaaS backend's webhooks receive for an event, or null when the event is internal only. `sub` is the
 * subscription after the change: it is the object, or, when the object is a payment or a refund, goes along as
 * `data.subscription`, so every event tells the subscription's state at its sequence.
 */
export function outboundOf(sub: SubscriptionEntity, type: string, opts: EventDetails, sequence: number): OutboundEvent | null {
  if (!isOutboundEventType(type)) return null;
  const subscription = { ...subscriptionView(sub) };
  return opts.object
    ? { type, subscriptionId: sub.id, sequence, object: opts.object, subscription }
    : { type, subscriptionId: sub.id, sequence, object: subscription };
}

/** An outbound event written in a transaction: its subscription, sequence, and the payment a refund event carries. */
interface WrittenEvent {
  subscriptionId: string;
  sequence: number;
  asObject: boolean;
  paymentId: string | null;
}

/** The outbound events written in a transaction, by its query runner and event id. */
const written = new WeakMap<QueryRunner, Map<string, WrittenEvent>>();

/**
 * Sends the subscription as its transaction commits it. An event is written when the change is recorded, but the
 * caller may change the subscription further before committing (a payment is recorded, then the renewal it pays
 * for): just before COMMIT, the subscription of every event written in the transaction (data.object or
 * data.subscription), and a refund event's payment (data.payment), are replaced with what stands then, versioned with
 * the event's sequence.
 */
class CommittedSubscriptionSnapshots implements EntitySubscriberInterface {
  async beforeTransactionCommit(event: TransactionCommitEvent): Promise<void> {
    const pending = written.get(event.queryRunner);
    if (!pending?.size) return;
    written.delete(event.queryRunner);
    const ids = [...new Set([...pending.values()].map((p) => p.subscriptionId))];
    const subs = await event.manager.getRepository(SubscriptionEntity).findBy({ id: In(ids) });
    const views = new Map<string, Record<string, unknown>>(subs.map((sub) => [sub.id, { ...subscriptionView(sub) }]));
    const paymentIds = [...new Set([...pending.values()].flatMap((p) => (p.paymentId ? [p.paymentId] : [])))];
    if (paymentIds.length) {
      const payments = await event.manager.getRepository(PaymentEntity).findBy({ id: In(paymentIds) });
      for (const p of payments) views.set(p.id, { ...paymentView(p) });
    }
    const rows = [...pending.entries()].flatMap(([id, p]) => [
      ...(views.has(p.subscriptionId) ? [{ id, path: p.asObject ? 'object' : 'subscription', value: { ...views.get(p.subscriptionId), version: p.sequence } }] : []),
      ...(p.paymentId && views.has(p.paymentId) ? [{ id, path: 'payment', value: { ...views.get(p.paymentId), version: p.sequence } }] : []),
    ]);
    if (!rows.length) return;
    // One path at a time, so an event with two objects gets both.
    for (const path of ['object', 'subscription', 'payment']) {
      const mine = rows.filter((r) => r.path === path);
      if (!mine.length) continue;
      await event.manager.query(
        `UPDATE webhook_events w SET payload = jsonb_set(w.payload, ARRAY['data', $2::text], r.value)
         FROM jsonb_to_recordset($1::jsonb) AS r(id uuid, value jsonb) WHERE w.id = r.id`,
        [JSON.stringify(mine), path],
      );
    }
  }

  afterTransactionRollback(event: TransactionRollbackEvent): void {
    written.delete(event.queryRunner);
  }
}

/** Writes the audit trail in the caller's transaction, so an event exists exactly when its change does. */
@Injectable()
export class SubscriptionEventsService {
  constructor(
    private readonly clock: Clock,
    private readonly outbox: OutboxService,
    @InjectDataSource() db: DataSource,
  ) {
    // One per data source, however many modules provide this service.
    if (!db.subscribers.some((x) => x instanceof CommittedSubscriptionSnapshots)) db.subscribers.push(new CommittedSubscriptionSnapshots());
  }

  /**
   * Records an event of `sub` (the subscription after the change). An event the SaaS backend receives takes the
   * subscription's next sequence number and goes to the outbox; an internal one takes none, so the numbers a consumer
   * sees have no gaps.
   */
  async record(m: EntityManager, sub: SubscriptionEntity, type: string, actor: EventActor, opts: EventDetails = {}): Promise<SubscriptionEventEntity> {
    let sequence: number | null = null;
    if (isOutboundEventType(type)) {
      const [{ event_seq }] = returnedRows<{ event_seq: number }>(
        await m.query(`UPDATE subscriptions SET event_seq = event_seq + 1 WHERE id = $1 RETURNING event_seq`, [sub.id]),
      );
      sub.eventSeq = event_seq;
      sequence = event_seq;
    }
    const row = auditRow(sub, type, actor, opts, sequence, this.clock.now());
    const event = m.getRepository(SubscriptionEventEntity).create({
      subscriptionId: row.subscription_id,
      type: row.type,
      actorType: row.actor_type,
      actorId: row.actor_id,
      actorName: row.actor_name,
      reason: row.reason,
      before: row.before,
      after: row.after,
      data: row.data,
      createdAt: row.created_at,
    });
    const saved = await m.getRepository(SubscriptionEventEntity).save(event);
    // The SaaS backend hears of it in the same transaction (the outbox).
    const outbound = sequence === null ? null : outboundOf(sub, type, opts, sequence);
    if (outbound && sequence !== null) {
      // A refund changes its payment (balance, status): the payment as it now stands goes along as data.payment.
      const paymentId = opts.data?.payment_id;
      if (type.startsWith('refund.') && typeof paymentId === 'string') {
        const payment = await m.getRepository(PaymentEntity).findOneBy({ id: paymentId });
        if (payment) outbound.payment = { ...paymentView(payment) };
      }
      const eventId = await this.outbox.enqueue(m, outbound);
      if (m.queryRunner?.isTransactionActive) {
        const mine = written.get(m.queryRunner) ?? new Map<string, WrittenEvent>();
        written.set(m.queryRunner, mine);
        mine.set(eventId, { subscriptionId: sub.id, sequence, asObject: !opts.object, paymentId: outbound.payment ? (outbound.payment.id as string) : null });
      }
    }
    return saved;
  }
}
