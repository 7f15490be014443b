import { createServer, IncomingMessage, Server } from 'node:http';
import { DELIVERY_FAILED, WebhookDispatcher } from '../src/outbound-webhooks/webhook-dispatcher.service';
import { SIGNATURE_HEADER, verify } from '../src/outbound-webhooks/webhook-signature';
import { createPlan, createSubscription, customerWithKey, runCharges } from './utils/fixtures';
import { bearer, startTestApp, TestApp } from './utils/test-app';

interface Received {
  headers: IncomingMessage['headers'];
  body: string;
  json: { id: string; type: string; sequence: number | null; subscription_id: string | null; data: { object: Record<string, unknown> } };
}

/** A SaaS backend's webhook receiver: answers with the status it is told to. */
async function startReceiver(): Promise<{ url: string; received: Received[]; answer: { status: number }; close(): Promise<void> }> {
  const received: Received[] = [];
  const answer = { status: 200 };
  const server: Server = createServer((req, res) => {
    let body = '';
    req.on('data', (c) => (body += c));
    req.on('end', () => {
      if (answer.status === 200) received.push({ headers: req.headers, body, json: JSON.parse(body) });
      res.writeHead(answer.status).end();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as { port: number }).port;
  return { url: `http://127.0.0.1:${port}/hooks`, received, answer, close: () => new Promise((r) => server.close(() => r())) };
}

describe('Outbound webhooks to the SaaS backend', () => {
  let t: TestApp;
  let receiver: Awaited<ReturnType<typeof startReceiver>>;
  let secret: string;
  let endpointId: string;
  let dispatch: () => Promise<number>;

  beforeAll(async () => {
    // The receiver listens on 127.0.0.1, which only this setting allows.
    t = await startTestApp({ env: { OUTBOUND_WEBHOOKS_ALLOW_PRIVATE: 'true' } });
    receiver = await startReceiver();
    const res = await t.http.post('/v1/webhook-endpoints').set(bearer(t.adminKey)).send({ url: receiver.url, description: 'saas' });
    expect(res.status).toBe(201);
    secret = res.body.secret;
    endpointId = res.body.id;
    dispatch = () => t.app.get(WebhookDispatcher).processDue();
  });
  afterAll(async () => {
    await receiver.close();
    await t.close();
  });

  it('should show the signing secret only when the endpoint is created, and refuse the service role', async () => {
    expect(secret).toMatch(/^whsec_/);
    const got = await t.http.get(`/v1/webhook-endpoints/${endpointId}`).set(bearer(t.adminKey));
    expect(got.body).not.toHaveProperty('secret');
    expect(JSON.stringify(got.body)).not.toContain(secret);
    expect((await t.http.get('/v1/webhook-endpoints').set(bearer(t.serviceKey))).status).toBe(403);
    const bad = await t.http
      .post('/v1/webhook-endpoints')
      .set(bearer(t.adminKey))
      .send({ url: 'ftp://x', events: ['nope'] });
    expect(bad.status).toBe(400);
    expect(bad.body.details.map((d: { field: string }) => d.field)).toEqual(expect.arrayContaining(['url', 'events']));
  });

  it('should deliver signed events for a new subscription, in order of their sequence numbers', async () => {
    const plan = await createPlan(t);
    const { customer, key } = await customerWithKey(t);
    const sub = await createSubscription(t, { customer_id: customer.id, plan_id: plan.id, billing_key_id: key.id });
    expect(await dispatch()).toBe(3);
    const mine = receiver.received.filter((r) => r.json.subscription_id === sub.id);
    expect(mine.map((r) => r.json.type)).toEqual(['subscription.created', 'payment.succeeded', 'subscription.activated']);
    expect(mine.map((r) => r.json.sequence)).toEqual([1, 2, 3]);
    for (const r of mine) {
      const header = r.headers[SIGNATURE_HEADER.toLowerCase()] as string;
      // Signed with the real time, which the receiver checks against its own clock.
      expect(verify(secret, header, r.body, Math.floor(Date.now() / 1000))).toBe(true);
      expect(verify('whsec_wrong', header, r.body, Math.floor(Date.now() / 1000))).toBe(false);
      expect(verify(secret, header, r.body.replace('"', ' "'), Math.floor(Date.now() / 1000))).toBe(false);
    }
    expect(mine[1].json.data.object).toMatchObject({ subscription_id: sub.id, status: 'DONE', amount: 11000, vat: 1000 });
    expect(mine[2].json.data.object).toMatchObject({ id: sub.id, status: 'active' });
    expect(await dispatch()).toBe(0);
  });

  it('should retry with backoff after the receiver fails, and let an admin re-send', async () => {
    receiver.answer.status = 500;
    const before = receiver.received.length;
    const plan = await createPlan(t);
    const { customer, key } = await customerWithKey(t);
    const sub = await createSubscription(t, { customer_id: customer.id, plan_id: plan.id, billing_key_id: key.id });
    expect(await dispatch()).toBe(3);
    const pending = await t.http.get(`/v1/webhook-endpoints/${endpointId}/deliveries?status=pending&limit=100`).set(bearer(t.adminKey));
    const mine = pending.body.data.filter((d: { event: { subscription_id: string } }) => d.event.subscription_id === sub.id);
    expect(mine).toHaveLength(3);
    expect(mine[0]).toMatchObject({ attempts: 1, last_status_code: null, last_error: DELIVERY_FAILED });
    expect(new Date(mine[0].next_attempt_at).getTime() - t.clock.now().getTime()).toBe(30_000);

    receiver.answer.status = 200;
    expect(await dispatch()).toBe(0); // not due yet
    t.clock.advance(30_000);
    expect(await dispatch()).toBe(3);
    const now = receiver.received.slice(before).filter((r) => r.json.subscription_id === sub.id);
    expect(now.map((r) => r.json.sequence)).toEqual([1, 2, 3]);

    const delivered = await t.http.get(`/v1/webhook-endpoints/${endpointId}/deliveries?status=delivered&limit=100`).set(bearer(t.adminKey));
    const one = delivered.body.data.find((d: { event: { subscription_id: string } }) => d.event.subscription_id === sub.id);
    expect(one.attempts).toBe(2);
    const resent = await t.http.post(`/v1/webhook-deliveries/${one.id}/resend`).set(bearer(t.adminKey));
    expect(resent.status).toBe(200);
    expect(resent.body.status).toBe('pending');
    expect(await dispatch()).toBe(1);
    const last = receiver.received[receiver.received.length - 1];
    expect(last.json.id).toBe(one.event.id);
  });

  it('should send billing_key.deleted when a key is deleted', async () => {
    const { key } = await customerWithKey(t);
    await t.http.delete(`/v1/billing-keys/${key.id}`).set(bearer(t.serviceKey)).expect(200);
    await dispatch();
    const ev = receiver.received.find((r) => r.json.type === 'billing_key.deleted' && r.json.data.object.id === key.id);
    expect(ev?.json.data.object).toMatchObject({ status: 'deleted' });
    expect(ev?.body).not.toMatch(/billing_key"/);
  });

  it('should tell of the charges of a charge run with the payment and the subscription exactly as the API shows them', async () => {
    const monthly = await createPlan(t);
    const trial = await createPlan(t, { trial_days: 7 });
    const a = await customerWithKey(t);
    const renewing = await createSubscription(t, { customer_id: a.customer.id, plan_id: monthly.id, billing_key_id: a.key.id });
    const b = await customerWithKey(t);
    const trialing = await createSubscription(t, { customer_id: b.customer.id, plan_id: trial.id, billing_key_id: b.key.id });
    expect(trialing.status).toBe('trialing');
    await dispatch();
    const before = receiver.received.length;

    t.clock.set(new Date(renewing.current_period_end as string));
    // (The subscriptions of the tests before are due too.)
    const run = await runCharges(t);
    expect(run.counts).toMatchObject({ failed: 0, unknown: 0, skipped: 0 });
    expect(run.counts.charged).toBeGreaterThanOrEqual(2);
    await dispatch();
    const got = receiver.received.slice(before);
    for (const r of got) {
      const header = r.headers[SIGNATURE_HEADER.toLowerCase()] as string;
      expect(verify(secret, header, r.body, Math.floor(Date.now() / 1000))).toBe(true);
    }

    // The renewal: the next number after the three events of its creation, and the payment as GET shows it.
    const renewal = got.filter((r) => r.json.subscription_id === renewing.id);
    expect(renewal.map((r) => [r.json.type, r.json.sequence])).toEqual([['payment.succeeded', 4]]);
    const payment = await t.http.get(`/v1/payments/${renewal[0].json.data.object.id}`).set(bearer(t.adminKey));
    expect(renewal[0].json.data.object).toEqual({ ...payment.body, version: 4 }); // version: the subscription's sequence
    expect(payment.body).toMatchObject({ status: 'DONE', subscription_id: renewing.id, attempt: 1, charge_run_id: run.id, period: { index: 1 } });
    expect(payment.body.receipt_id).toEqual(expect.any(String));

    // The end of a trial: its first payment, then the subscription active, as GET shows it.
    const started = got.filter((r) => r.json.subscription_id === trialing.id);
    expect(started.map((r) => [r.json.type, r.json.sequence])).toEqual([
      ['payment.succeeded', 2],
      ['subscription.activated', 3],
    ]);
    const { latest_payment: _latest, ...view } = (await t.http.get(`/v1/subscriptions/${trialing.id}`).set(bearer(t.serviceKey))).body;
    expect(started[1].json.data.object).toEqual({ ...view, version: 3 });
    expect(view).toMatchObject({ status: 'active', current_period_start: trialing.trial_end });
  });
});
