import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Named operators of the finance console and their sessions. Passwords are scrypt hashes (salt and parameters kept in
 * the hash string); a session row is keyed by the SHA-256 of the random token held in the browser's cookie, so a
 * copy of this table signs nobody in. Refunds made from the console name the operator as the requester, so the
 * requester column of refunds no longer points at api_keys only.
 */
export class Operators1763900800000 implements MigrationInterface {
  name = 'Operators1763900800000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      CREATE TABLE operators (
        id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
        email varchar(320) NOT NULL,
        name varchar(100),
        role varchar(16) NOT NULL CONSTRAINT operators_role_check CHECK (role IN ('finance', 'viewer')),
        password_hash varchar(255) NOT NULL,
        failed_attempts integer NOT NULL DEFAULT 0 CONSTRAINT operators_failed_attempts_range CHECK (failed_attempts >= 0),
        locked_until timestamptz,
        last_sign_in_at timestamptz,
        created_at timestamptz NOT NULL,
        updated_at timestamptz NOT NULL
      )`);
    await q.query(`CREATE UNIQUE INDEX operators_email_unique ON operators (lower(email))`);
    await q.query(`
      CREATE TABLE operator_sessions (
        id char(64) PRIMARY KEY,
        operator_id uuid NOT NULL REFERENCES operators(id) ON DELETE CASCADE,
        csrf_token varchar(64) NOT NULL,
        created_at timestamptz NOT NULL,
        last_seen_at timestamptz NOT NULL,
        expires_at timestamptz NOT NULL
      )`);
    await q.query(`CREATE INDEX operator_sessions_operator_idx ON operator_sessions (operator_id)`);
    await q.query(`CREATE INDEX operator_sessions_expires_idx ON operator_sessions (expires_at)`);
    await q.query(`ALTER TABLE refunds DROP CONSTRAINT IF EXISTS refunds_requested_by_api_key_id_fkey`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP TABLE operator_sessions`);
    await q.query(`DROP TABLE operators`);
  }
}
