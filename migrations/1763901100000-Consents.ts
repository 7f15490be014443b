import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Consent before a paid conversion or a price increase (전자상거래법 제13조 제6항): consents as records, plan
 * migrations and what became of each subscription, the notices sent (one row each, so a notice is sent once), the
 * notice task's ticks (claimed once across instances), and the consent each charge relied on.
 */
export class Consents1763901100000 implements MigrationInterface {
  name = 'Consents1763901100000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      CREATE TABLE plan_migrations (
        id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
        from_plan_id uuid NOT NULL REFERENCES plans (id),
        to_plan_id uuid NOT NULL REFERENCES plans (id),
        effective_at timestamptz NOT NULL,
        requires_consent boolean NOT NULL,
        created_by varchar(100),
        created_at timestamptz NOT NULL,
        CONSTRAINT plan_migrations_other_plan_check CHECK (from_plan_id <> to_plan_id)
      )`);
    // A plan's subscriptions move to one other plan: one migration per plan.
    await q.query(`CREATE UNIQUE INDEX plan_migrations_from_plan_unique ON plan_migrations (from_plan_id)`);
    await q.query(`
      CREATE TABLE consents (
        id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
        subscription_id uuid NOT NULL REFERENCES subscriptions (id),
        kind varchar(32) NOT NULL CONSTRAINT consents_kind_check CHECK (kind IN ('trial_conversion', 'price_increase')),
        change_id uuid REFERENCES plan_migrations (id),
        change_at timestamptz NOT NULL,
        plan_id_before uuid,
        plan_id_after uuid NOT NULL,
        amount_before bigint NOT NULL,
        amount_after bigint NOT NULL,
        billing_key_id uuid NOT NULL,
        card_company varchar(64),
        card_no_masked varchar(32),
        obtained_at timestamptz NOT NULL,
        channel varchar(32) NOT NULL,
        evidence varchar(500) NOT NULL,
        recorded_by varchar(100),
        withdrawn_at timestamptz,
        withdraw_reason varchar(500),
        created_at timestamptz NOT NULL,
        CONSTRAINT consents_change_check CHECK ((kind = 'price_increase') = (change_id IS NOT NULL))
      )`);
    await q.query(`CREATE INDEX consents_subscription_idx ON consents (subscription_id, kind, obtained_at)`);
    await q.query(`
      CREATE TABLE plan_migration_outcomes (
        migration_id uuid NOT NULL REFERENCES plan_migrations (id),
        subscription_id uuid NOT NULL REFERENCES subscriptions (id),
        outcome varchar(16) NOT NULL CONSTRAINT plan_migration_outcomes_outcome_check CHECK (outcome IN ('switched', 'canceled', 'paused')),
        consent_id uuid REFERENCES consents (id),
        at timestamptz NOT NULL,
        PRIMARY KEY (migration_id, subscription_id)
      )`);
    await q.query(`
      CREATE TABLE consent_notices (
        id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
        subscription_id uuid NOT NULL REFERENCES subscriptions (id),
        kind varchar(32) NOT NULL CONSTRAINT consent_notices_kind_check CHECK (kind IN ('consent_required', 'renewal_upcoming')),
        change_key varchar(100) NOT NULL,
        change_at timestamptz NOT NULL,
        created_at timestamptz NOT NULL
      )`);
    // One notice per subscription, kind and change, whatever instance or restart sends it.
    await q.query(`CREATE UNIQUE INDEX consent_notices_once_unique ON consent_notices (subscription_id, kind, change_key)`);
    await q.query(`CREATE TABLE consent_notice_ticks (scheduled_for timestamptz PRIMARY KEY, worker varchar(100), started_at timestamptz NOT NULL)`);
    await q.query(`ALTER TABLE payments ADD COLUMN consent_id uuid REFERENCES consents (id)`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE payments DROP COLUMN consent_id`);
    await q.query(`DROP TABLE consent_notice_ticks`);
    await q.query(`DROP TABLE consent_notices`);
    await q.query(`DROP TABLE plan_migration_outcomes`);
    await q.query(`DROP TABLE consents`);
    await q.query(`DROP TABLE plan_migrations`);
  }
}
