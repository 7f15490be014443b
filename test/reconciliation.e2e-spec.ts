import { spawn } from 'node:child_process';
import { createServer, Server } from 'node:http';
import { join } from 'node:path';
import { WebhookDispatcher } from '../src/outbound-webhooks/webhook-dispatcher.service';
import { ReconciliationCron } from '../src/reports/reconciliation.cron';
import { callFakeBootpay, createPlan, createSubscription, customerWithKey, startSiblingApp } from './utils/fixtures';
import { bearer, startTestApp, TestApp } from './utils/test-app';

const DAY = 24 * 60 * 60 * 1000;

/** A SaaS backend's receiver keeping the events it was sent. */
async function startReceiver() {
  const events: { type: string; data: { object: Record<string, unknown> } }[] = [];
  const server: Server = createServer((req, res) => {
    let body = '';
    req.on('data', (c) => (body += c));
    req.on('end', () => {
      events.push(JSON.parse(body));
      res.writeHead(200).end();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as { port: number }).port;
  return { url: `http://127.0.0.1:${port}/hooks`, events, close: () => new Promise<void>((r) => server.close(() => r())) };
}

describe('Nightly reconciliation with Bootpay', () => {
  let t: TestApp;
  let receiver: Awaited<ReturnType<typeof startReceiver>>;
  const dispatch = () => t.app.get(WebhookDispatcher).processDue();
  const runs = async () => (await t.http.get('/v1/reports/reconciliation/runs').set(bearer(t.adminKey))).body;

  beforeAll(async () => {
    t = await startTestApp({ now: new Date('2026-03-10T01:00:00Z'), env: { OUTBOUND_WEBHOOKS_ALLOW_PRIVATE: 'true', RECONCILE_WINDOW_DAYS: '35' } });
    receiver = await startReceiver();
    const ep = await t.http
      .post('/v1/webhook-endpoints')
      .set(bearer(t.adminKey))
      .send({ url: receiver.url, events: ['reconciliation.difference'] });
    expect(ep.status).toBe(201);
  });
  afterAll(async () => {
    await receiver.close();
    await t.fake.webhooksIdle();
    await t.close();
  });

  it('should find a refund made at Bootpay the night after, keep its first-seen date, and tell of it once it persists', async () => {
    // 03-10: a payment whose Bootpay webhooks the service never hears (no feedback_url).
    const publicBaseUrl = t.runtime.config.publicBaseUrl;
    t.runtime.config.publicBaseUrl = undefined;
    const plan = await createPlan(t, { amount: 11000 });
    const { customer, key } = await customerWithKey(t);
    const sub = await createSubscription(t, { customer_id: customer.id, plan_id: plan.id, billing_key_id: key.id });
    t.runtime.config.publicBaseUrl = publicBaseUrl;
    const payment = (await t.http.get(`/v1/payments?subscription_id=${sub.id}`).set(bearer(t.adminKey))).body.data[0];

    // 03-11 04:00 in Seoul: the cron tick, fired by two instances, makes one run; nothing differs.
    const cron = t.app.get(ReconciliationCron);
    const tick1 = new Date('2026-03-10T19:00:00Z');
    t.clock.set(tick1);
    await cron.tick(tick1);
    await cron.tick(new Date(tick1.getTime() + 20_000)); // the same minute, from another instance
    let list = await runs();
    expect(list.data).toHaveLength(1);
    expect(list.data[0]).toMatchObject({ trigger: 'cron', status: 'completed', scheduled_for: tick1.toISOString(), counts: { differences: 0 } });
    expect(list.data[0].checked.payments).toBeGreaterThanOrEqual(1);
    expect(list.data[0].window).toEqual({ from: new Date(tick1.getTime() - 35 * DAY).toISOString(), to: tick1.toISOString() });

    // 03-11 afternoon: refunded in Bootpay's console, the webhook lost.
    t.clock.set(new Date('2026-03-11T05:00:00Z'));
    expect((await callFakeBootpay(t, 'POST', 'cancel', { receipt_id: payment.receipt_id, cancel_id: 'console-1' })).status).toBe(200);

    // 03-12 04:00: the next night finds it; first seen now, not yet persistent, nobody told.
    const tick2 = new Date('2026-03-11T19:00:00Z');
    t.clock.set(tick2);
    await cron.tick(tick2);
    list = await runs();
    expect(list.data.map((r: { scheduled_for: string }) => r.scheduled_for)).toEqual([tick2.toISOString(), tick1.toISOString()]);
    const second = list.data[0];
    expect(second.differences).toEqual(
      expect.arrayContaining([
        expect.objectContaining({
          kind: 'payment',
          id: payment.id,
          subscription_id: sub.id,
          field: 'status',
          local: 'DONE',
          bootpay: 'CANCELED',
          first_seen_at: tick2.toISOString(),
          persistent: false,
        }),
        expect.objectContaining({ kind: 'payment', id: payment.id, field: 'refunded_amount', local: 0, bootpay: 11000, first_seen_at: tick2.toISOString() }),
      ]),
    );
    expect(second.counts).toMatchObject({ new: 2, persistent: 0 });
    await dispatch();
    expect(receiver.events).toEqual([]);
    expect((await t.http.get('/v1/reports/summary').set(bearer(t.adminKey))).body.reconciliation.persistent_differences).toEqual([]);

    // 03-13, an admin triggers a run: still there, first seen on the 12th, now persistent and told once.
    t.clock.set(new Date('2026-03-13T02:00:00Z'));
    const third = await t.http.post('/v1/reports/reconciliation/runs').set(bearer(t.adminKey)).send({ wait: true });
    expect(third.status).toBe(202);
    expect(third.body).toMatchObject({ trigger: 'manual', status: 'completed', counts: { differences: 2, new: 0, persistent: 2 } });
    expect(third.body.differences.every((d: { first_seen_at: string }) => d.first_seen_at === tick2.toISOString())).toBe(true);
    await dispatch();
    expect(receiver.events.map((e) => [e.type, e.data.object.object_id, e.data.object.field])).toEqual(
      expect.arrayContaining([
        ['reconciliation.difference', payment.id, 'status'],
        ['reconciliation.difference', payment.id, 'refunded_amount'],
      ]),
    );
    expect(receiver.events).toHaveLength(2);
    expect(receiver.events[0].data.object).toMatchObject({ first_seen_at: tick2.toISOString(), subscription_id: sub.id, version: 2 });
    const summary = (await t.http.get('/v1/reports/summary').set(bearer(t.adminKey))).body;
    expect(summary.reconciliation.persistent_differences).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ kind: 'payment', object_id: payment.id, field: 'status', first_seen_at: tick2.toISOString(), runs_seen: 2 }),
      ]),
    );

    // Another run tells nobody again.
    t.clock.advance(DAY);
    await t.http.post('/v1/reports/reconciliation/runs').set(bearer(t.adminKey)).send({ wait: true }).expect(202);
    await dispatch();
    expect(receiver.events).toHaveLength(2);
  });

  it('should leave a payment out once it is older than the window, and mark its differences resolved', async () => {
    t.clock.set(new Date('2026-04-20T02:00:00Z')); // more than 35 days after 03-10
    const run = await t.http.post('/v1/reports/reconciliation/runs').set(bearer(t.adminKey)).send({ wait: true });
    expect(run.body).toMatchObject({ status: 'completed', checked: { payments: 0 }, counts: { differences: 0, resolved: 2 } });
    expect((await t.http.get('/v1/reports/summary').set(bearer(t.adminKey))).body.reconciliation.persistent_differences).toEqual([]);
  });

  it('should make one run when the crons of two instances fire the same tick at once', async () => {
    const sibling = await startSiblingApp(t);
    try {
      const tick = new Date('2026-04-20T19:00:00Z');
      t.clock.set(tick);
      await Promise.all([t.app.get(ReconciliationCron).tick(tick), sibling.app.get(ReconciliationCron).tick(new Date(tick.getTime() + 1000))]);
      const list = await runs();
      expect(list.data.filter((r: { scheduled_for: string | null }) => r.scheduled_for === tick.toISOString())).toHaveLength(1);
    } finally {
      await sibling.close();
    }
  });

  it('should refuse the service role', async () => {
    expect((await t.http.get('/v1/reports/reconciliation/runs').set(bearer(t.serviceKey))).status).toBe(403);
    expect((await t.http.post('/v1/reports/reconciliation/runs').set(bearer(t.serviceKey)).send({})).status).toBe(403);
  });
});

