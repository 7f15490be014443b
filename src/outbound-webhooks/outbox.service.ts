import { Injectable } from '@nestjs/common';
import { EntityManager } from 'typeorm';
import { Clock } from '../common/clock';
import { randomUUID } from 'node:crypto';
import { WebhookDeliveryEntity } from './webhook.entities';

/** The events the SaaS backend can receive. */
export const OUTBOUND_EVENT_TYPES = [
  'subscription.created',
  'subscription.activated',
  'subscription.past_due',
  'subscription.paused',
  'subscription.resumed',
  'subscription.plan_changed',
  'subscription.canceled',
  'subscription.unpaid',
  'payment.succeeded',
  'payment.failed',
  'refund.succeeded',
  'billing_key.deleted',
] as const;
export type OutboundEventType = (typeof OUTBOUND_EVENT_TYPES)[number];

export function isOutboundEventType(type: string): type is OutboundEventType {
  return (OUTBOUND_EVENT_TYPES as readonly string[]).includes(type);
}

/**
 * The outbox: an event and one delivery per subscribed endpoint are written in the caller's transaction, so the
 * SaaS backend hears of a change exactly when it is committed. The dispatcher delivers them afterwards.
 */
@Injectable()
export class OutboxService {
  constructor(private readonly clock: Clock) {}

  async enqueue(
    m: EntityManager,
    event: { type: OutboundEventType; subscriptionId: string | null; sequence: number | null; object: Record<string, unknown> },
  ): Promise<void> {
    const now = this.clock.now();
    const id = randomUUID();
    const payload = {
      id,
      type: event.type,
      created_at: now.toISOString(),
      sequence: event.sequence,
      subscription_id: event.subscriptionId,
      data: { object: event.object },
    };
    await m.query(
      `INSERT INTO webhook_events (id, type, subscription_id, sequence, payload, created_at) VALUES ($1, $2, $3, $4, $5::jsonb, $6)`,
      [id, event.type, event.subscriptionId, event.sequence, JSON.stringify(payload), now],
    );
    await m.query(
      `INSERT INTO webhook_deliveries (event_id, endpoint_id, status, attempts, next_attempt_at, created_at, updated_at)
       SELECT $1, e.id, 'pending', 0, $3, $3, $3 FROM webhook_endpoints e
       WHERE e.active AND ('*' = ANY(e.events) OR $2 = ANY(e.events))`,
      [id, event.type, now],
    );
  }
}

export { WebhookDeliveryEntity };
