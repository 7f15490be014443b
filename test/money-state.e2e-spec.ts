import { randomBytes } from 'node:crypto';
import { DataSource } from 'typeorm';
import {
  createPlan,
  createSubscription,
  customerWithKey,
  getSubscription,
  ledgerChargesOf,
  paymentDetails,
  postBootpayWebhook,
  runCharges,
  startSiblingApp,
  startWebhookSink,
  subscriptionAction,
  WebhookSink,
} from './utils/fixtures';
import { bearer, startTestApp, T0, TestApp } from './utils/test-app';

/**
 * Where two writers of money state meet: late and lost Bootpay results against pauses, plan changes and cancels,
 * receipts that do not fit their payment, local faults, and the due-by-business-day rule. Each case was seen
 * failing before the ledger's single transition authority.
 */

const MINUTE = 60_000;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;
/** Period starts of a monthly subscription anchored at T0 (2026-01-15 10:00 KST): the 15th, 01:00Z. */
const month = (i: number) => new Date(Date.UTC(2026, i, 15, 1, 0, 0));
const plus = (d: Date, ms: number) => new Date(d.getTime() + ms);
const iso = (d: Date) => d.toISOString();
const periodPrefix = (subId: string, start: Date) => `s${subId.replace(/-/g, '')}-${Math.floor(start.getTime() / 1000)}-`;

type Sub = {
  id: string;
  status: string;
  plan_id: string;
  current_period_start: string | null;
  current_period_end: string | null;
  next_charge_at: string | null;
};

async function flags(t: TestApp, subscriptionId: string) {
  const res = await t.http.get(`/v1/finance-flags?subscription_id=${subscriptionId}`).set(bearer(t.adminKey));
  expect(res.status).toBe(200);
  return res.body.data as Array<{ kind: string; payment_id: string | null; message: string }>;
}

/** Approved charges Bootpay holds for one period of a subscription, and how much of each was refunded. */
const chargesFor = (t: TestApp, subId: string, start: Date) => ledgerChargesOf(t, subId).filter((c) => c.order_id.startsWith(periodPrefix(subId, start)));
const netChargedFor = (t: TestApp, subId: string, start: Date) => chargesFor(t, subId, start).reduce((sum, c) => sum + c.price - c.cancelled_price, 0);

