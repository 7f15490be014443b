import { createServer, Server } from 'node:http';
import { WebhookDispatcher } from '../src/outbound-webhooks/webhook-dispatcher.service';
import { SIGNATURE_HEADER, verify } from '../src/outbound-webhooks/webhook-signature';
import { createBillingKey, createPlan, createSubscription, customerWithKey, runCharges, subscriptionAction } from './utils/fixtures';
import { bearer, startTestApp, TestApp } from './utils/test-app';

type Obj = Record<string, unknown> & { id: string; version: number };
interface WebhookEvent {
  id: string;
  type: string;
  sequence: number | null;
  subscription_id: string | null;
  data: { object: Obj; subscription?: Obj; payment?: Obj };
}

/**
 * The example consumer of README ("Webhooks to the SaaS backend", the consumer rule): every object an event carries
 * (data.object, data.subscription, data.payment) is a snapshot with an id and a version; keep the highest version per
 * id. Payments and refunds are never compared with the subscription's sequence, so none is dropped for its order.
 */
class Consumer {
  readonly objects = new Map<string, Obj>();
  private readonly seen = new Set<string>();

  apply(event: WebhookEvent): void {
    if (this.seen.has(event.id)) return; // a repeated delivery
    this.seen.add(event.id);
    for (const o of [event.data.object, event.data.subscription, event.data.payment]) {
      if (!o) continue;
      const held = this.objects.get(o.id);
      if (!held || held.version < o.version) this.objects.set(o.id, o);
    }
  }

  /** The objects without their versions, as the API shows them. */
  state(): Record<string, Record<string, unknown>> {
    return Object.fromEntries([...this.objects.entries()].map(([id, { version: _v, ...o }]) => [id, o]).sort(([a], [b]) => String(a).localeCompare(String(b))));
  }
}

/** The rule README gave before: per subscription, drop any event whose sequence is not higher than the last applied. */
class HighestSequenceConsumer {
  readonly objects = new Map<string, Record<string, unknown>>();
  private readonly last = new Map<string, number>();

  apply(event: WebhookEvent): void {
    if (event.subscription_id && event.sequence !== null) {
      if ((this.last.get(event.subscription_id) ?? 0) >= event.sequence) return;
      this.last.set(event.subscription_id, event.sequence);
    }
    this.objects.set(event.data.object.id, event.data.object);
  }
}

/** A deterministic PRNG (mulberry32), so a failing order can be replayed. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let x = Math.imul(a ^ (a >>> 15), 1 | a);
    x = (x + Math.imul(x ^ (x >>> 7), 61 | x)) ^ x;
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296;
  };
}

function shuffled<T>(items: readonly T[], random: () => number): T[] {
  const out = [...items];
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [out[i], out[j]] = [out[j], out[i]];
  }
  return out;
}

/**
 * A SaaS backend's receiver: verifies the signature on the raw body, then applies the event. It can be down (503,
 * nothing applied), fail at random before applying (500), or apply and then fail (the answer lost: a repeat follows).
 */
