import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Secrets stay secret (issue 11):
 * - an idempotency record keeps no secret: answers that carried one (a webhook endpoint's signing secret) are stored
 *   without it and marked `response_withheld`; rows stored before are scrubbed the same way;
 * - `api_keys.key_prefix` keeps a short identifier that holds no character of the key (the key's kind and the start
 *   of its SHA-256 hash) instead of its first 12 characters.
 */
export class SecretsStaySecret1763900700000 implements MigrationInterface {
  name = 'SecretsStaySecret1763900700000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE idempotency_keys ADD COLUMN response_withheld boolean NOT NULL DEFAULT false`);
    await q.query(
      `UPDATE idempotency_keys SET response_body = jsonb_set(response_body, '{secret}', '"[WITHHELD]"'), response_withheld = true
       WHERE jsonb_typeof(response_body) = 'object' AND response_body ? 'secret'`,
    );
    await q.query(`ALTER TABLE api_keys ALTER COLUMN key_prefix TYPE varchar(32)`);
    await q.query(
      `UPDATE api_keys SET key_prefix =
         CASE WHEN key_prefix LIKE 'bsk\\_admin\\_%' THEN 'bsk_admin_' WHEN key_prefix LIKE 'bsk\\_svc\\_%' THEN 'bsk_svc_' ELSE '' END
         || '#' || left(key_hash, 8)`,
    );
  }

  async down(q: QueryRunner): Promise<void> {
    // The characters of the keys are gone for good; the identifiers stay.
    await q.query(`ALTER TABLE idempotency_keys DROP COLUMN response_withheld`);
  }
}
