import { Injectable } from '@nestjs/common';
import { EntityManager } from 'typeorm';
import type { Actor } from '../auth/auth.decorators';
import { SubscriptionEntity } from '../ledger/subscription.entity';
import { RenewalDecision } from './consent-rules';
import { PlanMigrationsAction } from './consents/plan-migrations';
import { ReadConsentsQuery } from './consents/read-consents';
import { RecordConsentAction } from './consents/record-consent';
import { RenewalConsentCheck } from './consents/renewal-consent-check';
import { CreatePlanMigrationDto, RecordConsentDto } from './dto/consent.dto';

/**
 * Consents to a paid conversion or a price increase, as records (전자상거래법 제13조 제6항), and plan migrations. Every
 * consent change is audited in the subscription's trail, in a transaction holding the subscription's row lock. The
 * charge run asks {@link decide} at each due renewal; the changes themselves are made by the ledger's transition
 * authority. Each action is in its own file under `consents/`.
 */
@Injectable()
export class ConsentsService {
  constructor(
    private readonly recording: RecordConsentAction,
    private readonly reads: ReadConsentsQuery,
    private readonly migrations: PlanMigrationsAction,
    private readonly renewals: RenewalConsentCheck,
  ) {}

  // ------------------------------------------------------------------ consents

  record(subscriptionId: string, dto: RecordConsentDto, actor: Actor) {
    return this.recording.record(subscriptionId, dto, actor);
  }

  withdraw(subscriptionId: string, consentId: string, reason: string | undefined, actor: Actor) {
    return this.recording.withdraw(subscriptionId, consentId, reason, actor);
  }

  /** Oldest recorded first, keyset-paged on (created_at, id) like every list. */
  list(subscriptionId: string, page: { limit?: number; cursor?: string } = {}) {
    return this.reads.list(subscriptionId, page);
  }

  // ------------------------------------------------------------------ plan migrations

  createMigration(fromPlanId: string, dto: CreatePlanMigrationDto, actor: Actor) {
    return this.migrations.createMigration(fromPlanId, dto, actor);
  }

  /** A migration and its progress: how many switched, ended, wait for their renewal, or wait for consent. */
  getMigration(planId: string, migrationId: string) {
    return this.migrations.getMigration(planId, migrationId);
  }

  // ------------------------------------------------------------------ the charge run

  /** What the run does at each claimed subscription's renewal or trial end (see RenewalConsentCheck.decide). */
  decide(m: EntityManager, subs: SubscriptionEntity[], planAmount: (planId: string) => number): Promise<Map<string, RenewalDecision>> {
    return this.renewals.decide(m, subs, planAmount);
  }

  /** What became of a subscription at a migration's renewal, for the migration's progress. */
  recordMigrationOutcome(
    m: EntityManager,
    migrationId: string,
    subscriptionId: string,
    outcome: 'switched' | 'canceled' | 'paused',
    consentId: string | null,
  ): Promise<void> {
    return this.renewals.recordMigrationOutcome(m, migrationId, subscriptionId, outcome, consentId);
  }

  // ------------------------------------------------------------------ report

  /** Subscriptions whose paid conversion or price increase comes before `dueBefore`, with their consent status. */
  report(dueBefore: Date) {
    return this.reads.report(dueBefore);
  }
}
