/**
 * Issue 11: the README's security and API promises under hostile input. Each case here was seen failing.
 */
import { createBillingKey, createCustomer, createPlan } from './utils/fixtures';
import { bearer, startTestApp, T0, TestApp } from './utils/test-app';

const b64 = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url');

/** JSON text of an object nested `depth` levels deep: {"a":{"a":…{}…}}. */
function nested(depth: number): string {
  return '{"a":'.repeat(depth - 1) + '{}' + '}'.repeat(depth - 1);
}

describe('Hardening: no 5xx from input', () => {
  let t: TestApp;
  let customerId: string;
  let planId: string;
  let keyId: string;

  beforeAll(async () => {
    t = await startTestApp();
    customerId = (await createCustomer(t)).id;
    keyId = (await createBillingKey(t, customerId)).id;
    planId = (await createPlan(t, { name: 'Yearly x10', amount: 11000, interval: 'year', interval_count: 10 })).id;
  });
  afterAll(async () => {
    await t?.close();
  });
  afterEach(() => t.clock.set(T0));

  const lists: [string, () => string, 'admin' | 'service'][] = [
    ['/v1/customers', () => '/v1/customers', 'service'],
    ['/v1/customers/:id/billing-keys', () => `/v1/customers/${customerId}/billing-keys`, 'service'],
    ['/v1/plans', () => '/v1/plans', 'service'],
    ['/v1/subscriptions', () => '/v1/subscriptions', 'service'],
    ['/v1/payments', () => '/v1/payments', 'service'],
    ['/v1/charge-runs', () => '/v1/charge-runs', 'admin'],
    ['/v1/reports/reconciliation/runs', () => '/v1/reports/reconciliation/runs', 'admin'],
    ['/v1/webhook-endpoints', () => '/v1/webhook-endpoints', 'admin'],
  ];
  const cursorTimes = ['2024-02-30T00:00:00.000Z', '0000-01-01T00:00:00.000Z', '2023-02-29T12:00:00.000Z', '2026-04-31T00:00:00.000Z'];

  describe.each(lists)('GET %s', (_name, path, role) => {
    it.each(cursorTimes)('should answer 400 naming cursor for a cursor whose time is %s (was 500)', async (time) => {
      const id = '00000000-0000-4000-8000-000000000000';
      // The lists of runs write their cursor as "<time>|<id>"; every other list as JSON.
      const cursor = path().endsWith('/runs') || path() === '/v1/charge-runs' ? Buffer.from(`${time}|${id}`).toString('base64url') : b64({ t: time, id });
      const res = await t.http.get(`${path()}?cursor=${cursor}`).set(bearer(role === 'admin' ? t.adminKey : t.serviceKey));
      expect(res.status).toBe(400);
      expect(res.body.details).toEqual([expect.objectContaining({ field: 'cursor' })]);
    });
  });

  it.each([
    ['POST', '/v1/customers', 'service'],
    ['POST', '/v1/plans', 'service'],
    ['POST', '/v1/webhook-endpoints', 'admin'],
    ['POST', '/v1/webhooks/bootpay', 'none'],
  ])('should refuse a JSON body nested 3,000 deep on %s %s with 400 naming body, before validation (was 500)', async (_m, path, role) => {
    const req = t.http.post(path).set('Content-Type', 'application/json');
    if (role !== 'none') req.set(bearer(role === 'admin' ? t.adminKey : t.serviceKey));
    const res = await req.send(nested(3000));
    expect(res.status).toBe(400);
    expect(res.body).toMatchObject({ status_code: 400, code: 'nesting_too_deep', details: [{ field: 'body' }] });
  });

  it('should refuse a JSON body nested 33 deep and accept the nesting a real body has', async () => {
    const deep = await t.http
      .patch(`/v1/customers/${customerId}`)
      .set(bearer(t.serviceKey))
      .set('Content-Type', 'application/json')
      .send(`{"metadata":${nested(32)}}`);
    expect(deep.status).toBe(400);
    expect(deep.body.code).toBe('nesting_too_deep');
    const ok = await t.http
      .patch(`/v1/customers/${customerId}`)
      .set(bearer(t.serviceKey))
      .send({ metadata: { team: 'growth' } });
    expect(ok.status).toBe(200);
  });

  it.each(['0000-01-01', '0001-01-01', '9999-12-31', '1969-12-31', '9000-01-01'])(
    'should answer GET /v1/reports/reconciliation?date=%s with 400 naming date (was 500)',
    async (date) => {
      const res = await t.http.get(`/v1/reports/reconciliation?date=${date}`).set(bearer(t.adminKey));
      expect(res.status).toBe(400);
      expect(res.body.details).toEqual([expect.objectContaining({ field: 'date' })]);
    },
  );

  it('should still reconcile a day inside the supported range', async () => {
    const res = await t.http.get('/v1/reports/reconciliation?date=2026-01-15').set(bearer(t.adminKey));
    expect(res.status).toBe(200);
  });

  it.each(['9999-12-31T23:59:59Z', '9000-01-01T00:00:00Z', '0001-01-01T00:00:00Z', '1969-12-31T23:59:59Z'])(
    'should refuse to set the test clock to %s with 400 naming now, leaving the clock alone',
    async (now) => {
      const res = await t.http.post('/v1/test/clock').set(bearer(t.adminKey)).send({ now });
      expect(res.status).toBe(400);
      expect(res.body.details).toEqual([expect.objectContaining({ field: 'now' })]);
      expect(t.clock.now()).toEqual(T0);
    },
  );

  it('should create a subscription of ten-year periods at the last instant the test clock accepts (was 500 at 9999-12-31)', async () => {
    const set = await t.http.post('/v1/test/clock').set(bearer(t.adminKey)).send({ now: '8999-12-31T23:59:59.999Z' });
    expect(set.status).toBe(200);
    const res = await t.http.post('/v1/subscriptions').set(bearer(t.serviceKey)).send({ customer_id: customerId, plan_id: planId, billing_key_id: keyId });
    expect(res.status).toBeLessThan(500);
  });
});