describe('Money state: reservations whose result is late or lost', () => {
  let t: TestApp;
  let sink: WebhookSink;
  let serviceUrl: string | undefined;

  beforeEach(async () => {
    t = await startTestApp();
    sink = await startWebhookSink();
    serviceUrl = t.runtime.config.publicBaseUrl;
  });
  afterEach(async () => {
    await t.fake.webhooksIdle();
    await sink.close();
    await t.close();
  });

  const reservationPlan = (amount = 11000) => createPlan(t, { name: `Reserved ${amount}`, amount, interval: 'month', charge_mode: 'reservation' });
  async function subscribe(planId: string): Promise<Sub> {
    const { customer, key } = await customerWithKey(t);
    return (await createSubscription(t, { customer_id: customer.id, plan_id: planId, billing_key_id: key.id })) as Sub;
  }
  /** Bootpay executes what is due at `when`; its webhooks go wherever the reservations said (the sink: lost). */
  async function executeAt(when: Date) {
    t.clock.set(when);
    const executions = await t.fake.executeDueReservations(t.clock.now());
    await t.fake.webhooksIdle();
    return executions;
  }
  /** From now on Bootpay's webhooks for new charges and reservations are lost (they go to the sink). */
  const loseWebhooks = () => (t.runtime.config.publicBaseUrl = sink.url);
  const deliverWebhooks = () => (t.runtime.config.publicBaseUrl = serviceUrl);

  it('charges a period once when its reservation executed unseen and the subscription is then paused and resumed, and charges the next period on time', async () => {
    const plan = await reservationPlan();
    loseWebhooks();
    const sub = await subscribe(plan.id);
    expect((await executeAt(month(1))).map((e) => e.result)).toEqual(['success']);
    expect((await paymentDetails(t, sub.id)).find((p) => p.period.index === 1)).toMatchObject({ status: 'READY' });

    t.clock.set(plus(month(1), HOUR));
    const paused = await subscriptionAction(t, sub.id, 'pause', { reason: 'travelling' }, t.adminKey);
    expect(paused.status).toBe(200);
    // The executed reservation was asked of Bootpay first: the period it paid is applied, then paused.
    expect(paused.body).toMatchObject({ status: 'paused', current_period_start: iso(month(1)), current_period_end: iso(month(2)) });

    t.clock.set(plus(month(1), 2 * HOUR));
    deliverWebhooks();
    const resumed = await subscriptionAction(t, sub.id, 'resume', {}, t.adminKey);
    expect(resumed.status).toBe(200);
    expect(resumed.body).toMatchObject({ status: 'active', current_period_end: iso(month(2)), next_charge_at: iso(month(2)) });
    expect(chargesFor(t, sub.id, month(1))).toHaveLength(1);
    expect(ledgerChargesOf(t, sub.id)).toHaveLength(2);

    // The next period: reserved again after the resume, executed and reported; charged once, on time.
    await executeAt(month(2));
    await runCharges(t);
    expect(chargesFor(t, sub.id, month(2))).toHaveLength(1);
    expect(await getSubscription(t, sub.id)).toMatchObject({ status: 'active', current_period_start: iso(month(2)), current_period_end: iso(month(3)) });
    expect(ledgerChargesOf(t, sub.id)).toHaveLength(3);
  });

  it('charges a period once when its reservation executed unseen and the plan is then changed now', async () => {
    const plan = await reservationPlan();
    const bigger = await reservationPlan(22000);
    loseWebhooks();
    const sub = await subscribe(plan.id);
    await executeAt(month(1));

    t.clock.set(plus(month(1), HOUR));
    deliverWebhooks();
    const changed = await subscriptionAction(t, sub.id, 'change-plan', { plan_id: bigger.id, proration: 'now' });
    expect(changed.status).toBe(200);
    expect(changed.body).toMatchObject({ plan_id: bigger.id, status: 'active' });
    // The period the reservation paid is paid once at the old price; the change is prorated on top, not charged again.
    expect(chargesFor(t, sub.id, month(1)).filter((c) => c.price === 11000)).toHaveLength(1);
    const periodPayments = (await paymentDetails(t, sub.id)).filter((p) => p.kind === 'period' && p.period.start === iso(month(1)) && p.status === 'DONE');
    expect(periodPayments).toHaveLength(1);

    // Later runs charge the new plan from the period's end, once.
    await runCharges(t);
    t.clock.set(month(2));
    await t.fake.executeDueReservations(t.clock.now());
    await t.fake.webhooksIdle();
    await runCharges(t);
    const sub2 = await getSubscription(t, sub.id);
    expect(sub2).toMatchObject({ status: 'active', plan_id: bigger.id, current_period_start: iso(month(2)) });
    expect(chargesFor(t, sub.id, month(2)).map((c) => c.price)).toEqual([22000]);
  });

  it('sends nothing after a cancel when a reservation was never confirmed, and refunds it when Bootpay executes it anyway', async () => {
    const plan = await reservationPlan();
    // The reservation is made at Bootpay, but its answer is lost: the service holds it unconfirmed (no reserve_id).
    // The key is shared with another subscription, so it stays alive at Bootpay after the cancel.
    const owner = await customerWithKey(t);
    t.fake.setFaults({ timeout_after_charge: { count: 1, mode: 'drop', route: 'subscribe/payment/reserve' } });
    const sub = (await createSubscription(t, { customer_id: owner.customer.id, plan_id: plan.id, billing_key_id: owner.key.id })) as Sub;
    t.fake.setFaults({});
    await createSubscription(t, { customer_id: owner.customer.id, plan_id: (await createPlan(t, { amount: 5000 })).id, billing_key_id: owner.key.id });
    expect((await paymentDetails(t, sub.id)).find((p) => p.period.index === 1)).toMatchObject({ status: 'READY', reserve_id: null });

    t.clock.set(plus(month(0), DAY));
    const canceled = await subscriptionAction(t, sub.id, 'cancel', { at_period_end: false, reason: 'leaving' });
    expect(canceled.status).toBe(200);
    expect(canceled.body.status).toBe('canceled');

    // Bootpay still executes the reservation it holds (nothing could cancel it there); its webhook reaches the service.
    await executeAt(month(1));
    await t.fake.webhooksIdle();
    // The runs send nothing for it, and the late charge is refunded in full and flagged for finance.
    for (const at of [plus(month(1), 11 * MINUTE), plus(month(1), DAY)]) {
      t.clock.set(at);
      await runCharges(t);
      await t.fake.webhooksIdle();
    }
    expect(chargesFor(t, sub.id, month(1))).toHaveLength(1);
    expect(netChargedFor(t, sub.id, month(1))).toBe(0);
    expect(await getSubscription(t, sub.id)).toMatchObject({ status: 'canceled' });
    // Withdrawn unsent (finance told to look at Bootpay), then executed there anyway: refunded and flagged.
    expect((await flags(t, sub.id)).map((f) => f.kind).sort()).toEqual(['charge_not_applied', 'reservation_unconfirmed']);
    const late = (await paymentDetails(t, sub.id)).find((p) => p.period.index === 1)!;
    expect(late).toMatchObject({ status: 'CANCELED', balance_amount: 0 });
  });

  it('never charges a canceled subscription for a reservation whose registration Bootpay refused (503)', async () => {
    const plan = await reservationPlan();
    t.fake.setFaults({ fail_next: { count: 1, status: 503, route: 'subscribe/payment/reserve' } });
    const sub = await subscribe(plan.id);
    t.fake.setFaults({});
    const canceled = await subscriptionAction(t, sub.id, 'cancel', { at_period_end: false, reason: 'leaving' });
    expect(canceled.status).toBe(200);
    for (const at of [month(1), plus(month(1), 11 * MINUTE), plus(month(1), DAY)]) {
      await executeAt(at);
      await runCharges(t);
    }
    expect(ledgerChargesOf(t, sub.id)).toHaveLength(1); // the first period, charged at creation
    expect(chargesFor(t, sub.id, month(1))).toEqual([]);
  });

  it('keeps a paused subscription paused when a reservation result arrives meanwhile, and refunds it', async () => {
    const plan = await reservationPlan();
    loseWebhooks();
    t.fake.setFaults({ timeout_after_charge: { count: 1, mode: 'drop', route: 'subscribe/payment/reserve' } });
    const sub = await subscribe(plan.id);
    t.fake.setFaults({});
    t.clock.set(plus(month(0), DAY));
    expect((await subscriptionAction(t, sub.id, 'pause', { reason: 'travelling' }, t.adminKey)).status).toBe(200);

    // Bootpay executes the unconfirmed reservation; its result reaches the service while it is paused.
    const [execution] = await executeAt(month(1));
    expect(execution.result).toBe('success');
    const held = sink.received.find((w) => w.receipt_id === execution.receipt_id)!;
    expect((await postBootpayWebhook(t, held)).body).toEqual({ success: true });
    await t.fake.webhooksIdle();

    expect(await getSubscription(t, sub.id)).toMatchObject({ status: 'paused', current_period_end: iso(month(1)) });
    expect(netChargedFor(t, sub.id, month(1))).toBe(0);
    // Withdrawn unsent (finance told to look at Bootpay), then executed there anyway: refunded and flagged.
    expect((await flags(t, sub.id)).map((f) => f.kind).sort()).toEqual(['charge_not_applied', 'reservation_unconfirmed']);
  });
});

