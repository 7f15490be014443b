import { Inject, Injectable } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { DataSource } from 'typeorm';
import type { Actor } from '../../auth/auth.decorators';
import { Clock, isSupportedInstant } from '../../common/clock';
import { isUniqueViolation } from '../../common/db-errors';
import { ConflictError, DomainError, FieldError, InvalidInputError, NotFoundError } from '../../common/errors';
import { Runtime, RUNTIME } from '../../config/runtime';
import { PlansService } from '../../plans/plans.service';
import { CreatePlanMigrationDto } from '../dto/consent.dto';
import { CLOCK_SKEW_MS, ConsentStore } from './consent-store';

const MAX_MIGRATION_AHEAD_MS = 2 * 366 * 24 * 3600_000;

/** Plan migrations: creating one (a move of a plan's subscribers to another plan), and reading one with its progress. */
@Injectable()
export class PlanMigrationsAction {
  constructor(
    @InjectDataSource() private readonly db: DataSource,
    private readonly clock: Clock,
    private readonly plans: PlansService,
    private readonly store: ConsentStore,
    @Inject(RUNTIME) private readonly runtime: Runtime,
  ) {}

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
    const migration = await this.store.migrationRow(this.db.manager, migrationId);
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
}
