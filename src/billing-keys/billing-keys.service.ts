import { Injectable, Logger } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { randomUUID } from 'node:crypto';
import { DataSource, EntityManager } from 'typeorm';
import { Clock } from '../common/clock';
import { isUniqueViolation, returnedRows } from '../common/db-errors';
import { OutboxService } from '../outbound-webhooks/outbox.service';
import { ConflictError, InvalidInputError, NotFoundError } from '../common/errors';
import { toDomainError } from '../gateway/domain-errors';
import { Page, PageQueryDto, paginate } from '../common/pagination';
import { SecretBox } from '../common/secret-box';
import { CustomersService } from '../customers/customers.service';
import { BootpayGateway } from '../gateway/bootpay.gateway';
import type { BillingKeyInfo } from '../gateway/gateway.types';
import { BillingKeyEntity } from './billing-key.entity';
import { BillingKeyResponseDto, CreateBillingKeyDto } from './dto/billing-key.dto';

const CARD_FIELDS = ['pg', 'card_no', 'card_pw', 'card_expire_year', 'card_expire_month', 'card_identity_no'] as const;

@Injectable()
export class BillingKeysService {
  private readonly logger = new Logger(BillingKeysService.name);

  constructor(
    @InjectDataSource() private readonly db: DataSource,
    private readonly clock: Clock,
    private readonly box: SecretBox,
    private readonly gateway: BootpayGateway,
    private readonly customers: CustomersService,
    private readonly outbox: OutboxService,
  ) {}

  async create(customerId: string, dto: CreateBillingKeyDto): Promise<BillingKeyResponseDto> {
    if (dto.receipt_id !== undefined) {
      const extra = CARD_FIELDS.filter((f) => dto[f] !== undefined);
      if (extra.length) {
        throw new InvalidInputError(
          extra.map((f) => ({ field: f, message: `${f} cannot be sent together with receipt_id: send either receipt_id or card data` })),
        );
      }
    }
    const customer = await this.customers.getEntity(customerId);
    const id = randomUUID();
    let info: BillingKeyInfo;
    try {
      if (dto.receipt_id !== undefined) {
        info = await this.gateway.lookupBillingKeyByReceipt(dto.receipt_id);
      } else {
        info = await this.gateway.issueBillingKey({
          pg: dto.pg!,
          cardNo: dto.card_no!,
          cardPw: dto.card_pw!,
          cardExpireYear: dto.card_expire_year!,
          cardExpireMonth: dto.card_expire_month!,
          cardIdentityNo: dto.card_identity_no!,
          orderName: 'Billing key registration',
          subscriptionId: id,
          user: { id: customer.externalId, username: customer.name, email: customer.email ?? undefined, phone: customer.phone ?? undefined },
        });
      }
    } catch (err) {
      throw toDomainError(err, { receiptField: dto.receipt_id !== undefined ? 'receipt_id' : undefined });
    }

    const now = this.clock.now();
    const entity: Partial<BillingKeyEntity> = {
      id,
      customerId,
      billingKeyCiphertext: this.box.encrypt(info.billingKey, id),
      billingKeyFingerprint: this.box.fingerprint(info.billingKey),
      bootpayReceiptId: info.receiptId,
      pg: info.pg ?? null,
      method: info.method ?? null,
      cardCompany: info.cardCompany ?? null,
      cardCompanyCode: info.cardCompanyCode ?? null,
      cardNoMasked: info.cardNoMasked ?? null,
      cardType: info.cardType === null || info.cardType === undefined ? null : String(info.cardType),
      status: 'active',
      issuedAt: info.publishedAt ?? null,
      expiresAt: info.expiresAt ?? null,
      deletedAt: null,
      createdAt: now,
      updatedAt: now,
    };
    try {
      await this.db.getRepository(BillingKeyEntity).insert(entity);
    } catch (err) {
      if (isUniqueViolation(err)) {
        throw new ConflictError('billing_key_already_registered', 'This billing key is already registered');
      }
      if (dto.receipt_id === undefined) {
        // The key was issued for us just now and we could not keep it: do not leave it alive at Bootpay.
        await this.gateway.destroyBillingKey(info.billingKey).catch(() => {
          this.logger.error({ message: 'could not destroy an unsaved billing key', billing_key_id: id });
        });
      }
      throw err;
    }
    this.logger.log({ message: 'billing key registered', billing_key_id: id, customer_id: customerId });
    return this.get(id);
  }

  async get(id: string): Promise<BillingKeyResponseDto> {
    return this.map(await this.getEntity(id));
  }

  async getEntity(id: string, manager: EntityManager = this.db.manager): Promise<BillingKeyEntity> {
    const row = await manager.getRepository(BillingKeyEntity).findOneBy({ id });
    if (!row) throw new NotFoundError('Billing key', id);
    return row;
  }

  async listForCustomer(customerId: string, query: PageQueryDto): Promise<Page<BillingKeyResponseDto>> {
    await this.customers.getEntity(customerId);
    const qb = this.db.getRepository(BillingKeyEntity).createQueryBuilder('b').where('b.customer_id = :customerId', { customerId });
    return paginate(qb, query, (b) => this.map(b), 'b');
  }

  /** The plain billing key, for the gateway only. Never log or return it. */
  async reveal(id: string, manager: EntityManager = this.db.manager): Promise<string> {
    const row = await manager.getRepository(BillingKeyEntity).createQueryBuilder('b').addSelect('b.billingKeyCiphertext').where('b.id = :id', { id }).getOne();
    if (!row?.billingKeyCiphertext) throw new ConflictError('billing_key_deleted', `Billing key ${id} is deleted`);
    return this.box.decrypt(row.billingKeyCiphertext, id);
  }

