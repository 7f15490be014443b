import { Injectable } from '@nestjs/common';
import { EntityManager } from 'typeorm';
import type { Actor } from '../auth/auth.decorators';
import { Clock } from '../common/clock';
import { returnedRows } from '../common/db-errors';
import { isOutboundEventType, OutboxService } from '../outbound-webhooks/outbox.service';
import { SubscriptionEventEntity } from './subscription-event.entity';
import { subscriptionView } from './subscription-view';
import type { SubscriptionEntity } from './subscription.entity';

export type EventActor = Actor | 'system';

/** Writes the audit trail in the caller's transaction, so an event exists exactly when its change does. */
@Injectable()
export class SubscriptionEventsService {
  constructor(
    private readonly clock: Clock,
    private readonly outbox: OutboxService,
  ) {}

  async record(
    m: EntityManager,
    sub: SubscriptionEntity,
    type: string,
    actor: EventActor,
    opts: {
      reason?: string | null;
      before?: Record<string, unknown> | null;
      after?: Record<string, unknown> | null;
      data?: Record<string, unknown> | null;
      /** The object sent to the SaaS backend's webhooks; the subscription itself by default. */
      object?: Record<string, unknown>;
    } = {},
  ): Promise<SubscriptionEventEntity> {
    const [{ event_seq }] = returnedRows<{ event_seq: number }>(
      await m.query(`UPDATE subscriptions SET event_seq = event_seq + 1 WHERE id = $1 RETURNING event_seq`, [sub.id]),
    );
    sub.eventSeq = event_seq;
    const event = m.getRepository(SubscriptionEventEntity).create({
      subscriptionId: sub.id,
      type,
      actorType: actor === 'system' ? 'system' : 'api_key',
      actorId: actor === 'system' ? null : actor.apiKeyId,
      actorName: actor === 'system' ? 'system' : actor.name.slice(0, 100),
      reason: opts.reason?.slice(0, 500) ?? null,
      before: opts.before ?? null,
      after: opts.after ?? null,
      data: { sequence: event_seq, ...(opts.data ?? {}) },
      createdAt: this.clock.now(),
    });
    const saved = await m.getRepository(SubscriptionEventEntity).save(event);
    // The SaaS backend hears of it in the same transaction (the outbox).
    if (isOutboundEventType(type)) {
      await this.outbox.enqueue(m, { type, subscriptionId: sub.id, sequence: event_seq, object: opts.object ?? { ...subscriptionView(sub) } });
    }
    return saved;
  }
}
