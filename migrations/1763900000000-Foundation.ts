import { MigrationInterface, QueryRunner } from 'typeorm';

/** API keys, customers, billing keys and stored idempotent responses. */
export class Foundation1763900000000 implements MigrationInterface {
  name = 'Foundation1763900000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`CREATE EXTENSION IF NOT EXISTS pgcrypto`);
    await q.query(`
      CREATE TABLE api_keys (
        id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
        name varchar(100) NOT NULL,
        role varchar(16) NOT NULL CONSTRAINT api_keys_role_check CHECK (role IN ('service', 'admin')),
        key_hash char(64) NOT NULL CONSTRAINT api_keys_key_hash_unique UNIQUE,
        key_prefix varchar(16) NOT NULL,
        created_at timestamptz NOT NULL,
        revoked_at timestamptz
      )`);
    await q.query(`
      CREATE TABLE customers (
        id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
        external_id varchar(128) NOT NULL CONSTRAINT customers_external_id_unique UNIQUE,
        name varchar(100) NOT NULL,
        email varchar(320),
        phone varchar(20),
        metadata jsonb NOT NULL DEFAULT '{}'::jsonb,
        created_at timestamptz NOT NULL,
        updated_at timestamptz NOT NULL
      )`);
    await q.query(`CREATE INDEX customers_created_at_id_idx ON customers (created_at, id)`);
    await q.query(`
      CREATE TABLE billing_keys (
        id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
        customer_id uuid NOT NULL REFERENCES customers(id),
        billing_key_ciphertext text,
        billing_key_fingerprint char(64) CONSTRAINT billing_keys_fingerprint_unique UNIQUE,
        bootpay_receipt_id varchar(64) NOT NULL CONSTRAINT billing_keys_bootpay_receipt_id_unique UNIQUE,
        pg varchar(64),
        method varchar(64),
        card_company varchar(64),
        card_company_code varchar(16),
        card_no_masked varchar(32),
        card_type varchar(16),
        status varchar(16) NOT NULL CONSTRAINT billing_keys_status_check CHECK (status IN ('active', 'deleting', 'deleted')),
        issued_at timestamptz,
        expires_at timestamptz,
        deleted_at timestamptz,
        created_at timestamptz NOT NULL,
        updated_at timestamptz NOT NULL,
        CONSTRAINT billing_keys_secret_present CHECK (status = 'deleted' OR billing_key_ciphertext IS NOT NULL)
      )`);
    await q.query(`CREATE INDEX billing_keys_customer_id_idx ON billing_keys (customer_id, created_at, id)`);
    await q.query(`
      CREATE TABLE idempotency_keys (
        id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
        api_key_id uuid NOT NULL REFERENCES api_keys(id),
        idempotency_key varchar(255) NOT NULL,
        method varchar(8) NOT NULL,
        path varchar(512) NOT NULL,
        request_hash char(64) NOT NULL,
        state varchar(16) NOT NULL CONSTRAINT idempotency_keys_state_check CHECK (state IN ('in_progress', 'completed')),
        response_status integer,
        response_body jsonb,
        created_at timestamptz NOT NULL,
        completed_at timestamptz,
        CONSTRAINT idempotency_keys_owner_key_unique UNIQUE (api_key_id, idempotency_key)
      )`);
    await q.query(`CREATE INDEX idempotency_keys_created_at_idx ON idempotency_keys (created_at)`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP TABLE idempotency_keys`);
    await q.query(`DROP TABLE billing_keys`);
    await q.query(`DROP TABLE customers`);
    await q.query(`DROP TABLE api_keys`);
  }
}
