import { Inject, Injectable } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { DataSource } from 'typeorm';
import { Clock } from '../../common/clock';
import { NotFoundError } from '../../common/errors';
import { decodeCursor, encodeCursor } from '../../common/pagination';
import { Runtime, RUNTIME } from '../../config/runtime';
import { SubscriptionEntity } from '../../ledger/subscription.entity';
import { PlanTerms } from '../../plans/plans.service';
import { consentWindowOpens, migrationChangeAt, StoredConsent, validConsent } from '../consent-rules';
import { ConsentRow, ConsentStore, MigrationRow, storedConsentsOf } from './consent-store';

/** Reads: a subscription's consents, and the compliance report of the paid conversions and price increases to come. */
@Injectable()
export class ReadConsentsQuery {
  constructor(
    @InjectDataSource() private readonly db: DataSource,
    private readonly clock: Clock,
    private readonly store: ConsentStore,
    @Inject(RUNTIME) private readonly runtime: Runtime,
  ) {}

  /** Oldest recorded first, keyset-paged on (created_at, id) like every list. */
  async list(subscriptionId: string, page: { limit?: number; cursor?: string } = {}) {
    const [sub] = await this.db.query(`SELECT id FROM subscriptions WHERE id = $1`, [subscriptionId]);
    if (!sub) throw new NotFoundError('Subscription', subscriptionId);
    const limit = page.limit ?? 20;
    const after = page.cursor ? decodeCursor(page.cursor) : null;
    const rows = (await this.db.query(
      `SELECT * FROM consents WHERE subscription_id = $1 AND ($3::timestamptz IS NULL OR (created_at, id) > ($3::timestamptz, $4::uuid))
       ORDER BY created_at, id LIMIT $2`,
      [subscriptionId, limit + 1, after?.t ?? null, after?.id ?? null],
    )) as ConsentRow[];
    const data = rows.slice(0, limit);
    const last = data[data.length - 1];
    const hasMore = rows.length > limit;
    return {
      data: data.map((r) => this.store.view(r)),
      has_more: hasMore,
      next_cursor: hasMore && last ? encodeCursor(new Date(last.created_at), last.id) : null,
    };
  }

  /** Subscriptions whose paid conversion or price increase comes before `dueBefore`, with their consent status. */
  async report(dueBefore: Date) {
    const now = this.clock.now();
    const required = this.runtime.config.consent.required;
    const trials: { id: string; customer_id: string; plan_id: string; next_charge_at: Date; amount: string }[] = await this.db.query(
      `SELECT s.id, s.customer_id, s.plan_id, s.next_charge_at, p.amount FROM subscriptions s JOIN plans p ON p.id = s.plan_id
       WHERE s.status = 'trialing' AND s.next_charge_at IS NOT NULL AND s.next_charge_at < $1 AND p.amount > 0
       ORDER BY s.next_charge_at, s.id LIMIT 1000`,
      [dueBefore],
    );
    const migrations = (await this.db.query(
      `SELECT mg.*, p.amount AS to_amount FROM plan_migrations mg JOIN plans p ON p.id = mg.to_plan_id`,
    )) as MigrationRow[];
    const migrated: { sub: SubscriptionEntity; migration: MigrationRow; from: PlanTerms; changeAt: Date }[] = [];
    for (const mg of migrations) {
      const from = await this.store.terms(mg.from_plan_id);
      const subs = await this.db
        .getRepository(SubscriptionEntity)
        .createQueryBuilder('s')
        .where(`s.plan_id = :plan AND s.status IN ('trialing', 'active', 'past_due')`, { plan: mg.from_plan_id })
        .andWhere('NOT EXISTS (SELECT 1 FROM plan_migration_outcomes o WHERE o.migration_id = :mid AND o.subscription_id = s.id)', { mid: mg.id })
        .orderBy('s.next_charge_at', 'ASC')
        .limit(1000)
        .getMany();
      for (const sub of subs) {
        const changeAt = migrationChangeAt(sub, from, mg.effective_at, this.store.tz);
        if (changeAt.getTime() < dueBefore.getTime()) migrated.push({ sub, migration: mg, from, changeAt });
      }
    }
    const ids = [...trials.map((t) => t.id), ...migrated.map((x) => x.sub.id)];
    const bySub = await storedConsentsOf(this.db, ids, { live: false });
    const status = (needed: boolean, c: StoredConsent | null) => (!needed ? 'not_required' : c ? 'valid' : 'missing');
    const rows = [
      ...trials.map((t) => {
        const c = validConsent(bySub.get(t.id) ?? [], { kind: 'trial_conversion', changeAt: t.next_charge_at, amountAfter: Number(t.amount) }, this.store.tz);
        return {
          subscription_id: t.id,
          customer_id: t.customer_id,
          kind: 'trial_conversion' as const,
          change_id: null as string | null,
          change_at: t.next_charge_at.toISOString(),
          window_opens_at: consentWindowOpens(t.next_charge_at, this.store.tz).toISOString(),
          plan_id_before: t.plan_id,
          plan_id_after: t.plan_id,
          price_before: 0,
          price_after: Number(t.amount),
          consent_status: status(required, c),
          consent_id: c?.id ?? null,
          without_consent: required ? this.runtime.config.consent.missingAction : null,
        };
      }),
      ...migrated.map(({ sub, migration, from, changeAt }) => {
        const needed = required && migration.requires_consent;
        const c = validConsent(
          bySub.get(sub.id) ?? [],
          { kind: 'price_increase', changeId: migration.id, changeAt, amountAfter: Number(migration.to_amount) },
          this.store.tz,
        );
        return {
          subscription_id: sub.id,
          customer_id: sub.customerId,
          kind: 'price_increase' as const,
          change_id: migration.id as string | null,
          change_at: changeAt.toISOString(),
          window_opens_at: consentWindowOpens(changeAt, this.store.tz).toISOString(),
          plan_id_before: from.id,
          plan_id_after: migration.to_plan_id,
          price_before: from.amount,
          price_after: Number(migration.to_amount),
          consent_status: status(needed, c),
          consent_id: c?.id ?? null,
          without_consent: needed ? this.runtime.config.consent.missingAction : null,
        };
      }),
    ].sort((a, b) => a.change_at.localeCompare(b.change_at) || a.subscription_id.localeCompare(b.subscription_id));
    return { as_of: now.toISOString(), due_before: dueBefore.toISOString(), data: rows };
  }
}