describe('Money state: lifecycle edges', () => {
  let t: TestApp;

  beforeEach(async () => {
    t = await startTestApp();
  });
  afterEach(async () => {
    await t.fake.webhooksIdle();
    await t.close();
  });

  async function subscribe(planId: string): Promise<Sub & { key: { id: string; bootpay_receipt_id: string } }> {
    const { customer, key } = await customerWithKey(t);
    const sub = (await createSubscription(t, { customer_id: customer.id, plan_id: planId, billing_key_id: key.id })) as Sub;
    return { ...sub, key };
  }

  it('ends a subscription set to cancel at period end that was paused and is resumed after its period: nothing is charged', async () => {
    const plan = await createPlan(t, { amount: 11000 });
    const sub = await subscribe(plan.id);
    expect((await subscriptionAction(t, sub.id, 'cancel', { at_period_end: true, reason: 'leaving' })).status).toBe(200);
    t.clock.set(plus(month(0), DAY));
    expect((await subscriptionAction(t, sub.id, 'pause', { reason: 'travelling' }, t.adminKey)).status).toBe(200);
    t.clock.set(plus(month(1), DAY));
    const resumed = await subscriptionAction(t, sub.id, 'resume', {}, t.adminKey);
    expect(resumed.status).toBe(200);
    expect(resumed.body).toMatchObject({ status: 'canceled', next_charge_at: null });
    await runCharges(t);
    expect(ledgerChargesOf(t, sub.id)).toHaveLength(1);
  });

  it('applies a pending plan change when resumed after the period, and charges the new price', async () => {
    const plan = await createPlan(t, { amount: 11000 });
    const next = await createPlan(t, { name: 'Team', amount: 33000 });
    const sub = await subscribe(plan.id);
    expect((await subscriptionAction(t, sub.id, 'change-plan', { plan_id: next.id, proration: 'period_end' })).status).toBe(200);
    t.clock.set(plus(month(0), DAY));
    expect((await subscriptionAction(t, sub.id, 'pause', { reason: 'travelling' }, t.adminKey)).status).toBe(200);
    const R = plus(month(1), 3 * DAY);
    t.clock.set(R);
    const resumed = await subscriptionAction(t, sub.id, 'resume', {}, t.adminKey);
    expect(resumed.status).toBe(200);
    expect(resumed.body).toMatchObject({ status: 'active', plan_id: next.id, pending_plan_id: null, current_period_start: iso(R) });
    expect(ledgerChargesOf(t, sub.id).map((c) => c.price)).toEqual([11000, 33000]);
  });

  it('never turns a billing key it cannot decrypt into a decline: nothing is sent, the subscription is left as it was, and the run fails saying why', async () => {
    const plan = await createPlan(t, { amount: 11000 });
    const good = await subscribe(plan.id);
    const broken = await subscribe(plan.id);
    // The broken key's row holds a ciphertext made for another row: it cannot be decrypted (as with another key).
    await t.db.query(`UPDATE billing_keys SET billing_key_ciphertext = (SELECT billing_key_ciphertext FROM billing_keys WHERE id = $1) WHERE id = $2`, [
      good.key.id,
      broken.key.id,
    ]);
    t.clock.set(month(1));
    const run = await runCharges(t);
    expect(run.status).toBe('failed');
    expect(run.counts).toMatchObject({ charged: 1, failed: 0, local_faults: 1 });
    expect((await t.http.get(`/v1/charge-runs/${run.id}`).set(bearer(t.adminKey))).body.error).toMatch(/BILLING_KEY_ENCRYPTION_KEY/);
    expect(await getSubscription(t, broken.id)).toMatchObject({
      status: 'active',
      next_charge_at: iso(month(1)),
      dunning: { attempts: 0, last_failure: null },
    });
    expect(chargesFor(t, broken.id, month(1))).toEqual([]);
    expect(t.fake.ledger().failed_charges).toEqual([]);
    expect(t.fake.ledger().billing_keys.find((k) => k.receipt_id === broken.key.bootpay_receipt_id)!.status).toBe('active');
    expect((await t.http.get(`/v1/billing-keys/${broken.key.id}`).set(bearer(t.adminKey))).body.status).toBe('active');
  });

  it('charges the other subscriptions when one cannot be billed (its period cannot be computed), and leaves that one due', async () => {
    const plan = await createPlan(t, { amount: 11000 });
    const good = await subscribe(plan.id);
    const bad = await subscribe(plan.id);
    // Its anchor is far beyond what the period arithmetic supports (a row damaged by hand, say).
    await t.db.query(`UPDATE subscriptions SET anchor_at = '9999-12-30T00:00:00Z', period_index = 5 WHERE id = $1`, [bad.id]);
    t.clock.set(month(1));
    const run = await runCharges(t);
    expect(run.status).toBe('completed');
    expect(chargesFor(t, good.id, month(1))).toHaveLength(1);
    expect(ledgerChargesOf(t, bad.id)).toHaveLength(1); // its first period only
    expect(await getSubscription(t, bad.id)).toMatchObject({ status: 'active', next_charge_at: iso(month(1)) });
    expect(t.logs.some((l) => l.includes('subscription left out of the run') && l.includes(bad.id))).toBe(true);
  });

  it('records every decline of subscriptions sharing one billing key in the same run (no deadlock between their settlements)', async () => {
    const plan = await createPlan(t, { amount: 22000 });
    const { customer, key } = await customerWithKey(t);
    const subs: Sub[] = [];
    for (let i = 0; i < 3; i++) subs.push((await createSubscription(t, { customer_id: customer.id, plan_id: plan.id, billing_key_id: key.id })) as Sub);
    t.fake.setKeyBehavior(key.bootpay_receipt_id, 'lost_or_stolen');
    t.clock.set(month(1));
    const run = await runCharges(t);
    expect(run.counts).toMatchObject({ due: 3, failed: 3, unknown: 0 });
    for (const s of subs) expect(await getSubscription(t, s.id)).toMatchObject({ status: 'canceled' });
    expect(t.logs.some((l) => l.includes('could not record a charge outcome'))).toBe(false);
  });

  it('refuses to start with an encryption key other than the one the stored billing keys were encrypted with', async () => {
    const plan = await createPlan(t, { amount: 11000 });
    await subscribe(plan.id);
    await expect(startTestApp({ databaseUrl: t.databaseUrl, encryptionKey: randomBytes(32) })).rejects.toThrow(/BILLING_KEY_ENCRYPTION_KEY does not match/);
    const same = await startTestApp({ databaseUrl: t.databaseUrl, encryptionKey: t.encryptionKey });
    await same.close();
  });

  it('never applies a receipt that does not fit its payment (a 100-won receipt carrying an 11,000-won payment’s order_id)', async () => {
    const plan = await createPlan(t, { amount: 11000 });
    const sub = await subscribe(plan.id);
    // The renewal reaches Bootpay's door but is answered 503 (nothing done): the payment is UNKNOWN.
    t.fake.setFaults({ fail_next: { count: 1, status: 503, route: 'subscribe/payment' } });
    t.clock.set(month(1));
    expect((await runCharges(t)).counts).toMatchObject({ unknown: 1 });
    const renewal = (await paymentDetails(t, sub.id)).find((p) => p.period.index === 1)!;
    expect(renewal.status).toBe('UNKNOWN');
    // Somebody charges 100 won with the renewal's order_id on another key, and its receipt is posted to the webhook.
    const issued = await fetchFake(t, 'POST', 'request/subscribe', {
      pg: 'nicepay',
      order_name: 'x',
      subscription_id: 'other',
      card_no: '4242424242424242',
      card_pw: '12',
      card_expire_year: '30',
      card_expire_month: '12',
      card_identity_no: '900101',
    });
    const forged = await fetchFake(t, 'POST', 'subscribe/payment', {
      billing_key: issued.billing_key,
      order_name: 'x',
      order_id: renewal.order_id,
      price: 100,
    });
    expect((await postBootpayWebhook(t, { receipt_id: forged.receipt_id })).body).toEqual({ success: true });

    const after = (await paymentDetails(t, sub.id)).find((p) => p.id === renewal.id)!;
    expect(after).toMatchObject({ status: 'ABORTED', failure: { code: 'receipt_mismatch' } });
    expect(await getSubscription(t, sub.id)).toMatchObject({ current_period_end: iso(month(1)), next_charge_at: iso(month(1)) });
    expect((await flags(t, sub.id)).map((f) => f.kind)).toEqual(['receipt_mismatch']);
    // The period is still owed: the next run charges it properly, with a new order_id.
    await runCharges(t);
    expect(await getSubscription(t, sub.id)).toMatchObject({ current_period_start: iso(month(1)), current_period_end: iso(month(2)) });
    // Bootpay holds the forged 100 won (finance's to look at) and the real 11,000; only the real one paid the period.
    expect(
      chargesFor(t, sub.id, month(1))
        .map((c) => c.price)
        .sort((a, b) => a - b),
    ).toEqual([100, 11000]);
    const done = (await paymentDetails(t, sub.id)).filter((p) => p.period.index === 1 && p.status === 'DONE');
    expect(done.map((p) => [p.amount, p.attempt])).toEqual([[11000, 2]]);
  });

  it('records a refund made at Bootpay (its console) as a refund with source bootpay, its audit event and a finance item', async () => {
    const plan = await createPlan(t, { amount: 11000 });
    const sub = await subscribe(plan.id);
    const payment = (await paymentDetails(t, sub.id))[0];
    const res = await fetchFake(t, 'POST', 'cancel', {
      receipt_id: payment.receipt_id!,
      cancel_id: 'console-1',
      cancel_price: 4000,
      cancel_username: 'ops',
      cancel_message: 'goodwill',
    });
    expect(res.receipt_id).toBe(payment.receipt_id);
    await t.fake.webhooksIdle();
    expect((await paymentDetails(t, sub.id))[0]).toMatchObject({ status: 'PARTIAL_CANCELED', balance_amount: 7000 });
    const refunds = (await t.http.get(`/v1/payments/${payment.id}/refunds`).set(bearer(t.adminKey))).body.data;
    expect(refunds).toEqual([expect.objectContaining({ amount: 4000, status: 'succeeded', source: 'bootpay', vat: 364 })]);
    const events = (await t.http.get(`/v1/subscriptions/${sub.id}/events?limit=100`).set(bearer(t.serviceKey))).body.data;
    expect(events.filter((e: { type: string }) => e.type === 'refund.succeeded')).toEqual([
      expect.objectContaining({ reason: 'refunded outside the service (at Bootpay)' }),
    ]);
    expect((await flags(t, sub.id)).map((f) => f.kind)).toEqual(['refund_outside']);
    // Delivered again: nothing twice. A refund asked of the service afterwards counts the outside one.
    for (const w of [payment.receipt_id]) await postBootpayWebhook(t, { receipt_id: w });
    expect((await t.http.get(`/v1/payments/${payment.id}/refunds`).set(bearer(t.adminKey))).body.data).toHaveLength(1);
    const rest = await t.http.post(`/v1/payments/${payment.id}/refunds`).set(bearer(t.adminKey)).send({ reason: 'the rest' });
    expect(rest.status).toBe(201);
    expect(rest.body).toMatchObject({ amount: 7000, vat: 636 });
  });

  it('bills a plan of 1,001 days, and refuses one longer than the billing math supports', async () => {
    const plan = await createPlan(t, { amount: 11000, interval: 'day', interval_count: 1001 });
    const sub = await subscribe(plan.id);
    expect(sub.status).toBe('active');
    t.clock.set(new Date(sub.next_charge_at!));
    const run = await runCharges(t);
    expect(run).toMatchObject({ status: 'completed', counts: expect.objectContaining({ charged: 1 }) });
    const tooLong = await t.http.post('/v1/plans').set(bearer(t.adminKey)).send({ name: 'x', amount: 1000, interval: 'day', interval_count: 3651 });
    expect(tooLong.status).toBe(400);
    expect(tooLong.body.details).toEqual([expect.objectContaining({ field: 'interval_count' })]);
  });
});

