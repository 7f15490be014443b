import { MigrationInterface, QueryRunner } from 'typeorm';

/** Charge runs and their counters. */
export class ChargeRuns1763900200000 implements MigrationInterface {
  name = 'ChargeRuns1763900200000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      CREATE TABLE charge_runs (
        id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
        trigger varchar(16) NOT NULL CONSTRAINT charge_runs_trigger_check CHECK (trigger IN ('cron', 'manual', 'cli')),
        status varchar(16) NOT NULL CONSTRAINT charge_runs_status_check CHECK (status IN ('running', 'completed', 'failed', 'interrupted')),
        scheduled_for timestamptz,
        requested_by varchar(100),
        as_of timestamptz NOT NULL,
        worker varchar(64) NOT NULL,
        due integer NOT NULL DEFAULT 0,
        charged integer NOT NULL DEFAULT 0,
        failed integer NOT NULL DEFAULT 0,
        unknown integer NOT NULL DEFAULT 0,
        skipped integer NOT NULL DEFAULT 0,
        resolved integer NOT NULL DEFAULT 0,
        canceled integer NOT NULL DEFAULT 0,
        resumed integer NOT NULL DEFAULT 0,
        error varchar(500),
        started_at timestamptz NOT NULL,
        finished_at timestamptz,
        heartbeat_at timestamptz NOT NULL DEFAULT clock_timestamp()
      )`);
    // A cron tick fired by several instances at once makes one run.
    await q.query(`CREATE UNIQUE INDEX charge_runs_cron_tick_unique ON charge_runs (scheduled_for) WHERE trigger = 'cron'`);
    await q.query(`CREATE INDEX charge_runs_started_idx ON charge_runs (started_at, id)`);
    await q.query(`CREATE INDEX payments_run_idx ON payments (charge_run_id, subscription_id) WHERE charge_run_id IS NOT NULL`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP INDEX payments_run_idx`);
    await q.query(`DROP TABLE charge_runs`);
  }
}
