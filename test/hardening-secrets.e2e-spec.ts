/**
 * Issue 11: secrets stay secret. Idempotency records never hold a secret, they are removed after 24 hours, and an API
 * key's stored identifier holds no part of the key.
 */
import { createHash } from 'node:crypto';
import { DataSource } from 'typeorm';
import { SecretsStaySecret1763900700000 } from '../migrations/1763900700000-SecretsStaySecret';
import { ApiKeysService } from '../src/auth/api-keys.service';
import { sweepIdempotencyKeys } from '../src/idempotency/idempotency.interceptor';
import { bearer, startTestApp, T0, TestApp } from './utils/test-app';

const sha256 = (s: string) => createHash('sha256').update(s).digest('hex');

describe('Hardening: secrets stay secret', () => {
  let t: TestApp;

  beforeAll(async () => {
    t = await startTestApp();
  });
  afterAll(async () => {
    await t?.close();
  });
  afterEach(() => t.clock.set(T0));

  /** Every idempotency record as text. */
  const records = async () =>
    (await t.db.query(`SELECT response_body::text AS body FROM idempotency_keys`)).rows.map((r: { body: string }) => r.body).join('\n');

  describe('idempotency records', () => {
    it('should not store the signing secret of a new webhook endpoint, and refuse to replay it with 409 naming the endpoint', async () => {
      const send = () =>
        t.http.post('/v1/webhook-endpoints').set(bearer(t.adminKey)).set('Idempotency-Key', 'endpoint-create-1').send({ url: 'https://hooks.example.com/a' });
      const first = await send();
      expect(first.status).toBe(201);
      expect(first.body.secret).toMatch(/^whsec_/);
      expect(await records()).not.toContain(first.body.secret);
      expect(await records()).not.toContain('whsec_');

      const replay = await send();
      expect(replay.status).toBe(409);
      expect(replay.body).toMatchObject({ code: 'idempotent_replay_withheld', resource_id: first.body.id });
      expect(replay.text).not.toContain(first.body.secret);
      const count = (await t.db.query(`SELECT count(*)::int AS n FROM webhook_endpoints WHERE url = 'https://hooks.example.com/a'`)).rows[0].n;
      expect(count).toBe(1);
    });

    it('should not store a rotated secret either, nor show it on replay', async () => {
      const created = await t.http.post('/v1/webhook-endpoints').set(bearer(t.adminKey)).send({ url: 'https://hooks.example.com/b' });
      const rotate = () =>
        t.http.post(`/v1/webhook-endpoints/${created.body.id}/rotate-secret`).set(bearer(t.adminKey)).set('Idempotency-Key', 'rotate-1').send({});
      const first = await rotate();
      expect(first.status).toBe(200);
      expect(first.body.secret).toMatch(/^whsec_/);
      expect(await records()).not.toContain(first.body.secret);
      const stored = async () =>
        (await t.db.query(`SELECT secret_ciphertext FROM webhook_endpoints WHERE id = $1`, [created.body.id])).rows[0].secret_ciphertext;
      const inUse = await stored();
      const replay = await rotate();
      expect(replay.status).toBe(409);
      expect(replay.text).not.toContain(first.body.secret);
      // The replay did not rotate again: the secret the first answer showed is still the one in use.
      expect(await stored()).toBe(inUse);
    });

    it('should still replay answers without secrets as they were', async () => {
      const send = () => t.http.post('/v1/customers').set(bearer(t.serviceKey)).set('Idempotency-Key', 'customer-1').send({ external_id: 'sec-1', name: 'A' });
      const first = await send();
      const again = await send();
      expect(again.status).toBe(201);
      expect(again.headers['idempotent-replayed']).toBe('true');
      expect(again.body).toEqual(first.body);
    });

    it('should remove records older than 24 hours, so the key can be used again', async () => {
      const send = (name: string) =>
        t.http
          .post('/v1/customers')
          .set(bearer(t.serviceKey))
          .set('Idempotency-Key', 'sweep-1')
          .send({ external_id: `sweep-${name}`, name });
      expect((await send('first')).status).toBe(201);
      const db = t.app.get(DataSource);
      const row = async () => (await t.db.query(`SELECT 1 FROM idempotency_keys WHERE idempotency_key = 'sweep-1'`)).rows.length;

      t.clock.set(new Date(T0.getTime() + 24 * 3600_000 - 1000));
      await sweepIdempotencyKeys(db, t.clock.now());
      expect(await row()).toBe(1);
      expect((await send('second')).status).toBe(422);

      t.clock.set(new Date(T0.getTime() + 24 * 3600_000 + 1000));
      expect(await sweepIdempotencyKeys(db, t.clock.now())).toBeGreaterThanOrEqual(1);
      expect(await row()).toBe(0);
      expect((await send('second')).status).toBe(201);
    });
  });

  describe('API key identifiers', () => {
    it('should keep only the kind of a key and the start of its hash, no character of the key itself', async () => {
      const keys = t.app.get(ApiKeysService);
      const generated = await keys.create('generated', 'admin');
      const fromSettings = 'deployment-admin-key-000000000001';
      await keys.ensureInitialKeys({ adminKey: fromSettings, generateWhenEmpty: false });
      const rows: { name: string; key_prefix: string; key_hash: string }[] = (await t.db.query(`SELECT name, key_prefix, key_hash FROM api_keys`)).rows;
      const gen = rows.find((r) => r.key_hash === sha256(generated.key))!;
      expect(gen.key_prefix).toBe(`bsk_admin_#${sha256(generated.key).slice(0, 8)}`);
      const set = rows.find((r) => r.key_hash === sha256(fromSettings))!;
      expect(set.key_prefix).toBe(`#${sha256(fromSettings).slice(0, 8)}`);
      for (const r of rows) {
        // No run of 3 characters of a key after its kind is in its identifier.
        const secretPart = r.key_hash === sha256(fromSettings) ? fromSettings : generated.key.replace(/^bsk_(admin|svc)_/, '');
        for (let i = 0; i + 3 <= secretPart.length && (r.key_hash === sha256(fromSettings) || r.key_hash === sha256(generated.key)); i++) {
          expect(r.key_prefix.replace(/^bsk_(admin|svc)_#/, '#')).not.toContain(secretPart.slice(i, i + 3));
        }
      }
    });

    it('should rewrite the identifiers and scrub the idempotency records already stored when migrating', async () => {
      const db = t.app.get(DataSource);
      const runner = db.createQueryRunner();
      const migration = new SecretsStaySecret1763900700000();
      try {
        await migration.down(runner);
        await t.db.query(`UPDATE api_keys SET key_prefix = left('bsk_admin_' || key_hash, 12) WHERE name = 'test admin'`);
        await t.db.query(`UPDATE api_keys SET key_prefix = 'plainkey1234' WHERE name = 'generated'`);
        const apiKeyId = (await t.db.query(`SELECT id FROM api_keys WHERE name = 'test admin'`)).rows[0].id;
        await t.db.query(
          `INSERT INTO idempotency_keys (api_key_id, idempotency_key, method, path, request_hash, state, response_status, response_body, created_at)
           VALUES ($1, 'old-row', 'POST', '/v1/webhook-endpoints', repeat('0', 64), 'completed', 201, '{"id":"x","secret":"whsec_oldsecret"}', $2)`,
          [apiKeyId, T0],
        );
        await migration.up(runner);
      } finally {
        await runner.release();
      }
      expect(await records()).not.toContain('whsec_oldsecret');
      const prefixes: { name: string; key_prefix: string; key_hash: string }[] = (await t.db.query(`SELECT name, key_prefix, key_hash FROM api_keys`)).rows;
      expect(prefixes.find((p) => p.name === 'test admin')!.key_prefix).toMatch(/^bsk_admin_#[0-9a-f]{8}$/);
      expect(prefixes.find((p) => p.name === 'generated')!.key_prefix).toMatch(/^#[0-9a-f]{8}$/);
      const replay = await t.http.post('/v1/webhook-endpoints').set(bearer(t.adminKey)).set('Idempotency-Key', 'old-row').send({});
      // Another body than the stored one (its hash is zeros): 422, and never the old secret.
      expect(replay.text).not.toContain('whsec_oldsecret');
    });
  });
});