/** `npm run cli -- reconcile --json` in a child process; the CLI's clock is the system clock. */
async function reconcileCli(t: TestApp): Promise<{ code: number | null; out: string }> {
  const root = join(__dirname, '..');
  const child = spawn(process.execPath, ['-r', 'ts-node/register/transpile-only', 'src/cli.ts', 'reconcile', '--json'], {
    cwd: root,
    env: {
      PATH: process.env.PATH ?? '',
      HOME: process.env.HOME ?? root,
      NODE_ENV: 'test',
      DATABASE_URL: t.databaseUrl,
      BOOTPAY_CLIENT_KEY: t.fake.credentials.clientKey,
      BOOTPAY_SECRET_KEY: t.fake.credentials.secretKey,
      BOOTPAY_API_BASE_URL: t.fake.apiBaseUrl,
      BILLING_KEY_ENCRYPTION_KEY: t.encryptionKey.toString('hex'),
      LOG_LEVEL: 'error',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout.on('data', (c: Buffer) => (out += c.toString('utf8')));
  child.stderr.on('data', (c: Buffer) => (out += c.toString('utf8')));
  const code = await new Promise<number | null>((resolve) => child.once('exit', (c) => resolve(c)));
  return { code, out };
}

describe('npm run cli -- reconcile', () => {
  let t: TestApp;

  beforeAll(async () => {
    t = await startTestApp({ now: new Date() }); // the CLI checks the window before the system clock
  });
  afterAll(async () => {
    await t.fake.webhooksIdle();
    await t.close();
  });

  it('should exit 0 when nothing differs, and 3 with the difference listed once Bootpay differs', async () => {
    const clean = await reconcileCli(t);
    expect(clean.code).toBe(0);

    const publicBaseUrl = t.runtime.config.publicBaseUrl;
    t.runtime.config.publicBaseUrl = undefined;
    const plan = await createPlan(t, { amount: 11000 });
    const { customer, key } = await customerWithKey(t);
    const sub = await createSubscription(t, { customer_id: customer.id, plan_id: plan.id, billing_key_id: key.id });
    t.runtime.config.publicBaseUrl = publicBaseUrl;
    const payment = (await t.http.get(`/v1/payments?subscription_id=${sub.id}`).set(bearer(t.adminKey))).body.data[0];
    expect((await callFakeBootpay(t, 'POST', 'cancel', { receipt_id: payment.receipt_id, cancel_price: 1000, cancel_id: 'console-cli' })).status).toBe(200);

    const found = await reconcileCli(t);
    expect(found.code).toBe(3);
    const run = JSON.parse(found.out.trim().split('\n').pop()!);
    expect(run).toMatchObject({ trigger: 'cli', status: 'completed' });
    expect(run.differences).toEqual(expect.arrayContaining([expect.objectContaining({ id: payment.id, field: 'refunded_amount', local: 0, bootpay: 1000 })]));
  }, 60_000);
});
