import { Inject, Injectable } from '@nestjs/common';
import { EntityManager } from 'typeorm';
import { Clock } from '../../common/clock';
import { Runtime, RUNTIME } from '../../config/runtime';
import { SubscriptionEntity } from '../../ledger/subscription.entity';
import { decideRenewal, MigrationFacts, RenewalDecision, StoredConsent } from '../consent-rules';
import { ConsentStore, MigrationRow, storedConsentsOf } from './consent-store';

/**
 * The charge run's questions: whether a due renewal or trial end may be charged as it is, switched, or not charged
 * for want of a consent (전자상거래법 제13조 제6항, see decideRenewal), and what became of a subscription at a migration.
 */
@Injectable()
export class RenewalConsentCheck {
  constructor(
    private readonly clock: Clock,
    private readonly store: ConsentStore,
    @Inject(RUNTIME) private readonly runtime: Runtime,
  ) {}

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
    const settings = { required: this.runtime.config.consent.required, tz: this.store.tz };
    const needConsents = relevant.filter((s) => s.status === 'trialing' || migrations.has(s.planId)).map((s) => s.id);
    const consents = settings.required ? await storedConsentsOf(m, needConsents, { live: true }) : new Map<string, StoredConsent[]>();
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
}
