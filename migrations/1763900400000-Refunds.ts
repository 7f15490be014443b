import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Refunds of payments (Bootpay cancels). A refund is recorded `pending` with its deterministic cancel_id before
 * Bootpay is called, so a re-send after an unknown outcome uses the same cancel_id and Bootpay refuses to cancel twice.
 * At most one refund per payment is in flight (pending or unknown) at a time.
 */
export class Refunds1763900400000 implements MigrationInterface {
  name = 'Refunds1763900400000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      CREATE TABLE refunds (
        id uuid PRIMARY KEY,
        payment_id uuid NOT NULL REFERENCES payments(id),
        subscription_id uuid NOT NULL REFERENCES subscriptions(id),
        amount bigint NOT NULL CONSTRAINT refunds_amount_positive CHECK (amount > 0),
        tax_free_amount bigint NOT NULL CONSTRAINT refunds_tax_free_range CHECK (tax_free_amount >= 0 AND tax_free_amount <= amount),
        vat bigint NOT NULL CONSTRAINT refunds_vat_range CHECK (vat >= 0 AND vat <= amount - tax_free_amount),
        reason varchar(500) NOT NULL,
        status varchar(16) NOT NULL CONSTRAINT refunds_status_check CHECK (status IN ('pending', 'succeeded', 'failed', 'unknown')),
        cancel_id varchar(64) NOT NULL CONSTRAINT refunds_cancel_id_unique UNIQUE,
        failure_code varchar(64),
        failure_pg_code varchar(64),
        failure_message varchar(500),
        requested_by_api_key_id uuid REFERENCES api_keys(id),
        requested_by_name varchar(100) NOT NULL,
        attempts integer NOT NULL DEFAULT 1 CONSTRAINT refunds_attempts_positive CHECK (attempts >= 1),
        last_attempt_at timestamptz NOT NULL,
        locked_until timestamptz,
        created_at timestamptz NOT NULL,
        updated_at timestamptz NOT NULL,
        completed_at timestamptz,
        CONSTRAINT refunds_completed_check CHECK ((status IN ('succeeded', 'failed')) = (completed_at IS NOT NULL)),
        CONSTRAINT refunds_failure_check CHECK (status <> 'failed' OR failure_code IS NOT NULL)
      )`);
    // One refund in flight per payment: the balance check under the payment's lock can then never be outrun.
    await q.query(`CREATE UNIQUE INDEX refunds_one_in_flight ON refunds (payment_id) WHERE status IN ('pending', 'unknown')`);
    await q.query(`CREATE INDEX refunds_payment_idx ON refunds (payment_id, created_at, id)`);
    await q.query(`CREATE INDEX refunds_unresolved_idx ON refunds (created_at, id) WHERE status IN ('pending', 'unknown')`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP TABLE refunds`);
  }
}
