/**
 * Issue 11: Bootpay's open webhook route is limited per source and looks each receipt up once at a time; HTTP
 * hygiene (security headers, no X-Powered-By, no-store, /docs switch, https PUBLIC_BASE_URL, the API key scheme,
 * request ids of 5xx answers).
 */
import { loadConfig } from '../src/config/config';
import { createPlan, createSubscription, customerWithKey } from './utils/fixtures';
import { bearer, startTestApp, TestApp } from './utils/test-app';

describe("Hardening: Bootpay's webhook route", () => {
  let t: TestApp;
  let receiptId: string;

  beforeAll(async () => {
    t = await startTestApp({ env: { BOOTPAY_WEBHOOK_RATE_PER_MINUTE: '30' } });
    const plan = await createPlan(t);
    const { customer, key } = await customerWithKey(t);
    await createSubscription(t, { customer_id: customer.id, plan_id: plan.id, billing_key_id: key.id });
    await t.fake.webhooksIdle();
    receiptId = t.fake.ledger().charges[0].receipt_id;
  });
  afterAll(async () => {
    await t?.close();
  });

  it('should look a receipt up at Bootpay once for calls about it that arrive together', async () => {
    t.fake.setFaults({ latency_ms: 300 });
    try {
      const before = t.fake.stats().requests;
      const answers = await Promise.all(Array.from({ length: 8 }, () => t.http.post('/v1/webhooks/bootpay').send({ receipt_id: receiptId })));
      expect(answers.map((a) => a.status)).toEqual(Array(8).fill(200));
      expect(answers.map((a) => a.body)).toEqual(Array(8).fill({ success: true }));
      expect(t.fake.stats().requests - before).toBe(1);
    } finally {
      t.fake.setFaults({});
    }
  });

  it('should answer 429 with Retry-After beyond the limit per source address, without asking Bootpay', async () => {
    const statuses: number[] = [];
    let limited: { headers: Record<string, string>; body: Record<string, unknown> } | undefined;
    const before = t.fake.stats().requests;
    for (let i = 0; i < 40; i++) {
      const res = await t.http.post('/v1/webhooks/bootpay').send({ receipt_id: receiptId });
      statuses.push(res.status);
      if (res.status === 429) limited = res;
    }
    // 30 a minute, the 9 calls of the test before included.
    expect(statuses.filter((s) => s === 200).length).toBeLessThanOrEqual(30 - 8);
    expect(statuses.filter((s) => s === 429).length).toBeGreaterThanOrEqual(40 - 22);
    expect(limited!.body).toMatchObject({ status_code: 429, code: 'rate_limited' });
    expect(Number(limited!.headers['retry-after'])).toBeGreaterThan(0);
    expect(t.fake.stats().requests - before).toBe(statuses.filter((s) => s === 200).length);
    // Other routes are not limited.
    expect((await t.http.get('/v1/plans').set(bearer(t.serviceKey))).status).toBe(200);
  });
});

