import { Injectable } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { DataSource, EntityManager } from 'typeorm';
import type { Actor } from '../auth/auth.decorators';
import { InvalidInputError } from '../common/errors';
import { Page, PageQueryDto, paginate } from '../common/pagination';
import {
  CancelSubscriptionDto,
  ChangePlanDto,
  CreateSubscriptionDto,
  ListSubscriptionsQueryDto,
  PauseSubscriptionDto,
  SubscriptionResponseDto,
  SwapBillingKeyDto,
} from './dto/subscription.dto';
import { SubscriptionEventEntity } from './subscription-event.entity';
import { SubscriptionEntity } from './subscription.entity';
import { CancelSubscriptionAction } from './subscriptions/cancel-subscription';
import { ChangePlanAction } from './subscriptions/change-plan';
import { CreateSubscriptionAction, NoticeAtCreation } from './subscriptions/create-subscription';
import { PauseResumeAction } from './subscriptions/pause-resume-subscription';
import { RetryChargeAction } from './subscriptions/retry-charge';
import { SubscriptionWriter } from './subscriptions/subscription-writer';
import { SwapBillingKeyAction } from './subscriptions/swap-billing-key';

/**
 * The subscriptions of the API, the console and the run: reads here, and each action in its own file under
 * `subscriptions/` (every change goes through the transition authority, see SubscriptionWriter.apply).
 */
@Injectable()
export class SubscriptionsService {
  constructor(
    @InjectDataSource() private readonly db: DataSource,
    private readonly w: SubscriptionWriter,
    private readonly creating: CreateSubscriptionAction,
    private readonly canceling: CancelSubscriptionAction,
    private readonly pausing: PauseResumeAction,
    private readonly planChanges: ChangePlanAction,
    private readonly keySwaps: SwapBillingKeyAction,
    private readonly retries: RetryChargeAction,
  ) {}

  // ------------------------------------------------------------------ reads

  get(id: string): Promise<SubscriptionResponseDto> {
    return this.w.get(id);
  }

  getEntity(id: string, m?: EntityManager): Promise<SubscriptionEntity> {
    return this.w.getEntity(id, m);
  }

  view(sub: SubscriptionEntity, withPayment = true): Promise<SubscriptionResponseDto> {
    return this.w.view(sub, withPayment);
  }

  async list(q: ListSubscriptionsQueryDto): Promise<Page<SubscriptionResponseDto>> {
    const qb = this.db.getRepository(SubscriptionEntity).createQueryBuilder('s');
    if (q.customer_id) qb.andWhere('s.customer_id = :c', { c: q.customer_id });
    if (q.status) qb.andWhere('s.status = :st', { st: q.status });
    if (q.dunning_attempts !== undefined) qb.andWhere('s.dunning_attempts = :da', { da: Number(q.dunning_attempts) });
    const page = await paginate(qb, q, (s) => s, 's');
    return { ...page, data: await Promise.all(page.data.map((s) => this.w.view(s, false))) };
  }

  /** Events oldest first; the cursor is the last event's sequence number. */
  async listEvents(id: string, q: PageQueryDto) {
    await this.w.getEntity(id);
    const limit = q.limit ?? 20;
    let after = 0;
    if (q.cursor !== undefined) after = eventCursorSeq(q.cursor);
    const rows = await this.db
      .getRepository(SubscriptionEventEntity)
      .createQueryBuilder('e')
      .where('e.subscription_id = :id AND e.seq > :after', { id, after })
      .orderBy('e.seq', 'ASC')
      .limit(limit + 1)
      .getMany();
    const page = rows.slice(0, limit);
    return {
      data: page.map((e) => ({
        id: e.id,
        type: e.type,
        sequence: (e.data as { sequence?: number } | null)?.sequence ?? null,
        actor: { type: e.actorType, id: e.actorId, name: e.actorName },
        reason: e.reason,
        before: e.before,
        after: e.after,
        data: e.data,
        created_at: e.createdAt.toISOString(),
      })),
      has_more: rows.length > limit,
      next_cursor: rows.length > limit ? Buffer.from(JSON.stringify({ seq: page[page.length - 1].seq })).toString('base64url') : null,
    };
  }

  // ------------------------------------------------------------------ actions

  create(dto: CreateSubscriptionDto, actor: Actor, noticeAt?: NoticeAtCreation): Promise<SubscriptionResponseDto> {
    return this.creating.create(dto, actor, noticeAt);
  }

  cancel(id: string, dto: CancelSubscriptionDto, actor: Actor): Promise<SubscriptionResponseDto> {
    return this.canceling.cancel(id, dto, actor);
  }

  reactivate(id: string, reason: string | undefined, actor: Actor): Promise<SubscriptionResponseDto> {
    return this.canceling.reactivate(id, reason, actor);
  }

  pause(id: string, dto: PauseSubscriptionDto, actor: Actor): Promise<SubscriptionResponseDto> {
    return this.pausing.pause(id, dto, actor);
  }

  /** Also called by the charge run when resume_at has come. */
  resume(id: string, reason: string | undefined, actor: Actor | 'system'): Promise<SubscriptionResponseDto> {
    return this.pausing.resume(id, reason, actor);
  }

  changePlan(id: string, dto: ChangePlanDto, actor: Actor): Promise<SubscriptionResponseDto> {
    return this.planChanges.changePlan(id, dto, actor);
  }

  refundCredit(id: string, dto: { amount?: number; reason: string }, actor: Actor): Promise<SubscriptionResponseDto> {
    return this.planChanges.refundCredit(id, dto, actor);
  }

  swapBillingKey(id: string, dto: SwapBillingKeyDto, actor: Actor): Promise<SubscriptionResponseDto> {
    return this.keySwaps.swapBillingKey(id, dto, actor);
  }

  retryNow(id: string, actor: Actor, reason?: string): Promise<SubscriptionResponseDto> {
    return this.retries.retryNow(id, actor, reason);
  }
}

/** The audit trail's cursor: opaque like every other (base64url JSON of the last event's global sequence number). */
function eventCursorSeq(cursor: string): number {
  try {
    const v = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8')) as { seq?: unknown };
    if (typeof v.seq === 'number' && Number.isSafeInteger(v.seq) && v.seq >= 1) return v.seq;
  } catch {
    /* refused below */
  }
  throw new InvalidInputError([{ field: 'cursor', message: 'cursor must be a next_cursor value from a previous page' }]);
}
