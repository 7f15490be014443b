import { MigrationInterface, QueryRunner } from 'typeorm';

/** Plans, subscriptions, their payments and the audit trail. */
export class Subscriptions1763900100000 implements MigrationInterface {
  name = 'Subscriptions1763900100000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      CREATE TABLE plans (
        id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
        name varchar(100) NOT NULL,
        description varchar(1000),
        amount bigint NOT NULL CONSTRAINT plans_amount_positive CHECK (amount > 0 AND amount <= 100000000),
        tax_free_amount bigint NOT NULL CONSTRAINT plans_tax_free_range CHECK (tax_free_amount >= 0 AND tax_free_amount <= amount),
        currency char(3) NOT NULL CONSTRAINT plans_currency_krw CHECK (currency = 'KRW'),
        interval varchar(8) NOT NULL CONSTRAINT plans_interval_check CHECK (interval IN ('day', 'week', 'month', 'year')),
        interval_count integer NOT NULL CONSTRAINT plans_interval_count_range CHECK (interval_count BETWEEN 1 AND 3650),
        trial_days integer NOT NULL CONSTRAINT plans_trial_days_range CHECK (trial_days BETWEEN 0 AND 730),
        charge_mode varchar(16) NOT NULL CONSTRAINT plans_charge_mode_check CHECK (charge_mode IN ('scheduler', 'reservation')),
        active boolean NOT NULL DEFAULT true,
        created_at timestamptz NOT NULL,
        updated_at timestamptz NOT NULL
      )`);
    await q.query(`CREATE INDEX plans_created_at_id_idx ON plans (created_at, id)`);
    await q.query(`
      CREATE TABLE subscriptions (
        id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
        customer_id uuid NOT NULL REFERENCES customers(id),
        plan_id uuid NOT NULL REFERENCES plans(id),
        billing_key_id uuid NOT NULL REFERENCES billing_keys(id),
        status varchar(16) NOT NULL CONSTRAINT subscriptions_status_check
          CHECK (status IN ('incomplete', 'trialing', 'active', 'past_due', 'paused', 'canceled', 'unpaid')),
        anchor_at timestamptz NOT NULL,
        period_index integer NOT NULL,
        current_period_start timestamptz,
        current_period_end timestamptz,
        trial_end timestamptz,
        next_charge_at timestamptz,
        cancel_at_period_end boolean NOT NULL DEFAULT false,
        cancel_reason varchar(500),
        canceled_at timestamptz,
        ended_at timestamptz,
        paused_at timestamptz,
        pause_reason varchar(500),
        resume_at timestamptz,
        pending_plan_id uuid REFERENCES plans(id),
        dunning_attempts integer NOT NULL DEFAULT 0,
        next_retry_at timestamptz,
        past_due_since timestamptz,
        last_failure_code varchar(64),
        last_failure_message varchar(500),
        locked_by varchar(64),
        locked_until timestamptz,
        metadata jsonb NOT NULL DEFAULT '{}'::jsonb,
        event_seq integer NOT NULL DEFAULT 0,
        created_at timestamptz NOT NULL,
        updated_at timestamptz NOT NULL
      )`);
    await q.query(`CREATE INDEX subscriptions_customer_idx ON subscriptions (customer_id, created_at, id)`);
    await q.query(`CREATE INDEX subscriptions_billing_key_idx ON subscriptions (billing_key_id) WHERE status <> 'canceled'`);
    await q.query(`CREATE INDEX subscriptions_status_idx ON subscriptions (status, created_at, id)`);
    await q.query(`CREATE INDEX subscriptions_due_idx ON subscriptions (next_charge_at, id) WHERE next_charge_at IS NOT NULL`);
    await q.query(`CREATE INDEX subscriptions_resume_idx ON subscriptions (resume_at) WHERE status = 'paused' AND resume_at IS NOT NULL`);
    await q.query(`
      CREATE TABLE payments (
        id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
        subscription_id uuid NOT NULL REFERENCES subscriptions(id),
        customer_id uuid NOT NULL REFERENCES customers(id),
        billing_key_id uuid NOT NULL REFERENCES billing_keys(id),
        kind varchar(16) NOT NULL CONSTRAINT payments_kind_check CHECK (kind IN ('period', 'proration')),
        order_id varchar(64) NOT NULL CONSTRAINT payments_order_id_unique UNIQUE,
        order_name varchar(100) NOT NULL,
        receipt_id varchar(64) CONSTRAINT payments_receipt_id_unique UNIQUE,
        reserve_id varchar(64) CONSTRAINT payments_reserve_id_unique UNIQUE,
        amount bigint NOT NULL CONSTRAINT payments_amount_positive CHECK (amount > 0),
        tax_free_amount bigint NOT NULL CONSTRAINT payments_tax_free_range CHECK (tax_free_amount >= 0 AND tax_free_amount <= amount),
        vat bigint NOT NULL,
        balance_amount bigint NOT NULL CONSTRAINT payments_balance_range CHECK (balance_amount >= 0 AND balance_amount <= amount),
        refunded_tax_free bigint NOT NULL DEFAULT 0,
        status varchar(24) NOT NULL CONSTRAINT payments_status_check
          CHECK (status IN ('READY', 'IN_PROGRESS', 'UNKNOWN', 'DONE', 'ABORTED', 'CANCELED', 'PARTIAL_CANCELED')),
        attempt integer NOT NULL CONSTRAINT payments_attempt_positive CHECK (attempt >= 1),
        period_index integer NOT NULL,
        period_start timestamptz NOT NULL,
        period_end timestamptz NOT NULL,
        plan_id uuid NOT NULL REFERENCES plans(id),
        failure_code varchar(64),
        failure_pg_code varchar(64),
        failure_message varchar(500),
        failure_hard boolean,
        charge_run_id uuid,
        requested_at timestamptz NOT NULL,
        approved_at timestamptz,
        canceled_at timestamptz,
        card_company varchar(64),
        card_no_masked varchar(32),
        receipt_url varchar(500),
        created_at timestamptz NOT NULL,
        updated_at timestamptz NOT NULL
      )`);
    // At most one live (not failed) attempt per subscription at a time, and at most one success per period.
    await q.query(`CREATE UNIQUE INDEX payments_one_open_attempt ON payments (subscription_id) WHERE status IN ('READY', 'IN_PROGRESS', 'UNKNOWN')`);
    await q.query(`CREATE UNIQUE INDEX payments_one_success_per_period ON payments (subscription_id, period_start)
      WHERE kind = 'period' AND status IN ('READY', 'IN_PROGRESS', 'UNKNOWN', 'DONE', 'CANCELED', 'PARTIAL_CANCELED')`);
    await q.query(`CREATE UNIQUE INDEX payments_attempt_unique ON payments (subscription_id, kind, period_start, attempt)`);
    await q.query(`CREATE INDEX payments_subscription_idx ON payments (subscription_id, created_at, id)`);
    await q.query(`CREATE INDEX payments_status_idx ON payments (status, created_at, id)`);
    await q.query(`
      CREATE TABLE subscription_events (
        id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
        seq bigint GENERATED ALWAYS AS IDENTITY CONSTRAINT subscription_events_seq_unique UNIQUE,
        subscription_id uuid NOT NULL REFERENCES subscriptions(id),
        type varchar(64) NOT NULL,
        actor_type varchar(16) NOT NULL CONSTRAINT subscription_events_actor_type_check CHECK (actor_type IN ('api_key', 'system')),
        actor_id varchar(64),
        actor_name varchar(100),
        reason varchar(500),
        before jsonb,
        after jsonb,
        data jsonb,
        created_at timestamptz NOT NULL
      )`);
    await q.query(`CREATE INDEX subscription_events_subscription_idx ON subscription_events (subscription_id, seq)`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP TABLE subscription_events`);
    await q.query(`DROP TABLE payments`);
    await q.query(`DROP TABLE subscriptions`);
    await q.query(`DROP TABLE plans`);
  }
}
