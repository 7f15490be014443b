import { Inject, Injectable } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { randomBytes, randomUUID } from 'node:crypto';
import { DataSource } from 'typeorm';
import { Clock } from '../common/clock';
import { ConflictError, InvalidInputError, NotFoundError } from '../common/errors';
import { Page, PageQueryDto, paginate } from '../common/pagination';
import { SecretBox } from '../common/secret-box';
import { Runtime, RUNTIME } from '../config/runtime';
import { privateTargetOf } from './address-guard';
import { CreateWebhookEndpointDto, ListDeliveriesQueryDto, UpdateWebhookEndpointDto } from './webhook-endpoints.dto';
import { WebhookDeliveryEntity, WebhookEndpointEntity, WebhookEventEntity } from './webhook.entities';

@Injectable()
export class WebhookEndpointsService {
  constructor(
    @InjectDataSource() private readonly db: DataSource,
    private readonly clock: Clock,
    private readonly box: SecretBox,
    @Inject(RUNTIME) private readonly runtime: Runtime,
  ) {}

  /**
   * Webhooks must not reach into the network this service runs in (its own admin ports, the database, a cloud
   * metadata service): a URL on a loopback, private, link-local or unique-local address is refused, unless
   * OUTBOUND_WEBHOOKS_ALLOW_PRIVATE allows it. Every delivery checks the address it connects to again, after DNS.
   */
  private async checkTarget(url: string): Promise<void> {
    if (this.runtime.config.outboundWebhooks.allowPrivate) return;
    const reason = await privateTargetOf(url);
    if (reason) {
      throw new InvalidInputError([{ field: 'url', message: `url must reach a public address: ${reason}` }], `url must reach a public address: ${reason}`);
    }
  }

  /** The signing secret is shown in this answer only (and when rotated). */
  async create(dto: CreateWebhookEndpointDto) {
    await this.checkTarget(dto.url);
    const id = randomUUID();
    const secret = `whsec_${randomBytes(24).toString('base64url')}`;
    const now = this.clock.now();
    await this.db.getRepository(WebhookEndpointEntity).insert({
      id,
      url: dto.url,
      description: dto.description ?? null,
      events: dto.events ?? ['*'],
      secretCiphertext: this.box.encrypt(secret, id),
      active: true,
      createdAt: now,
      updatedAt: now,
    });
    return { ...(await this.get(id)), secret };
  }

  async rotateSecret(id: string) {
    await this.entity(id);
    const secret = `whsec_${randomBytes(24).toString('base64url')}`;
    await this.db.getRepository(WebhookEndpointEntity).update({ id }, { secretCiphertext: this.box.encrypt(secret, id), updatedAt: this.clock.now() });
    return { ...(await this.get(id)), secret };
  }

  private async entity(id: string): Promise<WebhookEndpointEntity> {
    const e = await this.db.getRepository(WebhookEndpointEntity).findOneBy({ id });
    if (!e) throw new NotFoundError('Webhook endpoint', id);
    return e;
  }

  async get(id: string) {
    return this.map(await this.entity(id));
  }

  async list(q: PageQueryDto) {
    return paginate(this.db.getRepository(WebhookEndpointEntity).createQueryBuilder('w'), q, (e) => this.map(e), 'w');
  }

  async update(id: string, dto: UpdateWebhookEndpointDto) {
    const e = await this.entity(id);
    if (dto.url !== undefined) await this.checkTarget(dto.url);
    if (dto.url !== undefined) e.url = dto.url;
    if (dto.description !== undefined) e.description = dto.description;
    if (dto.events !== undefined) e.events = dto.events;
    if (dto.active !== undefined) e.active = dto.active;
    e.updatedAt = this.clock.now();
    await this.db.getRepository(WebhookEndpointEntity).save(e);
    return this.get(id);
  }

  async deliveries(endpointId: string, q: ListDeliveriesQueryDto): Promise<Page<ReturnType<WebhookEndpointsService['mapDelivery']>>> {
    await this.entity(endpointId);
    const qb = this.db.getRepository(WebhookDeliveryEntity).createQueryBuilder('d').where('d.endpoint_id = :endpointId', { endpointId });
    if (q.status) qb.andWhere('d.status = :status', { status: q.status });
    const page = await paginate(qb, q, (d) => d, 'd');
    const events = page.data.length ? await this.db.getRepository(WebhookEventEntity).findBy(page.data.map((d) => ({ id: d.eventId }))) : [];
    const byId = new Map(events.map((e) => [e.id, e]));
    return { ...page, data: page.data.map((d) => this.mapDelivery(d, byId.get(d.eventId))) };
  }

  /** An admin re-sends a delivery (failed or not): it is due at once. Not to an inactive endpoint, which gets nothing. */
  async resend(deliveryId: string) {
    const d = await this.db.getRepository(WebhookDeliveryEntity).findOneBy({ id: deliveryId });
    if (!d) throw new NotFoundError('Webhook delivery', deliveryId);
    const endpoint = await this.entity(d.endpointId);
    if (!endpoint.active) {
      throw new ConflictError('webhook_endpoint_inactive', `Webhook endpoint ${endpoint.id} is inactive: activate it (PATCH active: true) before re-sending`);
    }
    const now = this.clock.now();
    await this.db.getRepository(WebhookDeliveryEntity).update({ id: deliveryId }, { status: 'pending', nextAttemptAt: now, updatedAt: now });
    const e = await this.db.getRepository(WebhookEventEntity).findOneBy({ id: d.eventId });
    return this.mapDelivery({ ...d, status: 'pending', nextAttemptAt: now, updatedAt: now }, e ?? undefined);
  }

  map(e: WebhookEndpointEntity) {
    return {
      id: e.id,
      url: e.url,
      description: e.description,
      events: e.events,
      active: e.active,
      created_at: e.createdAt.toISOString(),
      updated_at: e.updatedAt.toISOString(),
    };
  }

  mapDelivery(d: WebhookDeliveryEntity, e?: WebhookEventEntity) {
    return {
      id: d.id,
      endpoint_id: d.endpointId,
      event: e ? { id: e.id, type: e.type, sequence: e.sequence, subscription_id: e.subscriptionId, created_at: e.createdAt.toISOString() } : { id: d.eventId },
      status: d.status,
      attempts: d.attempts,
      next_attempt_at: d.nextAttemptAt?.toISOString() ?? null,
      last_status_code: d.lastStatusCode,
      last_error: d.lastError,
      delivered_at: d.deliveredAt?.toISOString() ?? null,
      created_at: d.createdAt.toISOString(),
    };
  }
}
