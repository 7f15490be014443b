import { CONSENT_PAUSE_REASON } from '../ledger/transitions';
import { Inject, Injectable } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { DataSource, EntityManager } from 'typeorm';
import type { Actor } from '../auth/auth.decorators';
import { Clock, isSupportedInstant } from '../common/clock';
import { isUniqueViolation, returnedRows } from '../common/db-errors';
import { ConflictError, DomainError, FieldError, InvalidInputError, NotFoundError } from '../common/errors';
import { decodeCursor, encodeCursor } from '../common/pagination';
import { Runtime, RUNTIME } from '../config/runtime';
import { SubscriptionEventsService } from '../ledger/subscription-events.service';
import { SubscriptionEntity } from '../ledger/subscription.entity';
import { PlansService, PlanTerms } from '../plans/plans.service';
import {
  consentStatus,
  consentWindowOpens,
  decideRenewal,
  migrationChangeAt,
  MigrationFacts,
  RenewalDecision,
  StoredConsent,
  validConsent,
} from './consent-rules';
import { CreatePlanMigrationDto, RecordConsentDto } from './dto/consent.dto';

const CLOCK_SKEW_MS = 60_000;
const MAX_MIGRATION_AHEAD_MS = 2 * 366 * 24 * 3600_000;

interface ConsentRow {
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

interface MigrationRow {
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
 * Consents to a paid conversion or a price increase, as records (전자상거래법 제13조 제6항), and plan migrations. Every
 * consent change is audited in the subscription's trail, in a transaction holding the subscription's row lock. The
 * charge run asks {@link decide} at each due renewal; the changes themselves are made by the ledger's transition
 * authority.
 */
@Injectable()
export class ConsentsService {
  constructor(
    @InjectDataSource() private readonly db: DataSource,
    private readonly clock: Clock,
    private readonly events: SubscriptionEventsService,
    private readonly plans: PlansService,
    @Inject(RUNTIME) private readonly runtime: Runtime,
  ) {}

  private get tz(): string {
    return this.runtime.config.businessTimeZone;
  }

  // ------------------------------------------------------------------ consents

