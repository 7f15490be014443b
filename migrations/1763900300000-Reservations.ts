import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Reservation mode: a payment in READY is registered at Bootpay as a reservation (reserve_id, reserve_execute_at)
 * and waits to execute. A subscription may hold several (one per coming period), so READY leaves the
 * one-open-attempt index; one success per period still covers it.
 */
export class Reservations1763900300000 implements MigrationInterface {
  name = 'Reservations1763900300000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE payments ADD COLUMN reserve_execute_at timestamptz`);
    await q.query(`DROP INDEX payments_one_open_attempt`);
    await q.query(`CREATE UNIQUE INDEX payments_one_open_attempt ON payments (subscription_id) WHERE status IN ('IN_PROGRESS', 'UNKNOWN')`);
    await q.query(`CREATE INDEX payments_reserved_by_key_idx ON payments (billing_key_id) WHERE status = 'READY'`);
    await q.query(`CREATE INDEX payments_reserved_due_idx ON payments (reserve_execute_at) WHERE status = 'READY'`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP INDEX payments_reserved_due_idx`);
    await q.query(`DROP INDEX payments_reserved_by_key_idx`);
    await q.query(`DROP INDEX payments_one_open_attempt`);
    await q.query(`CREATE UNIQUE INDEX payments_one_open_attempt ON payments (subscription_id) WHERE status IN ('READY', 'IN_PROGRESS', 'UNKNOWN')`);
    await q.query(`ALTER TABLE payments DROP COLUMN reserve_execute_at`);
  }
}