describe('Money state: a busy connection pool', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await startTestApp();
  });
  afterAll(async () => {
    await t.fake.webhooksIdle();
    await t.close();
  });

  it('settles a charge when every other connection of the pool is taken: nothing inside a transaction waits for a second connection', async () => {
    const plan = await createPlan(t, { amount: 11000 });
    const c = await customerWithKey(t, { card_no: '4111110000002051' }); // approved once, then declined
    const sub = (await createSubscription(t, { customer_id: c.customer.id, plan_id: plan.id, billing_key_id: c.key.id })) as Sub;
    t.clock.set(new Date(sub.next_charge_at!));
    await runCharges(t);
    expect(await getSubscription(t, sub.id)).toMatchObject({ status: 'past_due' });
    t.fake.setKeyBehavior(c.key.bootpay_receipt_id, 'approve');
    t.clock.set(plus(new Date(sub.next_charge_at!), HOUR));

    // A new instance (nothing remembered yet) with a pool of 2, one of them held elsewhere.
    const sibling = await startSiblingApp(t, { databasePoolSize: 2 });
    const held = sibling.app.get(DataSource).createQueryRunner();
    await held.connect();
    try {
      const retried = await sibling.http.post(`/v1/subscriptions/${sub.id}/retry`).set(bearer(t.adminKey)).send({}).timeout(20_000);
      expect(retried.status).toBe(200);
      expect(retried.body).toMatchObject({ status: 'active', latest_payment: expect.objectContaining({ status: 'DONE' }) });
    } finally {
      await held.release();
      await sibling.close();
    }
    expect(chargesFor(t, sub.id, new Date(sub.next_charge_at!))).toHaveLength(1);
  }, 60_000);
});