  async record(subscriptionId: string, dto: RecordConsentDto, actor: Actor) {
    const now = this.clock.now();
    const obtainedAt = new Date(dto.obtained_at);
    const errors: FieldError[] = [];
    if (!isSupportedInstant(obtainedAt)) errors.push({ field: 'obtained_at', message: 'obtained_at must be a valid date-time from 1970 on' });
    else if (obtainedAt.getTime() > now.getTime() + CLOCK_SKEW_MS) errors.push({ field: 'obtained_at', message: 'obtained_at must not be in the future' });
    if (dto.kind === 'price_increase' && !dto.change_id)
      errors.push({ field: 'change_id', message: 'change_id (the plan migration) is required for a price_increase consent' });
    if (dto.kind === 'trial_conversion' && dto.change_id !== undefined)
      errors.push({ field: 'change_id', message: 'change_id goes with a price_increase consent only' });
    if (errors.length) throw new InvalidInputError(errors, errors[0].message);

    return this.db.transaction(async (m) => {
      const sub = await this.lock(m, subscriptionId);
      let change: { changeAt: Date; planBefore: string | null; planAfter: string; amountBefore: number; amountAfter: number };
      if (dto.kind === 'trial_conversion') {
        // A trial, or a subscription paused at its trial's end for want of this consent (its conversion is the resume).
        const pausedForConsent = sub.status === 'paused' && sub.pauseReason === CONSENT_PAUSE_REASON;
        if (!pausedForConsent && (sub.status !== 'trialing' || !sub.nextChargeAt)) {
          throw new ConflictError('no_paid_conversion', `A ${sub.status} subscription has no paid conversion to consent to; allowed from: trialing`, {
            current_status: sub.status,
          });
        }
        const plan = await this.terms(sub.planId, m);
        const changeAt = pausedForConsent ? this.clock.now() : sub.nextChargeAt!;
        change = { changeAt, planBefore: sub.planId, planAfter: sub.planId, amountBefore: 0, amountAfter: plan.amount };
      } else {
        const migration = await this.migrationRow(m, dto.change_id!);
        if (!migration || migration.from_plan_id !== sub.planId) {
          const message = !migration ? 'no plan migration has this id' : 'the subscription is not on the plan this migration moves';
          throw new DomainError('unprocessable', 'invalid_reference', `change_id: ${message}`, [{ field: 'change_id', message }]);
        }
        if (sub.status === 'canceled')
          throw new ConflictError('no_price_increase', 'A canceled subscription has no price increase to consent to', { current_status: sub.status });
        const from = await this.terms(sub.planId, m);
        const changeAt = migrationChangeAt(sub, from, migration.effective_at, this.tz);
        change = { changeAt, planBefore: sub.planId, planAfter: migration.to_plan_id, amountBefore: from.amount, amountAfter: Number(migration.to_amount) };
      }
      const [key] = await m.query(`SELECT card_company, card_no_masked FROM billing_keys WHERE id = $1`, [sub.billingKeyId]);
      const [row] = (await m.query(
        `INSERT INTO consents (subscription_id, kind, change_id, change_at, plan_id_before, plan_id_after, amount_before, amount_after, billing_key_id,
           card_company, card_no_masked, obtained_at, channel, evidence, recorded_by, created_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16) RETURNING *`,
        [
          sub.id,
          dto.kind,
          dto.change_id ?? null,
          change.changeAt,
          change.planBefore,
          change.planAfter,
          change.amountBefore,
          change.amountAfter,
          sub.billingKeyId,
          key?.card_company ?? null,
          key?.card_no_masked ?? null,
          obtainedAt,
          dto.channel,
          dto.evidence,
          actor.name.slice(0, 100),
          now,
        ],
      )) as ConsentRow[];
      const view = this.view(row);
      await this.events.record(m, sub, 'subscription.consent_recorded', actor, {
        data: {
          consent_id: row.id,
          kind: row.kind,
          change_id: row.change_id,
          change_at: view.change_at,
          obtained_at: view.obtained_at,
          price_before: view.price_before,
          price_after: view.price_after,
          status: view.status,
        },
      });
      return view;
    });
  }

  async withdraw(subscriptionId: string, consentId: string, reason: string | undefined, actor: Actor) {
    return this.db.transaction(async (m) => {
      const sub = await this.lock(m, subscriptionId);
      const [row] = (await m.query(`SELECT * FROM consents WHERE id = $1 AND subscription_id = $2 FOR UPDATE`, [consentId, sub.id])) as ConsentRow[];
      if (!row) throw new NotFoundError('Consent', consentId);
      if (row.withdrawn_at) throw new ConflictError('consent_already_withdrawn', `Consent ${consentId} was already withdrawn`);
      const now = this.clock.now();
      const [after] = returnedRows<ConsentRow>(
        await m.query(`UPDATE consents SET withdrawn_at = $2, withdraw_reason = $3 WHERE id = $1 RETURNING *`, [row.id, now, reason?.slice(0, 500) ?? null]),
      );
      await this.events.record(m, sub, 'subscription.consent_withdrawn', actor, {
        reason: reason ?? null,
        data: { consent_id: row.id, kind: row.kind, change_id: row.change_id },
      });
      return this.view(after);
    });
  }

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
    return { data: data.map((r) => this.view(r)), has_more: hasMore, next_cursor: hasMore && last ? encodeCursor(new Date(last.created_at), last.id) : null };
  }

