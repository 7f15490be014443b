import { MigrationInterface, QueryRunner } from 'typeorm';

/** Nightly reconciliation runs with Bootpay, and the differences they found with the night each was first seen. */
export class Reconciliation1763901000000 implements MigrationInterface {
  name = 'Reconciliation1763901000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      CREATE TABLE reconciliation_runs (
        id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
        trigger varchar(16) NOT NULL CONSTRAINT reconciliation_runs_trigger_check CHECK (trigger IN ('cron', 'manual', 'cli')),
        status varchar(16) NOT NULL CONSTRAINT reconciliation_runs_status_check CHECK (status IN ('running', 'completed', 'failed')),
        scheduled_for timestamptz,
        requested_by varchar(100),
        window_from timestamptz NOT NULL,
        window_to timestamptz NOT NULL,
        payments_checked integer NOT NULL DEFAULT 0,
        reservations_checked integer NOT NULL DEFAULT 0,
        differences jsonb NOT NULL DEFAULT '[]'::jsonb,
        new_differences integer NOT NULL DEFAULT 0,
        persistent_differences integer NOT NULL DEFAULT 0,
        resolved_differences integer NOT NULL DEFAULT 0,
        error varchar(500),
        started_at timestamptz NOT NULL,
        finished_at timestamptz
      )`);
    // A cron tick fired by several instances at once makes one run.
    await q.query(`CREATE UNIQUE INDEX reconciliation_runs_cron_tick_unique ON reconciliation_runs (scheduled_for) WHERE trigger = 'cron'`);
    await q.query(`CREATE INDEX reconciliation_runs_started_idx ON reconciliation_runs (started_at, id)`);
    await q.query(`
      CREATE TABLE reconciliation_differences (
        id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
        key varchar(200) NOT NULL,
        kind varchar(16) NOT NULL,
        object_id uuid NOT NULL,
        receipt_id varchar(64),
        reserve_id varchar(64),
        field varchar(64) NOT NULL,
        local jsonb,
        bootpay jsonb,
        first_seen_at timestamptz NOT NULL,
        first_seen_run_id uuid NOT NULL REFERENCES reconciliation_runs (id),
        last_seen_at timestamptz NOT NULL,
        last_seen_run_id uuid NOT NULL REFERENCES reconciliation_runs (id),
        runs_seen integer NOT NULL DEFAULT 1,
        notified_at timestamptz,
        resolved_at timestamptz
      )`);
    // One open difference per (object, field); a resolved one may come back as a new row.
    await q.query(`CREATE UNIQUE INDEX reconciliation_differences_open_unique ON reconciliation_differences (key) WHERE resolved_at IS NULL`);
    await q.query(`CREATE INDEX reconciliation_differences_first_seen_idx ON reconciliation_differences (first_seen_at)`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP TABLE reconciliation_differences`);
    await q.query(`DROP TABLE reconciliation_runs`);
  }
}