describe('Money state: the finance-flags list', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await startTestApp();
  });
  afterAll(async () => {
    await t.close();
  });

  it('pages flags newest first with limit and cursor, filters open ones, and refuses a cursor it did not write', async () => {
    // Flags are raised by the money path only; here rows stand in for seven of them, a minute apart, the oldest resolved.
    const ids: string[] = [];
    for (let i = 0; i < 7; i++) {
      const {
        rows: [row],
      } = await t.db.query(
        `INSERT INTO finance_flags (kind, message, created_at, resolved_at, resolved_by, resolution) VALUES ('refund_needed', $1, $2, $3, $4, $5) RETURNING id`,
        [`flag ${i}`, new Date(T0.getTime() + i * MINUTE), i === 0 ? T0 : null, i === 0 ? 'finance' : null, i === 0 ? 'done' : null],
      );
      ids.push(row.id);
    }
    const walk = async (query: string) => {
      const seen: string[] = [];
      let cursor: string | null = null;
      do {
        const res: { status: number; body: { data: { id: string }[]; has_more: boolean; next_cursor: string | null } } = await t.http
          .get(`/v1/finance-flags?limit=3${query}${cursor ? `&cursor=${cursor}` : ''}`)
          .set(bearer(t.adminKey));
        expect(res.status).toBe(200);
        expect(res.body.has_more).toBe(res.body.next_cursor !== null);
        seen.push(...res.body.data.map((f) => f.id));
        cursor = res.body.next_cursor;
      } while (cursor);
      return seen;
    };
    expect(await walk('')).toEqual([...ids].reverse());
    expect(await walk('&open=true')).toEqual(ids.slice(1).reverse());
    expect(await walk('&open=false')).toEqual([ids[0]]);
    const bad = await t.http.get('/v1/finance-flags?cursor=bm90LWEtY3Vyc29y').set(bearer(t.adminKey));
    expect(bad.status).toBe(400);
    expect(bad.body.details).toEqual([expect.objectContaining({ field: 'cursor' })]);
    expect((await t.http.get('/v1/finance-flags?limit=101').set(bearer(t.adminKey))).status).toBe(400);
  });
});

