/**
 * Issue 11: outbound webhooks cannot reach inside, cannot map the network, skip inactive endpoints, do not let one
 * slow endpoint hold up the others, and are signed with the real clock.
 */
import { createServer, IncomingMessage, Server, ServerResponse } from 'node:http';
import { ENDPOINT_CLAIM_LIMIT, WebhookDispatcher } from '../src/outbound-webhooks/webhook-dispatcher.service';
import { SIGNATURE_HEADER, verify } from '../src/outbound-webhooks/webhook-signature';
import { createPlan, createSubscription, customerWithKey } from './utils/fixtures';
import { bearer, startTestApp, tableCounts, TestApp } from './utils/test-app';

interface Receiver {
  url: string;
  port: number;
  received: { headers: IncomingMessage['headers']; body: string }[];
  /** Requests being held open (hold mode). */
  held: ServerResponse[];
  /** Most requests open at once. */
  maxOpen: number;
  status: number;
  hold: boolean;
  release(): void;
  close(): Promise<void>;
}

/** Receivers still listening: closed after each test, whatever its outcome. */
const receivers = new Set<Receiver>();
afterEach(async () => {
  await Promise.all([...receivers].map((r) => r.close()));
});

/** A webhook receiver answering `status`, or holding every request open while `hold` is set. */
async function startReceiver(): Promise<Receiver> {
  let open = 0;
  const r: Receiver = {
    url: '',
    port: 0,
    received: [],
    held: [],
    maxOpen: 0,
    status: 200,
    hold: false,
    release: () => {
      for (const res of r.held.splice(0)) res.writeHead(200).end();
    },
    close: () =>
      new Promise((done) => {
        receivers.delete(r);
        r.release();
        server.closeAllConnections();
        server.close(() => done());
      }),
  };
  const server: Server = createServer((req, res) => {
    open++;
    r.maxOpen = Math.max(r.maxOpen, open);
    res.on('close', () => open--);
    let body = '';
    req.on('data', (c) => (body += c));
    req.on('end', () => {
      r.received.push({ headers: req.headers, body });
      if (r.hold) r.held.push(res);
      else res.writeHead(r.status).end();
    });
  });
  await new Promise<void>((done) => server.listen(0, '127.0.0.1', done));
  receivers.add(r);
  r.port = (server.address() as { port: number }).port;
  r.url = `http://127.0.0.1:${r.port}/hooks`;
  return r;
}

/** A port nothing listens on. */
async function closedPort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((done) => s.listen(0, '127.0.0.1', done));
  const port = (s.address() as { port: number }).port;
  await new Promise<void>((done) => s.close(() => done()));
  return port;
}

async function until(what: string, check: () => boolean | Promise<boolean>, tries = 500): Promise<void> {
  for (let i = 0; i < tries; i++) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error(`gave up waiting for ${what}`);
}

async function newSubscription(t: TestApp, planId: string) {
  const { customer, key } = await customerWithKey(t);
  return createSubscription(t, { customer_id: customer.id, plan_id: planId, billing_key_id: key.id });
}

