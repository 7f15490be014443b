import { bearer, startTestApp, TestApp } from './utils/test-app';
import { createPlan, createSubscription, customerWithKey, runCharges } from './utils/fixtures';

const METRICS_TOKEN = 'mt_' + 'a'.repeat(40);

/** The samples of a Prometheus text exposition: `name{a="1",b="2"}` → value. */
function parse(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][\w:]*)(\{.*\})?\s+(\S+)$/.exec(line);
    if (m) out.set(`${m[1]}${m[2] ?? ''}`, Number(m[3]));
  }
  return out;
}

/** A sample's value, 0 when absent (a counter never incremented). Labels in the order prom-client writes them. */
function sample(samples: Map<string, number>, name: string, labels: Record<string, string> = {}): number {
  const l = Object.entries(labels).map(([k, v]) => `${k}="${v}"`);
  return samples.get(l.length ? `${name}{${l.join(',')}}` : name) ?? 0;
}

describe('Metrics: GET /metrics', () => {
  let t: TestApp;

  beforeAll(async () => {
    t = await startTestApp({ env: { METRICS_TOKEN, OUTBOUND_WEBHOOKS_ALLOW_PRIVATE: 'true' } });
  });
  afterAll(async () => {
    t.fake.setFaults({});
    await t.fake.webhooksIdle();
    await t.close();
  });

  const scrape = async (key = METRICS_TOKEN) => {
    const res = await t.http.get('/metrics').set(bearer(key));
    expect(res.status).toBe(200);
    expect(res.headers['content-type']).toMatch(/^text\/plain;.*version=0\.0\.4/);
    return parse(res.text);
  };

  it('should refuse a scrape without a key (401), with a wrong one (401) and with a service key (403), as the API does', async () => {
    const none = await t.http.get('/metrics');
    expect(none.status).toBe(401);
    expect(none.body).toMatchObject({ status_code: 401, code: 'missing_api_key' });
    const wrong = await t.http.get('/metrics').set(bearer('mt_' + 'b'.repeat(40)));
    expect(wrong.status).toBe(401);
    expect(wrong.body).toMatchObject({ code: 'invalid_api_key' });
    const service = await t.http.get('/metrics').set(bearer(t.serviceKey));
    expect(service.status).toBe(403);
    expect(service.body).toMatchObject({ status_code: 403, code: 'insufficient_role' });
    expect(service.text).not.toContain('billing_');
  });

  it('should answer METRICS_TOKEN and an admin key, and leave /metrics out of the OpenAPI document', async () => {
    expect(sample(await scrape(METRICS_TOKEN), 'billing_open_attempts', { status: 'UNKNOWN' })).toBe(0);
    expect(sample(await scrape(t.adminKey), 'billing_open_attempts', { status: 'UNKNOWN' })).toBe(0);
    const doc = await t.http.get('/docs/openapi.json');
    expect(Object.keys(doc.body.paths)).not.toContain('/metrics');
  });

  it('should move the counters and gauges with charge runs: outcomes, runs, Bootpay latency, subscriptions, open attempts, webhook backlog', async () => {
    const hook = await t.http.post('/v1/webhook-endpoints').set(bearer(t.adminKey)).send({ url: 'http://127.0.0.1:9/hooks', description: 'never answers' });
    expect(hook.status).toBe(201);
    const plan = await createPlan(t, { amount: 11000 });
    const good = await customerWithKey(t);
    const soft = await customerWithKey(t, { card_no: '4111110000002051' }); // 1st charge approved, then insufficient funds
    const hard = await customerWithKey(t, { card_no: '9411110000000043' }); // every charge declined: lost or stolen
    const subscribe = async (c: { customer: { id: string }; key: { id: string } }) =>
      (await createSubscription(t, { customer_id: c.customer.id, plan_id: plan.id, billing_key_id: c.key.id })) as { id: string; next_charge_at: string };
    const a = await subscribe(good);
    const b = await subscribe(soft);
    expect((await createSubscription(t, { customer_id: hard.customer.id, plan_id: plan.id, billing_key_id: hard.key.id }, 402)).failure).toMatchObject({
      hard: true,
    });

    const before = await scrape();
    expect(sample(before, 'billing_subscriptions', { status: 'active', dunning_stage: '0' })).toBe(2);
    expect(sample(before, 'billing_webhook_deliveries_pending', { endpoint_id: hook.body.id })).toBeGreaterThan(0);
    // Creating subscriptions called Bootpay: the latency histogram has those calls.
    const issued = sample(before, 'billing_gateway_request_duration_seconds_count', { route: 'issueBillingKey', outcome: 'ok' });
    expect(issued).toBe(3);
    // Every charge outcome the ledger records counts, whoever asked: here the first charges at creation, by the API.
    expect(sample(before, 'billing_charges_total', { outcome: 'approved' })).toBe(2);
    expect(sample(before, 'billing_charges_total', { outcome: 'declined_hard' })).toBe(1);
    expect(sample(before, 'billing_run_charges_total', { outcome: 'approved' })).toBe(0);

    // A month later the run renews a (approved) and b (soft decline: past_due, first dunning stage).
    t.clock.set(new Date(a.next_charge_at));
    const run1 = await runCharges(t);
    expect(run1).toMatchObject({ status: 'completed', counts: expect.objectContaining({ due: 2, charged: 1, failed: 1 }) });
    const after1 = await scrape();
    const delta = (name: string, labels: Record<string, string>) => sample(after1, name, labels) - sample(before, name, labels);
    expect(delta('billing_run_charges_total', { outcome: 'approved' })).toBe(1);
    expect(delta('billing_run_charges_total', { outcome: 'declined_soft' })).toBe(1);
    expect(delta('billing_run_charges_total', { outcome: 'declined_hard' })).toBe(0);
    expect(delta('billing_charges_total', { outcome: 'approved' })).toBe(1);
    expect(delta('billing_charges_total', { outcome: 'declined_soft' })).toBe(1);
    expect(delta('billing_charge_runs_finished_total', { status: 'completed' })).toBe(1);
    expect(delta('billing_charge_run_duration_seconds_count', { status: 'completed' })).toBe(1);
    expect(delta('billing_gateway_request_duration_seconds_count', { route: 'charge', outcome: 'ok' })).toBe(1);
    expect(delta('billing_gateway_request_duration_seconds_count', { route: 'charge', outcome: 'declined' })).toBe(1);
    expect(sample(after1, 'billing_charge_runs', { status: 'completed' })).toBe(1);
    expect(sample(after1, 'billing_charge_run_last_finished_timestamp_seconds', { status: 'completed' })).toBe(t.clock.now().getTime() / 1000);
    expect(sample(after1, 'billing_subscriptions', { status: 'active', dunning_stage: '0' })).toBe(1);
    expect(sample(after1, 'billing_subscriptions', { status: 'past_due', dunning_stage: '1' })).toBe(1);
    expect(sample(after1, 'billing_refunds', { status: 'succeeded' })).toBe(0);

    // b ends; the next renewal of a gets a 5xx from Bootpay: an UNKNOWN attempt (no webhook settles it), which ages.
    expect((await t.http.post(`/v1/subscriptions/${b.id}/cancel`).set(bearer(t.serviceKey)).send({ at_period_end: false, reason: 'churned' })).status).toBe(
      200,
    );
    const renewal = (await t.http.get(`/v1/subscriptions/${a.id}`).set(bearer(t.serviceKey))).body.next_charge_at as string;
    t.clock.set(new Date(renewal));
    t.fake.setFaults({ fail_next: { count: 1, status: 500, route: 'subscribe/payment' } });
    const run2 = await runCharges(t);
    expect(run2.counts).toMatchObject({ due: 1, unknown: 1 });
    t.clock.set(new Date(Date.parse(renewal) + 2 * 3600_000));
    const after2 = await scrape();
    expect(sample(after2, 'billing_run_charges_total', { outcome: 'unknown' }) - sample(after1, 'billing_run_charges_total', { outcome: 'unknown' })).toBe(1);
    expect(sample(after2, 'billing_gateway_request_duration_seconds_count', { route: 'charge', outcome: 'unknown' })).toBe(1);
    expect(sample(after2, 'billing_charges_total', { outcome: 'unknown' }) - sample(after1, 'billing_charges_total', { outcome: 'unknown' })).toBe(1);
    expect(sample(after2, 'billing_open_attempts', { status: 'UNKNOWN' })).toBe(1);
    expect(sample(after2, 'billing_open_attempt_oldest_age_seconds', { status: 'UNKNOWN' })).toBeGreaterThanOrEqual(2 * 3600);
    expect(sample(after2, 'billing_open_attempts', { status: 'IN_PROGRESS' })).toBe(0);
    expect(
      sample(after2, 'billing_subscriptions', { status: 'canceled', dunning_stage: '1' }) +
        sample(after2, 'billing_subscriptions', { status: 'canceled', dunning_stage: '0' }),
    ).toBe(2);
    // Nothing was delivered to the endpoint that never answers: its oldest event is older than 15 minutes.
    expect(sample(after2, 'billing_webhook_deliveries_pending', { endpoint_id: hook.body.id })).toBeGreaterThan(
      sample(before, 'billing_webhook_deliveries_pending', { endpoint_id: hook.body.id }),
    );
    expect(sample(after2, 'billing_webhook_delivery_oldest_pending_age_seconds', { endpoint_id: hook.body.id })).toBeGreaterThan(15 * 60);
    // Scheduler-mode plans reserve nothing; no reconciliation has run.
    expect(after2.get('billing_reservations_outstanding')).toBe(0);
    expect(after2.get('billing_reconciliation_differences_open{persistent="true"}')).toBe(0);
  });
});
