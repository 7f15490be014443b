import { SecretBox } from '../src/common/secret-box';
import { TEST_CARDS } from '../src/fake-bootpay/test-cards';
import { createBillingKey, createCustomer, GOOD_CARD } from './utils/fixtures';
import { bearer, startTestApp, tableCounts, TestApp } from './utils/test-app';

describe('Foundation: auth, conventions, customers and billing keys', () => {
  let t: TestApp;

  beforeAll(async () => {
    t = await startTestApp();
  });
  afterAll(async () => {
    await t.close();
  });

  describe('authentication', () => {
    it('should answer /health without a key and report the database and the gateway', async () => {
      const res = await t.http.get('/health');
      expect(res.status).toBe(200);
      expect(res.body).toMatchObject({ status: 'ok', database: { ok: true }, gateway: { ok: true } });
    });

    it('should refuse a request without a key with 401 and the common error body', async () => {
      const res = await t.http.get('/v1/customers');
      expect(res.status).toBe(401);
      expect(res.body).toEqual(expect.objectContaining({ status_code: 401, error: 'Unauthorized', code: 'missing_api_key', details: [] }));
    });

    it('should refuse an unknown key with 401', async () => {
      const res = await t.http.get('/v1/customers').set(bearer('bsk_admin_not-a-real-key-0000000000'));
      expect(res.status).toBe(401);
      expect(res.body.code).toBe('invalid_api_key');
    });

    it('should refuse the service role on an admin route with 403', async () => {
      const res = await t.http.post('/v1/test/clock').set(bearer(t.serviceKey)).send({ now: '2026-02-01T00:00:00Z' });
      expect(res.status).toBe(403);
      expect(res.body.code).toBe('insufficient_role');
    });

    it('should let the admin role set the test clock', async () => {
      const before = t.clock.now();
      const res = await t.http.post('/v1/test/clock').set(bearer(t.adminKey)).send({ now: '2026-02-01T00:00:00+09:00' });
      expect(res.status).toBe(200);
      expect(res.body.now).toBe('2026-01-31T15:00:00.000Z');
      expect((await t.http.get('/v1/test/clock').set(bearer(t.serviceKey))).body.now).toBe('2026-01-31T15:00:00.000Z');
      t.clock.set(before);
    });
  });

  describe('customers', () => {
    it('should create, read, find by external_id and update a customer', async () => {
      const created = await t.http
        .post('/v1/customers')
        .set(bearer(t.serviceKey))
        .send({ external_id: 'acme-7', name: '김철수', email: 'cs@example.com', phone: '+82-10-9876-5432', metadata: { plan: 'pro' } });
      expect(created.status).toBe(201);
      expect(created.body).toMatchObject({ external_id: 'acme-7', name: '김철수', phone: '01098765432', metadata: { plan: 'pro' } });

      const got = await t.http.get(`/v1/customers/${created.body.id}`).set(bearer(t.adminKey));
      expect(got.body).toEqual(created.body);

      const found = await t.http.get('/v1/customers?external_id=acme-7').set(bearer(t.serviceKey));
      expect(found.body.data).toHaveLength(1);
      expect(found.body.data[0].id).toBe(created.body.id);

      const patched = await t.http.patch(`/v1/customers/${created.body.id}`).set(bearer(t.serviceKey)).send({ email: null, name: '김영희' });
      expect(patched.status).toBe(200);
      expect(patched.body).toMatchObject({ name: '김영희', email: null });
    });

    it('should refuse a second customer with the same external_id with 409', async () => {
      await createCustomer(t, { external_id: 'dup-1' });
      const res = await t.http.post('/v1/customers').set(bearer(t.serviceKey)).send({ external_id: 'dup-1', name: 'x' });
      expect(res.status).toBe(409);
      expect(res.body.code).toBe('external_id_taken');
    });

    it('should page through customers with a cursor', async () => {
      for (let i = 0; i < 3; i++) await createCustomer(t);
      const first = await t.http.get('/v1/customers?limit=2').set(bearer(t.serviceKey));
      expect(first.body.data).toHaveLength(2);
      expect(first.body.has_more).toBe(true);
      const second = await t.http.get(`/v1/customers?limit=2&cursor=${first.body.next_cursor}`).set(bearer(t.serviceKey));
      const ids = new Set([...first.body.data, ...second.body.data].map((c: { id: string }) => c.id));
      expect(ids.size).toBe(first.body.data.length + second.body.data.length);
    });

    it('should 404 an unknown customer and 400 an id that is not a UUID', async () => {
      expect((await t.http.get('/v1/customers/00000000-0000-4000-8000-000000000000').set(bearer(t.serviceKey))).status).toBe(404);
      const bad = await t.http.get('/v1/customers/abc').set(bearer(t.serviceKey));
      expect(bad.status).toBe(400);
      expect(bad.body.details).toEqual([{ field: 'id', message: 'id must be a UUID' }]);
    });

    const badBodies: [string, Record<string, unknown>, string][] = [
      ['missing external_id', { name: 'a' }, 'external_id'],
      ['external_id with spaces', { external_id: 'a b', name: 'a' }, 'external_id'],
      ['numeric name', { external_id: 'x1', name: 12 }, 'name'],
      ['blank name', { external_id: 'x1', name: '   ' }, 'name'],
      ['bad email', { external_id: 'x1', name: 'a', email: 'not-mail' }, 'email'],
      ['bad phone', { external_id: 'x1', name: 'a', phone: '12345' }, 'phone'],
      ['nested metadata', { external_id: 'x1', name: 'a', metadata: { a: { b: 1 } } }, 'metadata'],
      ['unknown field', { external_id: 'x1', name: 'a', role: 'admin' }, 'role'],
    ];
    it.each(badBodies)('should refuse %s with 400 naming the field and store nothing', async (_, body, field) => {
      const before = await tableCounts(t.db);
      const res = await t.http.post('/v1/customers').set(bearer(t.serviceKey)).send(body);
      expect(res.status).toBe(400);
      expect(res.body.status_code).toBe(400);
      expect(res.body.details.map((d: { field: string }) => d.field)).toContain(field);
      expect(await tableCounts(t.db)).toEqual(before);
    });

    it('should refuse malformed JSON, a JSON array and a non-JSON body with a 4xx and details', async () => {
      const malformed = await t.http.post('/v1/customers').set(bearer(t.serviceKey)).set('Content-Type', 'application/json').send('{"external_id": ');
      expect(malformed.status).toBe(400);
      expect(malformed.body.details[0].field).toBe('body');
      const array = await t.http
        .post('/v1/customers')
        .set(bearer(t.serviceKey))
        .send([{ external_id: 'x' }]);
      expect(array.status).toBe(400);
      const text = await t.http.post('/v1/customers').set(bearer(t.serviceKey)).set('Content-Type', 'text/plain').send('hello');
      expect(text.status).toBe(415);
    });

    it('should refuse a bad PATCH with 400 and leave the customer unchanged', async () => {
      const c = await createCustomer(t);
      const res = await t.http.patch(`/v1/customers/${c.id}`).set(bearer(t.serviceKey)).send({ external_id: 'changed' });
      expect(res.status).toBe(400);
      const got = await t.http.get(`/v1/customers/${c.id}`).set(bearer(t.serviceKey));
      expect(got.body.external_id).toBe(c.external_id);
    });
  });

  describe('billing keys', () => {
    it('should register a key from card data, show only masked card data, and keep the key encrypted', async () => {
      const customer = await createCustomer(t);
      const res = await t.http.post(`/v1/customers/${customer.id}/billing-keys`).set(bearer(t.serviceKey)).send(GOOD_CARD);
      expect(res.status).toBe(201);
      expect(res.body).toMatchObject({ customer_id: customer.id, status: 'active' });
      expect(res.body.card_no_masked).toMatch(/^\d{6}\*+\d{4}$/);
      expect(Object.keys(res.body)).not.toContain('billing_key');

      const row = (await t.db.query('SELECT billing_key_ciphertext FROM billing_keys WHERE id = $1', [res.body.id])).rows[0];
      const plain = new SecretBox(t.encryptionKey).decrypt(row.billing_key_ciphertext, res.body.id);
      expect(plain.length).toBeGreaterThan(10);
      expect(row.billing_key_ciphertext).not.toContain(plain);

      const list = await t.http.get(`/v1/customers/${customer.id}/billing-keys`).set(bearer(t.adminKey));
      const get = await t.http.get(`/v1/billing-keys/${res.body.id}`).set(bearer(t.adminKey));
      for (const body of [res.body, list.body, get.body]) {
        expect(JSON.stringify(body)).not.toContain(plain);
        expect(JSON.stringify(body)).not.toContain(GOOD_CARD.card_no);
      }
      const logs = t.logs.join('\n');
      expect(logs).toContain(res.body.id); // the registration was logged, by id
      expect(logs).not.toContain(plain);
      expect(logs).not.toContain(GOOD_CARD.card_no);
    });

    it('should register a key issued by the client SDK from its receipt_id', async () => {
      const customer = await createCustomer(t);
      const issued = await fetch(`${t.fake.apiBaseUrl}/request/subscribe`, {
        method: 'POST',
        headers: {
          'Content-Type': 'application/json',
          Authorization: `Basic ${Buffer.from(`${t.fake.credentials.clientKey}:${t.fake.credentials.secretKey}`).toString('base64')}`,
        },
        body: JSON.stringify({ ...GOOD_CARD, card_no: '5555444433331111', order_name: 'client', subscription_id: 's1' }),
      }).then((r) => r.json() as Promise<{ receipt_id: string; billing_key: string }>);
      const res = await t.http.post(`/v1/customers/${customer.id}/billing-keys`).set(bearer(t.serviceKey)).send({ receipt_id: issued.receipt_id });
      expect(res.status).toBe(201);
      expect(res.body.bootpay_receipt_id).toBe(issued.receipt_id);
      expect(res.body.card_no_masked).toMatch(/1111$/);
      expect(JSON.stringify(res.body)).not.toContain(issued.billing_key);
      expect(t.logs.join('\n')).not.toContain(issued.billing_key);

      const again = await t.http.post(`/v1/customers/${customer.id}/billing-keys`).set(bearer(t.serviceKey)).send({ receipt_id: issued.receipt_id });
      expect(again.status).toBe(409);
    });

    it('should answer 422 naming receipt_id when Bootpay has no such billing key', async () => {
      const customer = await createCustomer(t);
      const before = await tableCounts(t.db);
      const res = await t.http.post(`/v1/customers/${customer.id}/billing-keys`).set(bearer(t.serviceKey)).send({ receipt_id: '0123456789abcdef01234567' });
      expect(res.status).toBe(422);
      expect(res.body.details).toEqual([expect.objectContaining({ field: 'receipt_id' })]);
      expect(await tableCounts(t.db)).toEqual(before);
    });

    it('should answer 402 with the PG reason when the card is refused at issue, and store nothing', async () => {
      const customer = await createCustomer(t);
      const expired = TEST_CARDS.find((c) => c.scenario === 'expired_card')!;
      const before = await tableCounts(t.db);
      const res = await t.http
        .post(`/v1/customers/${customer.id}/billing-keys`)
        .set(bearer(t.serviceKey))
        .send({ ...GOOD_CARD, card_no: expired.cardNo });
      expect(res.status).toBe(402);
      expect(res.body.failure).toMatchObject({ pg_code: expired.pgErrorCode, hard: true });
      expect(await tableCounts(t.db)).toEqual(before);
      expect(t.logs.join('\n')).not.toContain(expired.cardNo);
    });

    const badCards: [string, Record<string, unknown>, string][] = [
      ['short card number', { ...GOOD_CARD, card_no: '4242' }, 'card_no'],
      ['card number with letters', { ...GOOD_CARD, card_no: '4242abcd42424242' }, 'card_no'],
      ['missing pg', { ...GOOD_CARD, pg: undefined }, 'pg'],
      ['month 13', { ...GOOD_CARD, card_expire_month: '13' }, 'card_expire_month'],
      ['3-digit password', { ...GOOD_CARD, card_pw: '123' }, 'card_pw'],
      ['identity of 7 digits', { ...GOOD_CARD, card_identity_no: '1234567' }, 'card_identity_no'],
      ['receipt and card together', { receipt_id: '0123456789abcdef01234567', card_no: '4242424242424242' }, 'card_no'],
      ['unknown field', { ...GOOD_CARD, cvc: '123' }, 'cvc'],
    ];
    it.each(badCards)('should refuse %s with 400 naming the field, store nothing and echo no card data', async (_, body, field) => {
      const customer = await createCustomer(t);
      const before = await tableCounts(t.db);
      const ledgerBefore = t.fake.ledger().billing_keys.length;
      const res = await t.http.post(`/v1/customers/${customer.id}/billing-keys`).set(bearer(t.serviceKey)).send(body);
      expect(res.status).toBe(400);
      expect(res.body.details.map((d: { field: string }) => d.field)).toContain(field);
      expect(JSON.stringify(res.body)).not.toContain('4242424242424242');
      expect(await tableCounts(t.db)).toEqual(before);
      expect(t.fake.ledger().billing_keys.length).toBe(ledgerBefore);
    });

    it('should delete a key at Bootpay, and refuse with 409 while a live subscription uses it', async () => {
      const customer = await createCustomer(t);
      const key = await createBillingKey(t, customer.id);
      const plan = await t.db.query(
        `INSERT INTO plans (name, amount, tax_free_amount, currency, interval, interval_count, trial_days, charge_mode, created_at, updated_at)
         VALUES ('p', 1000, 0, 'KRW', 'month', 1, 0, 'scheduler', now(), now()) RETURNING id`,
      );
      const sub = await t.db.query(
        `INSERT INTO subscriptions (customer_id, plan_id, billing_key_id, status, anchor_at, period_index, created_at, updated_at)
         VALUES ($1, $2, $3, 'active', now(), 0, now(), now()) RETURNING id`,
        [customer.id, plan.rows[0].id, key.id],
      );
      const refused = await t.http.delete(`/v1/billing-keys/${key.id}`).set(bearer(t.serviceKey));
      expect(refused.status).toBe(409);
      expect(refused.body.code).toBe('billing_key_in_use');
      expect(t.fake.ledger().billing_keys.find((k) => k.receipt_id === key.bootpay_receipt_id)?.status).not.toBe('destroyed');

      await t.db.query(`UPDATE subscriptions SET status = 'canceled' WHERE id = $1`, [sub.rows[0].id]);
      const deleted = await t.http.delete(`/v1/billing-keys/${key.id}`).set(bearer(t.serviceKey));
      expect(deleted.status).toBe(200);
      expect(deleted.body.status).toBe('deleted');
      expect(t.fake.ledger().billing_keys.find((k) => k.receipt_id === key.bootpay_receipt_id)?.status).toBe('destroyed');
      const row = (await t.db.query('SELECT billing_key_ciphertext FROM billing_keys WHERE id = $1', [key.id])).rows[0];
      expect(row.billing_key_ciphertext).toBeNull();
    });
  });

  describe('idempotency', () => {
    it('should replay the stored response for the same key and body, and create one customer', async () => {
      const body = { external_id: 'idem-1', name: 'Idem' };
      const first = await t.http.post('/v1/customers').set(bearer(t.serviceKey)).set('Idempotency-Key', 'k-1').send(body);
      const second = await t.http.post('/v1/customers').set(bearer(t.serviceKey)).set('Idempotency-Key', 'k-1').send(body);
      expect(first.status).toBe(201);
      expect(second.status).toBe(201);
      expect(second.headers['idempotent-replayed']).toBe('true');
      expect(second.body).toEqual(first.body);
      const rows = await t.db.query(`SELECT count(*)::int AS n FROM customers WHERE external_id = 'idem-1'`);
      expect(rows.rows[0].n).toBe(1);
    });

    it('should answer 422 when the same key comes with another body', async () => {
      await t.http.post('/v1/customers').set(bearer(t.serviceKey)).set('Idempotency-Key', 'k-2').send({ external_id: 'idem-2', name: 'A' });
      const res = await t.http.post('/v1/customers').set(bearer(t.serviceKey)).set('Idempotency-Key', 'k-2').send({ external_id: 'idem-3', name: 'B' });
      expect(res.status).toBe(422);
      expect(res.body.code).toBe('idempotency_key_reused');
      const rows = await t.db.query(`SELECT count(*)::int AS n FROM customers WHERE external_id = 'idem-3'`);
      expect(rows.rows[0].n).toBe(0);
    });

    it('should not store a refused request under its key, so a corrected retry runs', async () => {
      const bad = await t.http.post('/v1/customers').set(bearer(t.serviceKey)).set('Idempotency-Key', 'k-3').send({ external_id: 'idem 4', name: 'A' });
      expect(bad.status).toBe(400);
      const fixed = await t.http.post('/v1/customers').set(bearer(t.serviceKey)).set('Idempotency-Key', 'k-3').send({ external_id: 'idem-4', name: 'A' });
      expect(fixed.status).toBe(201);
    });
  });

  describe('OpenAPI', () => {
    it('should serve the OpenAPI document with the customers and billing-keys routes', async () => {
      const res = await t.http.get('/docs/openapi.json');
      expect(res.status).toBe(200);
      expect(Object.keys(res.body.paths)).toEqual(expect.arrayContaining(['/v1/customers', '/v1/customers/{id}/billing-keys', '/v1/billing-keys/{id}']));
    });
  });
});