describe('Hardening: outbound webhooks', () => {
  describe('with private addresses refused (the default)', () => {
    let t: TestApp;
    let planId: string;
    const dispatch = () => t.app.get(WebhookDispatcher).processDue();

    beforeAll(async () => {
      t = await startTestApp();
      planId = (await createPlan(t)).id;
    });
    afterAll(async () => {
      await t?.close();
    });

    const inside = [
      'http://127.0.0.1:8080/hooks',
      'http://127.1/hooks',
      'http://2130706433/hooks',
      'http://0.0.0.0/hooks',
      'http://10.0.0.5/hooks',
      'http://172.16.3.4/hooks',
      'http://172.31.255.255/hooks',
      'http://192.168.1.1/hooks',
      'http://169.254.169.254/latest/meta-data/',
      'http://[::1]/hooks',
      'http://[::ffff:127.0.0.1]/hooks',
      'http://[fd00::1]/hooks',
      'http://[fe80::1]/hooks',
      'http://localhost:3000/hooks',
      'http://api.localhost/hooks',
    ];

    it.each(inside)('should refuse to register %s with 400 naming url, storing nothing', async (url) => {
      const before = await tableCounts(t.db);
      const res = await t.http.post('/v1/webhook-endpoints').set(bearer(t.adminKey)).send({ url });
      expect(res.status).toBe(400);
      expect(res.body.details).toEqual([expect.objectContaining({ field: 'url' })]);
      expect(await tableCounts(t.db)).toEqual(before);
    });

    it('should refuse to move an endpoint onto a private address with PATCH', async () => {
      const created = await t.http.post('/v1/webhook-endpoints').set(bearer(t.adminKey)).send({ url: 'https://hooks.example.com/billing' });
      expect(created.status).toBe(201);
      const res = await t.http.patch(`/v1/webhook-endpoints/${created.body.id}`).set(bearer(t.adminKey)).send({ url: 'http://10.1.2.3/x' });
      expect(res.status).toBe(400);
      expect(res.body.details[0].field).toBe('url');
      expect((await t.http.get(`/v1/webhook-endpoints/${created.body.id}`).set(bearer(t.adminKey))).body.url).toBe('https://hooks.example.com/billing');
      await t.http.patch(`/v1/webhook-endpoints/${created.body.id}`).set(bearer(t.adminKey)).send({ active: false }).expect(200);
    });

    it('should not connect to a private address at delivery time, even for an endpoint registered when it was allowed (by name or by address)', async () => {
      const receiver = await startReceiver();
      // As if the names had resolved to public addresses at registration and to this host now (DNS rebinding).
      t.runtime.config.outboundWebhooks.allowPrivate = true;
      const byAddress = await t.http.post('/v1/webhook-endpoints').set(bearer(t.adminKey)).send({ url: receiver.url });
      const byName = await t.http
        .post('/v1/webhook-endpoints')
        .set(bearer(t.adminKey))
        .send({ url: `http://localhost:${receiver.port}/hooks` });
      t.runtime.config.outboundWebhooks.allowPrivate = false;
      expect([byAddress.status, byName.status]).toEqual([201, 201]);

      await newSubscription(t, planId);
      expect(await dispatch()).toBe(6);
      expect(receiver.received).toHaveLength(0);
      for (const id of [byAddress.body.id, byName.body.id]) {
        const list = await t.http.get(`/v1/webhook-endpoints/${id}/deliveries`).set(bearer(t.adminKey));
        expect(list.body.data).toHaveLength(3);
        for (const d of list.body.data) expect(d).toMatchObject({ status: 'pending', attempts: 1, delivered_at: null });
      }
      for (const id of [byAddress.body.id, byName.body.id]) {
        await t.http.patch(`/v1/webhook-endpoints/${id}`).set(bearer(t.adminKey)).send({ active: false }).expect(200);
      }
    });
  });

  describe('with private addresses allowed (OUTBOUND_WEBHOOKS_ALLOW_PRIVATE=true)', () => {
    let t: TestApp;
    let planId: string;
    const dispatch = () => t.app.get(WebhookDispatcher).processDue();

    beforeAll(async () => {
      t = await startTestApp({ env: { OUTBOUND_WEBHOOKS_ALLOW_PRIVATE: 'true' } });
      planId = (await createPlan(t)).id;
    });
    afterAll(async () => {
      await t?.close();
    });

    async function endpoint(url: string): Promise<{ id: string; secret: string }> {
      const res = await t.http.post('/v1/webhook-endpoints').set(bearer(t.adminKey)).send({ url });
      expect(res.status).toBe(201);
      return res.body;
    }
    const off = (id: string) => t.http.patch(`/v1/webhook-endpoints/${id}`).set(bearer(t.adminKey)).send({ active: false }).expect(200);
    const deliveries = async (id: string) => (await t.http.get(`/v1/webhook-endpoints/${id}/deliveries?limit=100`).set(bearer(t.adminKey))).body.data;

    it('should show the same failure for a closed port as for an open port that answered', async () => {
      const open = await startReceiver();
      open.status = 404;
      const closed = await endpoint(`http://127.0.0.1:${await closedPort()}/hooks`);
      const answered = await endpoint(open.url);
      await newSubscription(t, planId);
      await dispatch();
      expect(open.received).toHaveLength(3);
      const strip = (d: Record<string, unknown>) => ({
        status: d.status,
        attempts: d.attempts,
        last_status_code: d.last_status_code,
        last_error: d.last_error,
      });
      const a = (await deliveries(closed.id)).map(strip);
      const b = (await deliveries(answered.id)).map(strip);
      expect(a).toHaveLength(3);
      expect(a).toEqual(b);
      expect(JSON.stringify(a)).not.toMatch(/ECONNREFUSED|404|refused/i);
      await off(closed.id);
      await off(answered.id);
      await open.close();
    });

    it('should send nothing to a deactivated endpoint and refuse to re-send its deliveries with 409', async () => {
      const receiver = await startReceiver();
      const ep = await endpoint(receiver.url);
      await newSubscription(t, planId);
      await dispatch();
      expect(receiver.received).toHaveLength(3);
      const delivered = (await deliveries(ep.id))[0];

      await off(ep.id);
      await newSubscription(t, planId);
      await dispatch();
      expect(receiver.received).toHaveLength(3);
      const resend = await t.http.post(`/v1/webhook-deliveries/${delivered.id}/resend`).set(bearer(t.adminKey));
      expect(resend.status).toBe(409);
      expect(resend.body.code).toBe('webhook_endpoint_inactive');
      await dispatch();
      expect(receiver.received).toHaveLength(3);
      await receiver.close();
    });

    it('should sign with the real time even when the test clock is elsewhere', async () => {
      const receiver = await startReceiver();
      const ep = await endpoint(receiver.url);
      t.clock.set(new Date('2029-06-01T00:00:00Z'));
      await newSubscription(t, planId);
      await dispatch();
      expect(receiver.received.length).toBeGreaterThan(0);
      for (const r of receiver.received) {
        const header = r.headers[SIGNATURE_HEADER.toLowerCase()] as string;
        // What a receiver does: check against its own clock, with the README's 300 s tolerance.
        expect(verify(ep.secret, header, r.body, Math.floor(Date.now() / 1000))).toBe(true);
        expect(verify(ep.secret, header, r.body, Math.floor(t.clock.now().getTime() / 1000))).toBe(false);
      }
      await off(ep.id);
      await receiver.close();
    });
  });

  describe('one slow endpoint', () => {
    let t: TestApp;
    const TIMEOUT_MS = 20_000;

    beforeAll(async () => {
      t = await startTestApp({
        env: {
          OUTBOUND_WEBHOOKS_ALLOW_PRIVATE: 'true',
          OUTBOUND_WEBHOOK_POLL_MS: '20',
          OUTBOUND_WEBHOOK_ENDPOINT_CONCURRENCY: '2',
          OUTBOUND_WEBHOOK_TIMEOUT_MS: String(TIMEOUT_MS),
        },
      });
    });
    afterAll(async () => {
      await t?.close();
    });

    it('should not delay deliveries to the others, has at most its concurrency in flight, and its lease outlasts the time-out', async () => {
      const slow = await startReceiver();
      slow.hold = true;
      const fast = await startReceiver();
      for (const url of [slow.url, fast.url]) {
        expect((await t.http.post('/v1/webhook-endpoints').set(bearer(t.adminKey)).send({ url })).status).toBe(201);
      }
      const plan = await createPlan(t);
      for (let i = 0; i < 6; i++) await newSubscription(t, plan.id);

      // Every event reaches the fast endpoint while the slow one still holds its first requests unanswered.
      await until('the fast endpoint to get all 18 events', () => fast.received.length === 18);
      expect(slow.held.length).toBeGreaterThan(0);
      expect(slow.received.length).toBeLessThan(18);
      expect(slow.maxOpen).toBeLessThanOrEqual(2);

      // The deliveries in flight are leased for longer than a delivery may take.
      const leased: { next_attempt_at: Date }[] = (
        await t.db.query(
          `SELECT d.next_attempt_at FROM webhook_deliveries d JOIN webhook_endpoints e ON e.id = d.endpoint_id
           WHERE e.url = $1 AND d.status = 'pending' AND d.attempts = 0 AND d.next_attempt_at > $2`,
          [slow.url, t.clock.now()],
        )
      ).rows;
      expect(leased.length).toBeGreaterThan(0);
      expect(leased.length).toBeLessThanOrEqual(ENDPOINT_CLAIM_LIMIT);
      for (const l of leased) expect(l.next_attempt_at.getTime() - t.clock.now().getTime()).toBeGreaterThan(ENDPOINT_CLAIM_LIMIT * TIMEOUT_MS);

      // Once it answers, it gets the rest.
      slow.hold = false;
      slow.release();
      await until('the slow endpoint to get all 18 events', () => slow.received.length === 18);
      expect(slow.maxOpen).toBeLessThanOrEqual(2);
      await slow.close();
      await fast.close();
    });
  });
});