describe('Money state: due by business day (runs at 03:00 Asia/Seoul)', () => {
  let t: TestApp;

  beforeEach(async () => {
    t = await startTestApp({ now: new Date('2026-01-31T10:00:00+09:00') });
  });
  afterEach(async () => {
    await t.fake.webhooksIdle();
    await t.close();
  });

  it('renews a subscription created at 10:00 on Jan 31 by the 03:00 run of Feb 28, not the run of Mar 1', async () => {
    const plan = await createPlan(t, { amount: 11000 });
    const { customer, key } = await customerWithKey(t);
    const sub = (await createSubscription(t, { customer_id: customer.id, plan_id: plan.id, billing_key_id: key.id })) as Sub;
    expect(sub.next_charge_at).toBe('2026-02-28T01:00:00.000Z');
    t.clock.set(new Date('2026-02-27T03:00:00+09:00'));
    expect((await runCharges(t)).counts).toMatchObject({ due: 0 });
    t.clock.set(new Date('2026-02-28T03:00:00+09:00'));
    expect((await runCharges(t)).counts).toMatchObject({ due: 1, charged: 1 });
    expect(await getSubscription(t, sub.id)).toMatchObject({
      current_period_start: '2026-02-28T01:00:00.000Z',
      current_period_end: '2026-03-31T01:00:00.000Z',
    });
  });

  it('retries a decline stamped 03:00:20 at the next day’s 03:00 run, not a day later', async () => {
    const plan = await createPlan(t, { amount: 11000 });
    const { customer, key } = await customerWithKey(t);
    const sub = (await createSubscription(t, { customer_id: customer.id, plan_id: plan.id, billing_key_id: key.id })) as Sub;
    t.fake.setKeyBehavior(key.bootpay_receipt_id, 'insufficient_funds');
    t.clock.set(new Date('2026-02-28T03:00:20+09:00'));
    expect((await runCharges(t)).counts).toMatchObject({ failed: 1 });
    expect((await getSubscription(t, sub.id)).dunning.next_retry_at).toBe(new Date('2026-03-01T03:00:20+09:00').toISOString());
    t.fake.setKeyBehavior(key.bootpay_receipt_id, null);
    t.clock.set(new Date('2026-03-01T03:00:00+09:00'));
    expect((await runCharges(t)).counts).toMatchObject({ due: 1, charged: 1 });
    expect(await getSubscription(t, sub.id)).toMatchObject({ status: 'active' });
  });

  it('refunds the renewal in full when a cancel at period end comes after that morning’s renewal charge, and ends at the old period’s end', async () => {
    const plan = await createPlan(t, { amount: 11000 });
    const { customer, key } = await customerWithKey(t);
    const sub = (await createSubscription(t, { customer_id: customer.id, plan_id: plan.id, billing_key_id: key.id })) as Sub;
    t.clock.set(new Date('2026-02-28T03:00:00+09:00'));
    expect((await runCharges(t)).counts).toMatchObject({ charged: 1 });
    t.clock.set(new Date('2026-02-28T05:00:00+09:00'));
    const res = await subscriptionAction(t, sub.id, 'cancel', { at_period_end: true, reason: 'leaving' });
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ status: 'active', cancel_at_period_end: true, current_period_end: '2026-02-28T01:00:00.000Z' });
    await t.fake.webhooksIdle();
    expect(netChargedFor(t, sub.id, new Date('2026-02-28T01:00:00.000Z'))).toBe(0);
    t.clock.set(new Date('2026-03-01T03:00:00+09:00'));
    await runCharges(t);
    expect(await getSubscription(t, sub.id)).toMatchObject({ status: 'canceled', ended_at: '2026-02-28T01:00:00.000Z' });
    expect(ledgerChargesOf(t, sub.id)).toHaveLength(2);
  });
});

/** A call to the fake Bootpay's REST API as another merchant tool would make it (Basic auth), answering the body. */
async function fetchFake(t: TestApp, method: string, path: string, body: Record<string, unknown>): Promise<Record<string, string>> {
  const res = await fetch(`${t.fake.apiBaseUrl}/${path}`, {
    method,
    headers: {
      'Content-Type': 'application/json',
      Authorization: `Basic ${Buffer.from(`${t.fake.credentials.clientKey}:${t.fake.credentials.secretKey}`).toString('base64')}`,
    },
    body: JSON.stringify(body),
  });
  const json = (await res.json()) as Record<string, string>;
  if (res.status !== 200) throw new Error(`${path}: ${res.status} ${JSON.stringify(json)}`);
  return json;
}
