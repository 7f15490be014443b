import { Inject, Injectable } from '@nestjs/common';
import { EntityManager } from 'typeorm';
import { NotFoundError } from '../../common/errors';
import { Runtime, RUNTIME } from '../../config/runtime';
import { SubscriptionEntity } from '../../ledger/subscription.entity';
import { PlansService, PlanTerms } from '../../plans/plans.service';
import { consentStatus, consentWindowOpens, StoredConsent } from '../consent-rules';

export const CLOCK_SKEW_MS = 60_000;

export interface ConsentRow {
  id: string;
  subscription_id: string;
  kind: 'trial_conversion' | 'price_increase';
  change_id: string | null;
  change_at: Date;
  plan_id_before: string | null;
  plan_id_after: string;
  amount_before: string;
  amount_after: string;
  billing_key_id: string;
  card_company: string | null;
  card_no_masked: string | null;
  obtained_at: Date;
  channel: string;
  evidence: string;
  recorded_by: string | null;
  withdrawn_at: Date | null;
  withdraw_reason: string | null;
  created_at: Date;
}

/**
 * The consents recorded for `subscriptionIds`, by subscription (withdrawn ones too unless `live`), read through `q`
 * (the caller's transaction, or the pool).
 */
export async function storedConsentsOf(
  q: Pick<EntityManager, 'query'>,
  subscriptionIds: string[],
  opts: { live: boolean },
): Promise<Map<string, StoredConsent[]>> {
  const bySub = new Map<string, StoredConsent[]>();
  if (!subscriptionIds.length) return bySub;
  const rows: {
    id: string;
    subscription_id: string;
    kind: string;
    change_id: string | null;
    amount_after: string;
    obtained_at: Date;
    withdrawn_at: Date | null;
  }[] = await q.query(
    `SELECT id, subscription_id, kind, change_id, amount_after, obtained_at, withdrawn_at FROM consents
     WHERE subscription_id = ANY($1::uuid[])${opts.live ? ' AND withdrawn_at IS NULL' : ''}`,
    [subscriptionIds],
  );
  for (const r of rows) {
    const list = bySub.get(r.subscription_id) ?? [];
    list.push({ id: r.id, kind: r.kind, changeId: r.change_id, amountAfter: Number(r.amount_after), obtainedAt: r.obtained_at, withdrawnAt: r.withdrawn_at });
    bySub.set(r.subscription_id, list);
  }
  return bySub;
}

export interface MigrationRow {
  id: string;
  from_plan_id: string;
  to_plan_id: string;
  effective_at: Date;
  requires_consent: boolean;
  created_by: string | null;
  created_at: Date;
  to_amount: string;
}

/**
 * What the consent actions share: the business time zone, the subscription's row lock, a plan's terms, a migration's
 * row, and the view the API answers with for a consent. The actions beside this file each do one thing through it.
 */
@Injectable()
export class ConsentStore {
  constructor(
    private readonly plans: PlansService,
    @Inject(RUNTIME) private readonly runtime: Runtime,
  ) {}

  get tz(): string {
    return this.runtime.config.businessTimeZone;
  }

  view(r: ConsentRow) {
    const status = consentStatus({ obtainedAt: r.obtained_at, withdrawnAt: r.withdrawn_at }, r.change_at, this.tz);
    return {
      id: r.id,
      subscription_id: r.subscription_id,
      kind: r.kind,
      change_id: r.change_id,
      /** What the consumer agreed to: the date of the change, the price before and after, the payment method. */
      change_at: r.change_at.toISOString(),
      window_opens_at: consentWindowOpens(r.change_at, this.tz).toISOString(),
      plan_id_before: r.plan_id_before,
      plan_id_after: r.plan_id_after,
      price_before: Number(r.amount_before),
      price_after: Number(r.amount_after),
      payment_method: { billing_key_id: r.billing_key_id, card_company: r.card_company, card_no_masked: r.card_no_masked },
      obtained_at: r.obtained_at.toISOString(),
      channel: r.channel,
      evidence: r.evidence,
      recorded_by: r.recorded_by,
      withdrawn_at: r.withdrawn_at?.toISOString() ?? null,
      withdraw_reason: r.withdraw_reason,
      status,
      counts: status === 'valid',
      created_at: r.created_at.toISOString(),
    };
  }

  async migrationRow(m: EntityManager, id: string): Promise<MigrationRow | null> {
    const [row] = (await m.query(`SELECT mg.*, p.amount AS to_amount FROM plan_migrations mg JOIN plans p ON p.id = mg.to_plan_id WHERE mg.id = $1`, [
      id,
    ])) as MigrationRow[];
    return row ?? null;
  }

  async terms(planId: string, m?: EntityManager): Promise<PlanTerms> {
    const t = await this.plans.terms(planId, m);
    if (!t) throw new Error(`plan ${planId} not found`);
    return t;
  }

  async lock(m: EntityManager, id: string): Promise<SubscriptionEntity> {
    const sub = await m.getRepository(SubscriptionEntity).createQueryBuilder('s').setLock('pessimistic_write').where('s.id = :id', { id }).getOne();
    if (!sub) throw new NotFoundError('Subscription', id);
    return sub;
  }
}
