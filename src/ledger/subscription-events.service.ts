import { Injectable } from '@nestjs/common';
import { EntityManager } from 'typeorm';
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

/** Writes the audit trail in the caller's transaction, so an event exists exactly when its change does. */
@Injectable()
export class SubscriptionEventsService {
  constructor(
    private readonly clock: Clock,
    private readonly outbox: OutboxService,
  ) {}

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
      await this.outbox.enqueue(m, outbound);
    }
    return saved;
  }
}
