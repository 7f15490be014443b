import { Injectable } from '@nestjs/common';
import { EntityManager } from 'typeorm';
import { Clock } from '../common/clock';
import { randomUUID } from 'node:crypto';
import { WebhookDeliveryEntity } from './webhook.entities';

/**
 * The events the SaaS backend can receive. Every event of a subscription's audit trail that takes a sequence number is
 * one of these, so a subscription's events are numbered without gaps (see SubscriptionEventsService.record).
 */
export const OUTBOUND_EVENT_TYPES = [
  'subscription.created',
  'subscription.activated',
  'subscription.past_due',
  'subscription.paused',
  'subscription.resumed',
  'subscription.plan_change_requested',
  'subscription.plan_change_scheduled',
  'subscription.plan_changed',
  'subscription.cancel_scheduled',
  'subscription.reactivated',
  'subscription.billing_key_changed',
  'subscription.retry_requested',
  'subscription.canceled',
  'subscription.unpaid',
  'subscription.consent_required',
  'subscription.renewal_upcoming',
  'payment.succeeded',
  'payment.failed',
  'refund.succeeded',
  'refund.failed',
  'billing_key.deleted',
  'reconciliation.difference',
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

  /** Writes the event and its deliveries; answers the event's id. */
  async enqueue(m: EntityManager, event: OutboundEvent): Promise<string> {
    const row = outboxRow(event, this.clock.now());
    await m.query(
      `WITH we AS (
         INSERT INTO webhook_events (id, type, subscription_id, sequence, payload, created_at) VALUES ($1, $2, $3, $4, $5::jsonb, $6)
         RETURNING id, type
       )
       ${deliveriesFromCte('$6')}`,
      [row.id, row.type, row.subscription_id, row.sequence, JSON.stringify(row.payload), row.created_at],
    );
    return row.id;
  }
}

export interface OutboundEvent {
  type: OutboundEventType;
  subscriptionId: string | null;
  sequence: number | null;
  /** The object of the event (`data.object`); it is sent with a `version` (see versionOf) when it has none. */
  object: Record<string, unknown>;
  /** The subscription after the change, when the object is something else (a payment, a refund). */
  subscription?: Record<string, unknown>;
  /** The payment after the change, when the object is one of its refunds. */
  payment?: Record<string, unknown>;
}

/**
 * The version of an object sent in an event, so a consumer can tell the newer of two states: the subscription's event
 * sequence for anything of a subscription (its payments and refunds change only in its numbered events), otherwise the
 * object's `updated_at` (else `created_at`) in epoch milliseconds.
 */
export function versionOf(object: Record<string, unknown>, sequence: number | null): number {
  if (typeof object.version === 'number') return object.version;
  if (sequence !== null) return sequence;
  for (const field of ['updated_at', 'created_at']) {
    const at = typeof object[field] === 'string' ? Date.parse(object[field]) : Number.NaN;
    if (!Number.isNaN(at)) return at;
  }
  return 0;
}

/** The webhook_events row of an event, its payload being the body every endpoint receives. */
export function outboxRow(event: OutboundEvent, now: Date) {
  const id = randomUUID();
  const data: Record<string, unknown> = { object: { ...event.object, version: versionOf(event.object, event.sequence) } };
  if (event.subscription) data.subscription = { ...event.subscription, version: versionOf(event.subscription, event.sequence) };
  if (event.payment) data.payment = { ...event.payment, version: versionOf(event.payment, event.sequence) };
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
      data,
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