  private view(r: ConsentRow) {
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

  // ------------------------------------------------------------------ plan migrations

  async createMigration(fromPlanId: string, dto: CreatePlanMigrationDto, actor: Actor) {
    const now = this.clock.now();
    const effectiveAt = new Date(dto.effective_at);
    const errors: FieldError[] = [];
    if (!isSupportedInstant(effectiveAt)) errors.push({ field: 'effective_at', message: 'effective_at must be a valid date-time from 1970 on' });
    else if (effectiveAt.getTime() < now.getTime() - CLOCK_SKEW_MS) errors.push({ field: 'effective_at', message: 'effective_at must not be in the past' });
    else if (effectiveAt.getTime() > now.getTime() + MAX_MIGRATION_AHEAD_MS)
      errors.push({ field: 'effective_at', message: 'effective_at must be within two years' });
    if (dto.to_plan_id === fromPlanId) errors.push({ field: 'to_plan_id', message: 'to_plan_id must be another plan' });
    if (errors.length) throw new InvalidInputError(errors, errors[0].message);
    const from = await this.plans.terms(fromPlanId);
    if (!from) throw new NotFoundError('Plan', fromPlanId);
    const [to] = await this.db.query(`SELECT id, amount, active FROM plans WHERE id = $1`, [dto.to_plan_id]);
    if (!to || !to.active) {
      const message = !to ? 'no plan has this id' : 'the plan is not active';
      throw new DomainError('unprocessable', 'invalid_reference', `to_plan_id: ${message}`, [{ field: 'to_plan_id', message }]);
    }
    try {
      const [row] = await this.db.query(
        `INSERT INTO plan_migrations (from_plan_id, to_plan_id, effective_at, requires_consent, created_by, created_at) VALUES ($1, $2, $3, $4, $5, $6) RETURNING id`,
        [fromPlanId, dto.to_plan_id, effectiveAt, Number(to.amount) > from.amount, actor.name.slice(0, 100), now],
      );
      return this.getMigration(fromPlanId, row.id);
    } catch (err) {
      if (isUniqueViolation(err)) throw new ConflictError('migration_exists', `Plan ${fromPlanId} already has a migration`);
      throw err;
    }
  }

  /** A migration and its progress: how many switched, ended, wait for their renewal, or wait for consent. */
  async getMigration(planId: string, migrationId: string) {
    const migration = await this.migrationRow(this.db.manager, migrationId);
    if (!migration || migration.from_plan_id !== planId) throw new NotFoundError('Plan migration', migrationId);
    const [counts] = await this.db.query(
      `WITH live AS (
         SELECT s.id, EXISTS (SELECT 1 FROM consents c WHERE c.subscription_id = s.id AND c.change_id = $1 AND c.withdrawn_at IS NULL) AS consented
         FROM subscriptions s
         WHERE s.plan_id = $2 AND s.status <> 'canceled'
           AND NOT EXISTS (SELECT 1 FROM plan_migration_outcomes o WHERE o.migration_id = $1 AND o.subscription_id = s.id)
       )
       SELECT (SELECT count(*)::int FROM plan_migration_outcomes WHERE migration_id = $1 AND outcome = 'switched') AS switched,
              (SELECT count(*)::int FROM plan_migration_outcomes WHERE migration_id = $1 AND outcome = 'canceled') AS ended,
              (SELECT count(*)::int FROM plan_migration_outcomes WHERE migration_id = $1 AND outcome = 'paused') AS paused,
              (SELECT count(*)::int FROM live WHERE consented) AS consented,
              (SELECT count(*)::int FROM live WHERE NOT consented) AS not_consented`,
      [migration.id, migration.from_plan_id],
    );
    const needsConsent = migration.requires_consent && this.runtime.config.consent.required;
    return {
      id: migration.id,
      from_plan_id: migration.from_plan_id,
      to_plan_id: migration.to_plan_id,
      effective_at: migration.effective_at.toISOString(),
      requires_consent: migration.requires_consent,
      created_by: migration.created_by,
      created_at: migration.created_at.toISOString(),
      progress: {
        switched: counts.switched,
        ended: counts.ended,
        paused: counts.paused,
        /** Still on the old plan, with a consent recorded (it is checked against the window at the renewal). */
        consented_waiting_for_renewal: needsConsent ? counts.consented : 0,
        waiting_for_consent: needsConsent ? counts.not_consented : 0,
        /** Still on the old plan where no consent is needed: they switch at their renewal. */
        waiting_for_renewal: needsConsent ? 0 : counts.consented + counts.not_consented,
      },
    };
  }

  private async migrationRow(m: EntityManager, id: string): Promise<MigrationRow | null> {
    const [row] = (await m.query(`SELECT mg.*, p.amount AS to_amount FROM plan_migrations mg JOIN plans p ON p.id = mg.to_plan_id WHERE mg.id = $1`, [
      id,
    ])) as MigrationRow[];
    return row ?? null;
  }

  // ------------------------------------------------------------------ the charge run

  /**
   * What the run does at each claimed subscription's renewal or trial end (see decideRenewal), in two queries for the
   * batch: the migrations of their plans, and their consents. `planAmounts` holds each subscription's current plan.
   */
  async decide(m: EntityManager, subs: SubscriptionEntity[], planAmount: (planId: string) => number): Promise<Map<string, RenewalDecision>> {
    const out = new Map<string, RenewalDecision>();
    const relevant = subs.filter((s) => s.status === 'trialing' || s.status === 'active');
    if (!relevant.length) return out;
    const migrations = new Map<string, MigrationFacts>();
    const planIds = [...new Set(relevant.filter((s) => s.status === 'active').map((s) => s.planId))];
    if (planIds.length) {
      const rows = (await m.query(
        `SELECT mg.*, p.amount AS to_amount FROM plan_migrations mg JOIN plans p ON p.id = mg.to_plan_id WHERE mg.from_plan_id = ANY($1::uuid[])`,
        [planIds],
      )) as MigrationRow[];
      for (const r of rows) {
        migrations.set(r.from_plan_id, {
          id: r.id,
          fromPlanId: r.from_plan_id,
          toPlanId: r.to_plan_id,
          toAmount: Number(r.to_amount),
          effectiveAt: r.effective_at,
          requiresConsent: r.requires_consent,
        });
      }
    }
    const settings = { required: this.runtime.config.consent.required, tz: this.tz };
    const needConsents = relevant.filter((s) => s.status === 'trialing' || migrations.has(s.planId)).map((s) => s.id);
    const consents = new Map<string, StoredConsent[]>();
    if (settings.required && needConsents.length) {
      const rows: {
        id: string;
        subscription_id: string;
        kind: string;
        change_id: string | null;
        amount_after: string;
        obtained_at: Date;
        withdrawn_at: Date | null;
      }[] = await m.query(
        `SELECT id, subscription_id, kind, change_id, amount_after, obtained_at, withdrawn_at FROM consents
         WHERE subscription_id = ANY($1::uuid[]) AND withdrawn_at IS NULL`,
        [needConsents],
      );
      for (const r of rows) {
        const list = consents.get(r.subscription_id) ?? [];
        list.push({
          id: r.id,
          kind: r.kind,
          changeId: r.change_id,
          amountAfter: Number(r.amount_after),
          obtainedAt: r.obtained_at,
          withdrawnAt: r.withdrawn_at,
        });
        consents.set(r.subscription_id, list);
      }
    }
    for (const s of relevant) {
      out.set(s.id, decideRenewal(s, planAmount(s.planId), migrations.get(s.planId) ?? null, consents.get(s.id) ?? [], settings));
    }
    return out;
  }

  /** What became of a subscription at a migration's renewal, for the migration's progress. */
  async recordMigrationOutcome(
    m: EntityManager,
    migrationId: string,
    subscriptionId: string,
    outcome: 'switched' | 'canceled' | 'paused',
    consentId: string | null,
  ): Promise<void> {
    await m.query(
      `INSERT INTO plan_migration_outcomes (migration_id, subscription_id, outcome, consent_id, at) VALUES ($1, $2, $3, $4, $5)
       ON CONFLICT (migration_id, subscription_id) DO UPDATE SET outcome = EXCLUDED.outcome, consent_id = EXCLUDED.consent_id, at = EXCLUDED.at`,
      [migrationId, subscriptionId, outcome, consentId, this.clock.now()],
    );
  }

  // ------------------------------------------------------------------ report

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
      const from = await this.terms(mg.from_plan_id);
      const subs = await this.db
        .getRepository(SubscriptionEntity)
        .createQueryBuilder('s')
        .where(`s.plan_id = :plan AND s.status IN ('trialing', 'active', 'past_due')`, { plan: mg.from_plan_id })
        .andWhere('NOT EXISTS (SELECT 1 FROM plan_migration_outcomes o WHERE o.migration_id = :mid AND o.subscription_id = s.id)', { mid: mg.id })
        .orderBy('s.next_charge_at', 'ASC')
        .limit(1000)
        .getMany();
      for (const sub of subs) {
        const changeAt = migrationChangeAt(sub, from, mg.effective_at, this.tz);
        if (changeAt.getTime() < dueBefore.getTime()) migrated.push({ sub, migration: mg, from, changeAt });
      }
    }
    const ids = [...trials.map((t) => t.id), ...migrated.map((x) => x.sub.id)];
    const consentRows: {
      id: string;
      subscription_id: string;
      kind: string;
      change_id: string | null;
      amount_after: string;
      obtained_at: Date;
      withdrawn_at: Date | null;
    }[] = ids.length
      ? await this.db.query(
          `SELECT id, subscription_id, kind, change_id, amount_after, obtained_at, withdrawn_at FROM consents WHERE subscription_id = ANY($1::uuid[])`,
          [ids],
        )
      : [];
    const bySub = new Map<string, StoredConsent[]>();
    for (const r of consentRows) {
      const list = bySub.get(r.subscription_id) ?? [];
      list.push({ id: r.id, kind: r.kind, changeId: r.change_id, amountAfter: Number(r.amount_after), obtainedAt: r.obtained_at, withdrawnAt: r.withdrawn_at });
      bySub.set(r.subscription_id, list);
    }
    const status = (needed: boolean, c: StoredConsent | null) => (!needed ? 'not_required' : c ? 'valid' : 'missing');
    const rows = [
      ...trials.map((t) => {
        const c = validConsent(bySub.get(t.id) ?? [], { kind: 'trial_conversion', changeAt: t.next_charge_at, amountAfter: Number(t.amount) }, this.tz);
        return {
          subscription_id: t.id,
          customer_id: t.customer_id,
          kind: 'trial_conversion' as const,
          change_id: null as string | null,
          change_at: t.next_charge_at.toISOString(),
          window_opens_at: consentWindowOpens(t.next_charge_at, this.tz).toISOString(),
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
          this.tz,
        );
        return {
          subscription_id: sub.id,
          customer_id: sub.customerId,
          kind: 'price_increase' as const,
          change_id: migration.id as string | null,
          change_at: changeAt.toISOString(),
          window_opens_at: consentWindowOpens(changeAt, this.tz).toISOString(),
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

  // ------------------------------------------------------------------ helpers

  private async terms(planId: string, m?: EntityManager): Promise<PlanTerms> {
    const t = await this.plans.terms(planId, m);
    if (!t) throw new Error(`plan ${planId} not found`);
    return t;
  }

  private async lock(m: EntityManager, id: string): Promise<SubscriptionEntity> {
    const sub = await m.getRepository(SubscriptionEntity).createQueryBuilder('s').setLock('pessimistic_write').where('s.id = :id', { id }).getOne();
    if (!sub) throw new NotFoundError('Subscription', id);
    return sub;
  }
}