  /**
   * Deletes the key at Bootpay and forgets it here. Refused with 409 while a live subscription uses it.
   * The row is first moved to `deleting` under a lock, so a subscription cannot start using it meanwhile.
   */
  async delete(id: string): Promise<BillingKeyResponseDto> {
    const row = await this.getEntity(id);
    if (row.status === 'deleted') return this.map(row);
    const claimed = await this.db.transaction(async (m) => {
      const [locked] = await m.query(`SELECT status FROM billing_keys WHERE id = $1 FOR UPDATE`, [id]);
      if (!locked || locked.status === 'deleted') return false; // 'deleting' is tried again below
      const [{ count }] = await m.query(
        // Live: any status but canceled (the ledger's LIVE_STATUSES).
        `SELECT count(*)::int AS count FROM subscriptions WHERE billing_key_id = $1 AND status <> 'canceled'`,
        [id],
      );
      if (count > 0) {
        throw new ConflictError('billing_key_in_use', `Billing key ${id} is used by ${count} live subscription(s); cancel them or swap their key first`);
      }
      await m.query(`UPDATE billing_keys SET status = 'deleting', updated_at = $2 WHERE id = $1`, [id, this.clock.now()]);
      return true;
    });
    if (!claimed) return this.get(id);
    await this.destroyAtGateway(id);
    return this.get(id);
  }

  /**
   * In the caller's transaction: when no live subscription uses the key any more, moves it to `deleting` and
   * answers true; the caller then destroys it at Bootpay after commit (destroyAtGatewayQuietly). A key left in
   * `deleting` (Bootpay unreachable, or a crash) is finished by the next charge run.
   */
  async markForDeletionIfUnused(m: EntityManager, id: string): Promise<boolean> {
    const [row] = await m.query(`SELECT status FROM billing_keys WHERE id = $1 FOR UPDATE`, [id]);
    if (!row || row.status !== 'active') return false;
    const [{ count }] = await m.query(`SELECT count(*)::int AS count FROM subscriptions WHERE billing_key_id = $1 AND status <> 'canceled'`, [id]);
    if (count > 0) return false;
    await m.query(`UPDATE billing_keys SET status = 'deleting', updated_at = $2 WHERE id = $1`, [id, this.clock.now()]);
    return true;
  }

  /**
   * Destroys a key in `deleting` at Bootpay and marks it deleted (Bootpay answers a repeated destroy as done, so a
   * retry is safe). On failure the key stays in `deleting` and the error is thrown.
   */
  async destroyAtGateway(id: string): Promise<void> {
    // Deleting a key at Bootpay does not cancel its reservations: never delete one that still has some.
    const [{ reserved }] = await this.db.query(`SELECT count(*)::int AS reserved FROM payments WHERE billing_key_id = $1 AND status = 'READY'`, [id]);
    if (reserved > 0) {
      throw new ConflictError('billing_key_has_reservations', `Billing key ${id} still has ${reserved} outstanding reservation(s); they are canceled first`);
    }
    const key = await this.reveal(id);
    try {
      await this.gateway.destroyBillingKey(key);
    } catch (err) {
      throw toDomainError(err);
    }
    await this.db.transaction(async (m) => {
      const now = this.clock.now();
      const rows = returnedRows<{ id: string }>(
        await m.query(
          `UPDATE billing_keys SET status = 'deleted', deleted_at = $2, updated_at = $2, billing_key_ciphertext = NULL, billing_key_fingerprint = NULL
           WHERE id = $1 AND status = 'deleting' RETURNING id`,
          [id, now],
        ),
      );
      if (rows.length) {
        const row = await this.getEntity(id, m);
        await this.outbox.enqueue(m, { type: 'billing_key.deleted', subscriptionId: null, sequence: null, object: { ...this.map(row) } });
      }
    });
    this.logger.log({ message: 'billing key deleted at Bootpay', billing_key_id: id });
  }

  /** destroyAtGateway for background paths: a failure is logged and left for the next sweep. */
  async destroyAtGatewayQuietly(id: string): Promise<boolean> {
    try {
      await this.destroyAtGateway(id);
      return true;
    } catch (err) {
      this.logger.warn({ message: 'billing key deletion at Bootpay postponed', billing_key_id: id, code: err instanceof Error ? err.message : 'unknown' });
      return false;
    }
  }

  /** Keys left in `deleting` (Bootpay was unreachable, or a crash): tries them again. */
  async retryPendingDeletions(limit = 100): Promise<number> {
    const rows: { id: string }[] = await this.db.query(`SELECT id FROM billing_keys WHERE status = 'deleting' ORDER BY updated_at LIMIT $1`, [limit]);
    let done = 0;
    for (const r of rows) if (await this.destroyAtGatewayQuietly(r.id)) done++;
    return done;
  }

  map(b: BillingKeyEntity): BillingKeyResponseDto {
    return {
      id: b.id,
      customer_id: b.customerId,
      status: b.status,
      card_company: b.cardCompany,
      card_no_masked: b.cardNoMasked,
      card_type: b.cardType,
      pg: b.pg,
      bootpay_receipt_id: b.bootpayReceiptId,
      issued_at: b.issuedAt?.toISOString() ?? null,
      expires_at: b.expiresAt?.toISOString() ?? null,
      deleted_at: b.deletedAt?.toISOString() ?? null,
      created_at: b.createdAt.toISOString(),
      updated_at: b.updatedAt.toISOString(),
    };
  }
}
