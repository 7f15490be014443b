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

  async enqueue(m: EntityManager, event: OutboundEvent): Promise<void> {
    const row = outboxRow(event, this.clock.now());
    await m.query(
      `WITH we AS (
         INSERT INTO webhook_events (id, type, subscription_id, sequence, payload, created_at) VALUES ($1, $2, $3, $4, $5::jsonb, $6)
         RETURNING id, type
       )
       ${deliveriesFromCte('$6')}`,
      [row.id, row.type, row.subscription_id, row.sequence, JSON.stringify(row.payload), row.created_at],
    );
  }
}

export interface OutboundEvent {
  type: OutboundEventType;
  subscriptionId: string | null;
  sequence: number | null;
  object: Record<string, unknown>;
}

/** The webhook_events row of an event, its payload being the body every endpoint receives. */
export function outboxRow(event: OutboundEvent, now: Date) {
  const id = randomUUID();
  return {
    id,
    type: event.type,
    subscription_id: event.subscriptionId,
    sequence: event.sequence,
    payload: {
      id,
      type: event.type,
      created_at: now.toISOString(),
      sequence: event.sequence,
      subscription_id: event.subscriptionId,
      data: { object: event.object },
    },
    created_at: now,
  };
}

/**
 * SQL that queues one delivery per subscribed endpoint for the events of a CTE named `we` (id, type), for use in a
 * statement that writes the events themselves; `now` is the placeholder of the parameter holding the time (`$4`).
 */
export function deliveriesFromCte(now: string): string {
  return `INSERT INTO webhook_deliveries (event_id, endpoint_id, status, attempts, next_attempt_at, created_at, updated_at)
    SELECT we.id, e.id, 'pending', 0, ${now}, ${now}, ${now} FROM we JOIN webhook_endpoints e ON e.active AND ('*' = ANY(e.events) OR we.type = ANY(e.events))`;
}

export { WebhookDeliveryEntity };