async function startReceiver(t: TestApp, random: () => number) {
  const consumer = new Consumer();
  const arrivals: WebhookEvent[] = [];
  const ctl = { secret: '', down: false, failRate: 0, failOnceTypes: new Set<string>(), badSignatures: 0 };
  const server: Server = createServer((req, res) => {
    let body = '';
    req.on('data', (c) => (body += c));
    req.on('end', () => {
      if (ctl.down) return void res.writeHead(503).end();
      const header = String(req.headers[SIGNATURE_HEADER.toLowerCase()] ?? '');
      // Signed at the sender's real time (the test clock is months away from it); checked within five minutes.
      const nowSeconds = Math.floor(Date.now() / 1000);
      if (!verify(ctl.secret, header, body, nowSeconds) && !verify(ctl.secret, header, body, Math.floor(t.clock.now().getTime() / 1000))) {
        ctl.badSignatures++;
        return void res.writeHead(400).end();
      }
      const event = JSON.parse(body) as WebhookEvent;
      if (ctl.failOnceTypes.delete(event.type)) return void res.writeHead(500).end();
      const roll = random();
      if (roll < ctl.failRate / 2) return void res.writeHead(500).end(); // failed before applying
      arrivals.push(event);
      consumer.apply(event);
      res.writeHead(roll < ctl.failRate ? 500 : 200).end(); // applied, but the answer says otherwise half the time
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as { port: number }).port;
  return { url: `http://127.0.0.1:${port}/hooks`, consumer, arrivals, ctl, close: () => new Promise<void>((r) => server.close(() => r())) };
}

describe('A webhook consumer applying the README rule ends with the API state', () => {
  let t: TestApp;
  let receiver: Awaited<ReturnType<typeof startReceiver>>;
  const HOUR = 60 * 60 * 1000;

  beforeAll(async () => {
    t = await startTestApp({ env: { OUTBOUND_WEBHOOKS_ALLOW_PRIVATE: 'true' } });
    receiver = await startReceiver(t, prng(20261126));
    const ep = await t.http.post('/v1/webhook-endpoints').set(bearer(t.adminKey)).send({ url: receiver.url, description: 'consumer' });
    expect(ep.status).toBe(201);
    receiver.ctl.secret = ep.body.secret;
  });
  afterAll(async () => {
    await receiver.close();
    await t.fake.webhooksIdle();
    await t.close();
  });

  const dispatch = () => t.app.get(WebhookDispatcher).processDue();
  const ok = async (res: Promise<{ status: number; body: unknown }> | { status: number; body: unknown }, status = 200) => {
    const r = await res;
    if (r.status !== status) throw new Error(`expected ${status}, got ${r.status}: ${JSON.stringify(r.body)}`);
    return r.body as Record<string, any>;
  };
  const pendingDeliveries = async () => Number((await t.db.query(`SELECT count(*)::int AS n FROM webhook_deliveries WHERE status = 'pending'`)).rows[0].n);

  /** What the API shows now: every subscription, its payments (but reservations and open attempts) and refunds. */
  async function apiState(subscriptionIds: string[]): Promise<Record<string, Record<string, unknown>>> {
    const out: Record<string, Record<string, unknown>> = {};
    for (const id of subscriptionIds) {
      const { latest_payment: _latest, ...sub } = await ok(t.http.get(`/v1/subscriptions/${id}`).set(bearer(t.serviceKey)));
      out[id] = sub;
      const payments = await ok(t.http.get(`/v1/payments?subscription_id=${id}&limit=100`).set(bearer(t.adminKey)));
      for (const p of payments.data as Record<string, any>[]) {
        if (['READY', 'IN_PROGRESS', 'UNKNOWN'].includes(p.status)) continue;
        out[p.id] = p;
        const refunds = await ok(t.http.get(`/v1/payments/${p.id}/refunds?limit=100`).set(bearer(t.adminKey)));
        for (const r of refunds.data as Record<string, any>[]) if (['succeeded', 'failed'].includes(r.status)) out[r.id] = r;
      }
    }
    return Object.fromEntries(Object.entries(out).sort(([a], [b]) => a.localeCompare(b)));
  }

  it('should hold every change after retries, repeats and an outage, and after any order of the same deliveries', async () => {
    const monthly = await createPlan(t, { amount: 11000 });
    const bigger = await createPlan(t, { name: 'Team', amount: 33000 });
    const trial = await createPlan(t, { amount: 22000, trial_days: 7 });
    const a = await customerWithKey(t);
    const subA = await createSubscription(t, { customer_id: a.customer.id, plan_id: monthly.id, billing_key_id: a.key.id });
    const b = await customerWithKey(t);
    const subB = await createSubscription(t, { customer_id: b.customer.id, plan_id: trial.id, billing_key_id: b.key.id });
    const c = await customerWithKey(t, { card_no: '4111110000002051' }); // approved once, then declined
    const subC = await createSubscription(t, { customer_id: c.customer.id, plan_id: monthly.id, billing_key_id: c.key.id });
    const d = await customerWithKey(t);
    const subD = await createSubscription(t, { customer_id: d.customer.id, plan_id: monthly.id, billing_key_id: d.key.id });
    const ids = [subA.id, subB.id, subC.id, subD.id];
    receiver.ctl.failRate = 0.3;
    await dispatch();

    // A refund whose delivery fails, then a pause of the same subscription that is delivered first.
    t.clock.advance(HOUR);
    const paymentA = (await ok(t.http.get(`/v1/payments?subscription_id=${subA.id}`).set(bearer(t.adminKey)))).data[0];
    receiver.ctl.failOnceTypes.add('refund.succeeded');
    await ok(t.http.post(`/v1/payments/${paymentA.id}/refunds`).set(bearer(t.adminKey)).send({ amount: 3000, reason: 'goodwill' }), 201);
    await dispatch();
    await ok(subscriptionAction(t, subA.id, 'pause', { reason: 'travelling' }, t.adminKey));
    await dispatch();
    await ok(subscriptionAction(t, subA.id, 'resume', { reason: 'back' }, t.adminKey));
    // The changes that used to send nothing.
    await ok(subscriptionAction(t, subA.id, 'cancel', { at_period_end: true, reason: 'too expensive' }));
    await dispatch();
    await ok(subscriptionAction(t, subA.id, 'reactivate', {}));
    await ok(subscriptionAction(t, subA.id, 'change-plan', { plan_id: bigger.id, proration: 'period_end' }));
    const newKey = await createBillingKey(t, a.customer.id);
    await ok(subscriptionAction(t, subA.id, 'billing-key', { billing_key_id: newKey.id }));
    await dispatch();

    // An outage of the receiver while a trial ends and a customer leaves with a refund of the unused days.
    receiver.ctl.down = true;
    t.clock.set(new Date(subB.trial_end as string));
    await runCharges(t);
    await ok(subscriptionAction(t, subD.id, 'cancel', { at_period_end: false, reason: 'moved', refund_unused: true }, t.adminKey));
    await dispatch();
    t.clock.advance(HOUR);
    await dispatch();
    receiver.ctl.down = false;

    // A month on: A renews on the bigger plan, C is declined and recovers with a new key.
    t.clock.set(new Date(subA.current_period_end as string));
    await runCharges(t);
    await dispatch();
    expect((await ok(t.http.get(`/v1/subscriptions/${subC.id}`).set(bearer(t.serviceKey)))).status).toBe('past_due');
    const keyC = await createBillingKey(t, c.customer.id);
    await ok(subscriptionAction(t, subC.id, 'billing-key', { billing_key_id: keyC.id }));

    // Retries until everything is delivered (the random failures stop after a while, so this ends).
    for (let round = 0; (await pendingDeliveries()) > 0; round++) {
      if (round === 8) receiver.ctl.failRate = 0;
      if (round > 30) throw new Error('deliveries still pending');
      t.clock.advance(6 * HOUR);
      await dispatch();
    }
    expect(await pendingDeliveries()).toBe(0);
    expect(receiver.ctl.badSignatures).toBe(0);

    const expected = await apiState(ids);
    // The billing keys it heard of (billing_key.deleted) as the API shows them.
    for (const [id, o] of Object.entries(receiver.consumer.state())) {
      if ('bootpay_receipt_id' in o) expected[id] = await ok(t.http.get(`/v1/billing-keys/${id}`).set(bearer(t.adminKey)));
    }
    const sorted = Object.fromEntries(Object.entries(expected).sort(([x], [y]) => x.localeCompare(y)));
    expect(receiver.consumer.state()).toEqual(sorted);
    // Something of every kind was there to lose.
    const types = new Set(receiver.arrivals.map((e) => e.type));
    for (const type of [
      'subscription.cancel_scheduled',
      'subscription.reactivated',
      'subscription.plan_change_scheduled',
      'subscription.billing_key_changed',
      'subscription.plan_changed',
      'subscription.past_due',
      'payment.failed',
      'refund.succeeded',
    ]) {
      expect(types).toContain(type);
    }
    expect(Object.values(expected).filter((o) => o.cancel_id)).toHaveLength(2); // two refunds
    expect(Object.values(expected).filter((o) => o.bootpay_receipt_id)).toHaveLength(1); // D's key, deleted when D left

    // Every event of the audit trail was sent, numbered 1..n without a gap.
    for (const id of ids) {
      const trail = (await ok(t.http.get(`/v1/subscriptions/${id}/events?limit=100`).set(bearer(t.serviceKey)))).data as { sequence: number }[];
      const received = [...new Set(receiver.arrivals.filter((e) => e.subscription_id === id).map((e) => e.sequence))].sort((x, y) => x! - y!);
      expect(received).toEqual(trail.map((_, i) => i + 1));
      expect(trail.map((e) => e.sequence)).toEqual(trail.map((_, i) => i + 1));
    }

    // The rule README gave before lost the refund that came after the pause.
    const refundEvent = receiver.arrivals.find((e) => e.type === 'refund.succeeded' && e.subscription_id === subA.id)!;
    const pauseEvent = receiver.arrivals.find((e) => e.type === 'subscription.paused')!;
    expect(receiver.arrivals.indexOf(refundEvent)).toBeGreaterThan(receiver.arrivals.indexOf(pauseEvent));
    const old = new HighestSequenceConsumer();
    for (const e of receiver.arrivals) old.apply(e);
    expect(old.objects.has(refundEvent.data.object.id)).toBe(false);

    // Any order of the same deliveries, with repeats, ends the same.
    const random = prng(7);
    const unique = [...new Map(receiver.arrivals.map((e) => [e.id, e])).values()];
    for (let i = 0; i < 25; i++) {
      const replay = shuffled([...unique, ...unique.filter(() => random() < 0.2)], random);
      const consumer = new Consumer();
      for (const e of replay) consumer.apply(e);
      expect(consumer.state()).toEqual(sorted);
    }
  });
});