describe('Hardening: HTTP hygiene', () => {
  let t: TestApp;

  beforeAll(async () => {
    t = await startTestApp();
  });
  afterAll(async () => {
    await t?.close();
  });

  it('should send security headers and no X-Powered-By', async () => {
    for (const res of [await t.http.get('/health'), await t.http.get('/v1/customers').set(bearer(t.serviceKey)), await t.http.get('/v1/nothing')]) {
      expect(res.headers['x-powered-by']).toBeUndefined();
      expect(res.headers['x-content-type-options']).toBe('nosniff');
      expect(res.headers['strict-transport-security']).toMatch(/max-age=\d+/);
      expect(res.headers['x-frame-options']).toBe('SAMEORIGIN');
      expect(res.headers['content-security-policy']).toContain("default-src 'self'");
    }
  });

  it('should forbid caching answers that carry secrets or personal data', async () => {
    const endpoint = await t.http.post('/v1/webhook-endpoints').set(bearer(t.adminKey)).send({ url: 'https://hooks.example.com/x' });
    expect(endpoint.body.secret).toMatch(/^whsec_/);
    const customer = await t.http.post('/v1/customers').set(bearer(t.serviceKey)).send({ external_id: 'cache-1', name: '홍길동', email: 'a@example.com' });
    const answers = [
      endpoint,
      customer,
      await t.http.get(`/v1/customers/${customer.body.id}`).set(bearer(t.serviceKey)),
      await t.http.get('/v1/customers').set(bearer(t.serviceKey)),
      await t.http.post(`/v1/webhook-endpoints/${endpoint.body.id}/rotate-secret`).set(bearer(t.adminKey)).send({}),
      await t.http.get('/v1/customers'),
    ];
    for (const res of answers) expect(res.headers['cache-control']).toBe('no-store');
  });

  it("should give a 5xx answer's request_id as X-Request-Id and in the log line", async () => {
    t.fake.setFaults({ fail_next: { count: 5, status: 503 } });
    try {
      for (const sent of [undefined, 'trace-abc-123', 'not a valid id!']) {
        const req = t.http.post('/v1/webhooks/bootpay');
        if (sent) req.set('X-Request-Id', sent);
        const res = await req.send({ receipt_id: 'abcdef0123456789' });
        expect(res.status).toBe(503);
        const id = res.headers['x-request-id'];
        expect(id).toMatch(/^[\w-]{1,64}$/);
        if (sent === 'trace-abc-123') expect(id).toBe(sent);
        expect(res.body.request_id).toBe(id);
        const lines = t.logs.filter((l) => l.includes(id)).map((l) => JSON.parse(l));
        expect(lines.some((l) => l.request_id === id && l.message === 'request failed')).toBe(true);
        expect(lines.some((l) => l.request_id === id && l.message === 'http request' && l.status === 503)).toBe(true);
      }
    } finally {
      t.fake.setFaults({});
    }
  });

  it('should describe the API keys (not a JWT) as the security scheme of the document', async () => {
    const doc = (await t.http.get('/docs/openapi.json')).body;
    const scheme = doc.components.securitySchemes.bearer;
    expect(scheme).toMatchObject({ type: 'http', scheme: 'bearer' });
    expect(scheme.bearerFormat).not.toMatch(/jwt/i);
    expect(scheme.description).toMatch(/API key/);
    expect(JSON.stringify(doc.components.securitySchemes)).not.toMatch(/jwt"/i);
  });

  it('should serve /docs outside production by default, and not when DOCS_ENABLED=false', async () => {
    expect((await t.http.get('/docs/openapi.json')).status).toBe(200);
    const off = await startTestApp({ env: { DOCS_ENABLED: 'false' } });
    try {
      expect((await off.http.get('/docs/openapi.json')).status).toBe(404);
      expect((await off.http.get('/docs')).status).toBe(404);
    } finally {
      await off.close();
    }
  });

  const production = {
    NODE_ENV: 'production',
    DATABASE_URL: 'postgres://u:p@db.example.com:5432/billing',
    BILLING_KEY_ENCRYPTION_KEY: 'a'.repeat(64),
    BOOTPAY_CLIENT_KEY: 'ck',
    BOOTPAY_SECRET_KEY: 'sk',
  };

  it('should turn /docs off in production unless DOCS_ENABLED says so', () => {
    expect(loadConfig(production).docsEnabled).toBe(false);
    expect(loadConfig({ ...production, DOCS_ENABLED: 'true' }).docsEnabled).toBe(true);
    expect(loadConfig({}).docsEnabled).toBe(true);
  });

  it('should refuse an http PUBLIC_BASE_URL in production, naming the setting', () => {
    expect(() => loadConfig({ ...production, PUBLIC_BASE_URL: 'http://billing.example.com' })).toThrow(/PUBLIC_BASE_URL/);
    expect(loadConfig({ ...production, PUBLIC_BASE_URL: 'https://billing.example.com' }).publicBaseUrl).toBe('https://billing.example.com');
    expect(loadConfig({ PUBLIC_BASE_URL: 'http://127.0.0.1:3000' }).publicBaseUrl).toBe('http://127.0.0.1:3000');
  });
});
