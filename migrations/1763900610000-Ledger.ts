import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * The ledger's own records: items for finance (money that moved and was not applied: a late or stale approval, a
 * receipt that does not match its payment), and the fingerprint of the billing-key encryption key, so that a start
 * with another key is refused instead of turning every stored key into a decline.
 */
export class Ledger1763900610000 implements MigrationInterface {
  name = 'Ledger1763900610000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      CREATE TABLE finance_flags (
        id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
        kind varchar(64) NOT NULL,
        subscription_id uuid REFERENCES subscriptions(id),
        payment_id uuid REFERENCES payments(id),
        message varchar(500) NOT NULL,
        data jsonb,
        created_at timestamptz NOT NULL,
        resolved_at timestamptz,
        resolved_by varchar(100),
        resolution varchar(500)
      )`);
    await q.query(`CREATE INDEX finance_flags_open_idx ON finance_flags (created_at, id) WHERE resolved_at IS NULL`);
    await q.query(`CREATE INDEX finance_flags_subscription_idx ON finance_flags (subscription_id)`);
    await q.query(`CREATE UNIQUE INDEX finance_flags_once ON finance_flags (kind, payment_id) WHERE payment_id IS NOT NULL`);
    await q.query(`
      CREATE TABLE service_settings (
        key varchar(64) PRIMARY KEY,
        value text NOT NULL,
        updated_at timestamptz NOT NULL DEFAULT now()
      )`);
    await q.query(`ALTER TABLE charge_runs ADD COLUMN local_faults integer NOT NULL DEFAULT 0, ADD COLUMN task_failures integer NOT NULL DEFAULT 0`);
    // An approval the subscription refused is recorded (money moved) but is not its period's payment: it is refunded,
    // and the period may still be charged.
    await q.query(`ALTER TABLE payments ADD COLUMN not_applied varchar(64)`);
    await q.query(`DROP INDEX payments_one_success_per_period`);
    await q.query(`CREATE UNIQUE INDEX payments_one_success_per_period ON payments (subscription_id, period_start)
      WHERE kind = 'period' AND status IN ('READY', 'IN_PROGRESS', 'UNKNOWN', 'DONE', 'CANCELED', 'PARTIAL_CANCELED') AND not_applied IS NULL`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP INDEX payments_one_success_per_period`);
    await q.query(`CREATE UNIQUE INDEX payments_one_success_per_period ON payments (subscription_id, period_start)
      WHERE kind = 'period' AND status IN ('READY', 'IN_PROGRESS', 'UNKNOWN', 'DONE', 'CANCELED', 'PARTIAL_CANCELED')`);
    await q.query(`ALTER TABLE payments DROP COLUMN not_applied`);
    await q.query(`ALTER TABLE charge_runs DROP COLUMN local_faults, DROP COLUMN task_failures`);
    await q.query(`DROP TABLE service_settings`);
    await q.query(`DROP TABLE finance_flags`);
  }
}
