import {
  ZERO_COUNTS,
  runCounts,
  bootpayWebhookBody,
  callFakeBootpay,
  createPlan,
  createSubscription,
  customerWithKey,
  eventsOf,
  getSubscription,
  ledgerChargesOf,
  paymentDetails,
  postBootpayWebhook,
  runCharges,
  startWebhookSink,
} from './utils/fixtures';
import { bearer, startTestApp, tableCounts, TestApp } from './utils/test-app';

const MINUTE = 60_000;

/** Period starts of a monthly subscription anchored at T0 (2026-01-15 10:00 KST): the 15th, 01:00Z. */
const month = (i: number) => new Date(Date.UTC(2026, i, 15, 1, 0, 0));
const plus = (d: Date, ms: number) => new Date(d.getTime() + ms);
const iso = (d: Date) => d.toISOString();
const orderIdOf = (subId: string, start: Date, attempt: number) => `s${subId.replace(/-/g, '')}-${Math.floor(start.getTime() / 1000)}-p${attempt}`;

const ZERO = ZERO_COUNTS;
const counts = runCounts;

type Sub = { id: string; status: string };

describe("Bootpay's webhook (POST /v1/webhooks/bootpay)", () => {
  let t: TestApp;

  beforeEach(async () => {
    t = await startTestApp({ env: { RESERVATION_HORIZON: '3' } });
  });
  afterEach(async () => {
    await t.fake.webhooksIdle();
    await t.close();
  });

  async function subscribe(mode: 'scheduler' | 'reservation') {
    const plan = await createPlan(t, { name: `Pro ${mode}`, amount: 11000, interval: 'month', charge_mode: mode });
    const { customer, key } = await customerWithKey(t);
    const sub = (await createSubscription(t, { customer_id: customer.id, plan_id: plan.id, billing_key_id: key.id })) as Sub;
    return { sub, key };
  }

  async function runAt(when: Date) {
    t.clock.set(when);
    const run = await runCharges(t);
    expect(run.status).toBe('completed');
    return run;
  }

  /** Everything a webhook could change: row counts, and the payments, subscription and audit trail of the given subscriptions. */
  const snapshot = async (subIds: string[]) => ({
    tables: await tableCounts(t.db),
    payments: await Promise.all(subIds.map((id) => paymentDetails(t, id))),
    subs: await Promise.all(subIds.map((id) => getSubscription(t, id))),
    events: await Promise.all(subIds.map((id) => eventsOf(t, id))),
  });

  // ------------------------------------------------------------------ 7. trust nothing but the receipt

  it('should take webhooks without an API key, answer 200 {"success": true}, and ignore a forged price, status or order in the body', async () => {
    const { sub } = await subscribe('scheduler');
    const other = await subscribe('reservation');
    await t.fake.webhooksIdle();
    const [paid] = await paymentDetails(t, sub.id);
    expect(paid).toMatchObject({ status: 'DONE', amount: 11000, balance_amount: 11000, receipt_id: expect.any(String) });
    const open = (await paymentDetails(t, other.sub.id)).find((p) => p.status === 'READY')!;
    const before = await snapshot([sub.id, other.sub.id]);

    // The genuine body, again, with no Authorization header at all.
    const genuine = await bootpayWebhookBody(t, paid.receipt_id!, 'PAYMENT_COMPLETED');
    const res = await t.http.post('/v1/webhooks/bootpay').set('Content-Type', 'application/json').send(JSON.stringify(genuine));
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ success: true });

    // Forged: a full cancellation at another price; and a real receipt claimed for another subscription's open payment.
    const forgeries = [
      { ...genuine, price: 999, status: 20, cancelled_price: 999, cancelled_tax_free: 0, webhook_type: 'PAYMENT_CANCELLED' },
      { ...genuine, order_id: open.order_id, price: 999, status: 1, webhook_type: 'PAYMENT_COMPLETED' },
      { receipt_id: paid.receipt_id, status: 1, price: 999 },
    ];
    for (const body of forgeries) {
      const r = await postBootpayWebhook(t, body);
      expect(r.status).toBe(200);
      expect(r.body).toEqual({ success: true });
    }
    await t.fake.webhooksIdle();
    expect(await snapshot([sub.id, other.sub.id])).toEqual(before);
    expect(t.fake.ledger().cancels).toEqual([]);
  });

  it('should not turn a declined reservation into a payment whatever the body says', async () => {
    const { sub, key } = await subscribe('reservation');
    t.fake.setKeyBehavior(key.bootpay_receipt_id, 'insufficient_funds');
    t.clock.set(month(1));
    const [execution] = await t.fake.executeDueReservations(t.clock.now());
    await t.fake.webhooksIdle();
    expect(execution).toMatchObject({ result: 'failed', receipt_id: expect.any(String) });
    expect(await getSubscription(t, sub.id)).toMatchObject({ status: 'past_due' });
    const before = await snapshot([sub.id]);

    const r = await postBootpayWebhook(t, {
      receipt_id: execution.receipt_id,
      order_id: orderIdOf(sub.id, month(1), 1),
      status: 1,
      status_locale: '결제완료',
      price: 999,
      purchased_at: iso(month(1)),
      webhook_type: 'PAYMENT_COMPLETED',
    });
    expect(r.status).toBe(200);
    expect(r.body).toEqual({ success: true });
    expect(await snapshot([sub.id])).toEqual(before);
    expect((await paymentDetails(t, sub.id)).find((p) => p.period.index === 1)).toMatchObject({ status: 'ABORTED', receipt_id: null });
  });

  it('should settle an open reservation from the receipt Bootpay holds, not from the body: a forged success of a declined execution is recorded as the decline', async () => {
    const sink = await startWebhookSink();
    try {
      t.runtime.config.publicBaseUrl = sink.url; // the genuine webhook never reaches the service
      const { sub, key } = await subscribe('reservation');
      t.fake.setKeyBehavior(key.bootpay_receipt_id, 'insufficient_funds');
      t.clock.set(month(1));
      const [execution] = await t.fake.executeDueReservations(t.clock.now());
      await t.fake.webhooksIdle();
      expect((await paymentDetails(t, sub.id)).find((p) => p.period.index === 1)).toMatchObject({ status: 'READY' });

      const r = await postBootpayWebhook(t, { receipt_id: execution.receipt_id, status: 1, price: 999, webhook_type: 'PAYMENT_COMPLETED' });
      expect(r.status).toBe(200);
      const p1 = (await paymentDetails(t, sub.id)).find((p) => p.period.index === 1)!;
      expect(p1).toMatchObject({ status: 'ABORTED', amount: 11000, failure: { code: 'PAYMENT_REQUEST_FAILED' } });
      expect(await getSubscription(t, sub.id)).toMatchObject({ status: 'past_due', current_period_end: iso(month(1)) });
      expect(ledgerChargesOf(t, sub.id)).toHaveLength(1);
    } finally {
      await t.fake.webhooksIdle();
      await sink.close();
    }
  });

  it('should answer 200 to an unknown receipt_id and change nothing', async () => {
    const { sub } = await subscribe('scheduler');
    await t.fake.webhooksIdle();
    const before = await snapshot([sub.id]);
    for (const body of [
      { receipt_id: '0123456789abcdef01234567', order_id: orderIdOf(sub.id, month(0), 1), status: 1, price: 11000, webhook_type: 'PAYMENT_COMPLETED' },
      { receipt_id: 'ffffffffffffffffffffffff', status: 20, cancelled_price: 11000, webhook_type: 'PAYMENT_CANCELLED' },
    ]) {
      const res = await postBootpayWebhook(t, body);
      expect(res.status).toBe(200);
      expect(res.body).toEqual({ success: true });
    }
    expect(await snapshot([sub.id])).toEqual(before);
  });

  it('should refuse a body without a usable receipt_id with a 4xx and change nothing', async () => {
    const { sub } = await subscribe('scheduler');
    await t.fake.webhooksIdle();
    const before = await snapshot([sub.id]);
    const bodies: unknown[] = [
      { order_id: orderIdOf(sub.id, month(0), 1), status: 1, price: 11000, webhook_type: 'PAYMENT_COMPLETED' },
      {},
      { receipt_id: 12345 },
      { receipt_id: '' },
      { receipt_id: '../../receipt/x' },
    ];
    for (const body of bodies) {
      const res = await postBootpayWebhook(t, body);
      expect(res.status).toBeGreaterThanOrEqual(400);
      expect(res.status).toBeLessThan(500);
      expect(res.body).not.toEqual({ success: true });
    }
    expect(await snapshot([sub.id])).toEqual(before);
  });

  it('should settle correctly when cancel webhooks arrive before the completion one', async () => {
    const sink = await startWebhookSink();
    try {
      const { sub } = await subscribe('scheduler');
      await t.fake.webhooksIdle();
      // From here Bootpay's webhooks are held back, so the test delivers them itself, in the wrong order.
      t.runtime.config.publicBaseUrl = sink.url;
      t.fake.setFaults({ timeout_after_charge: { count: 1, mode: 'drop' } });
      const run = await runAt(month(1));
      expect(run.counts).toEqual(counts({ due: 1, unknown: 1 }));
      const orderId = orderIdOf(sub.id, month(1), 1);
      expect((await paymentDetails(t, sub.id)).find((p) => p.order_id === orderId)).toMatchObject({ status: 'UNKNOWN' });
      const receiptId = ledgerChargesOf(t, sub.id).find((c) => c.order_id === orderId)!.receipt_id;

      // Refunded at Bootpay (its console): 4,000 first, then the rest.
      t.clock.set(plus(month(1), 2 * MINUTE));
      expect(
        (
          await callFakeBootpay(t, 'POST', 'cancel', {
            receipt_id: receiptId,
            cancel_id: 'console-1',
            cancel_price: 4000,
            cancel_username: 'ops',
            cancel_message: 'goodwill',
          })
        ).status,
      ).toBe(200);
      expect(
        (await callFakeBootpay(t, 'POST', 'cancel', { receipt_id: receiptId, cancel_id: 'console-2', cancel_username: 'ops', cancel_message: 'refund' }))
          .status,
      ).toBe(200);
      await t.fake.webhooksIdle();
      const held = (type: string) => sink.received.find((w) => w.receipt_id === receiptId && w.webhook_type === type)!;
      const completed = held('PAYMENT_COMPLETED');
      const partial = held('PAYMENT_PARTIAL_CANCELLED');
      const cancelled = held('PAYMENT_CANCELLED');
      expect([completed.status, partial.cancelled_price, cancelled.status]).toEqual([1, 4000, 20]);

      // The full cancel first: the charge was approved and then fully refunded. The payment records both; the
      // subscription is not advanced by a charge that was given back (the period stays due), and finance is told.
      expect((await postBootpayWebhook(t, cancelled)).body).toEqual({ success: true });
      const settled = (await paymentDetails(t, sub.id)).find((p) => p.order_id === orderId)!;
      expect(settled).toMatchObject({
        status: 'CANCELED',
        receipt_id: receiptId,
        amount: 11000,
        balance_amount: 0,
        approved_at: iso(month(1)),
        canceled_at: expect.any(String),
      });
      expect(await getSubscription(t, sub.id)).toMatchObject({
        current_period_start: iso(month(0)),
        current_period_end: iso(month(1)),
        next_charge_at: iso(month(1)),
      });
      const flags = (await t.http.get(`/v1/finance-flags?subscription_id=${sub.id}`).set(bearer(t.adminKey))).body.data;
      expect(flags).toEqual([expect.objectContaining({ kind: 'charge_not_applied', payment_id: settled.id })]);
      const after = await snapshot([sub.id]);

      // Then the older ones, and the cancel again: nothing moves.
      for (const body of [partial, completed, cancelled]) expect((await postBootpayWebhook(t, body)).body).toEqual({ success: true });
      expect(await snapshot([sub.id])).toEqual(after);

      // The period is still owed: the next run charges it once, with a new order_id; the refunded one is never re-sent.
      expect((await runAt(plus(month(1), 5 * MINUTE))).counts).toEqual(counts({ due: 1, charged: 1 }));
      expect(ledgerChargesOf(t, sub.id).filter((c) => c.order_id === orderId)).toEqual([
        expect.objectContaining({ receipt_id: receiptId, cancelled_price: 11000, status: 20 }),
      ]);
      expect(ledgerChargesOf(t, sub.id).filter((c) => c.order_id === orderIdOf(sub.id, month(1), 2))).toHaveLength(1);
      expect(await getSubscription(t, sub.id)).toMatchObject({ current_period_start: iso(month(1)), current_period_end: iso(month(2)) });
    } finally {
      await t.fake.webhooksIdle();
      await sink.close();
    }
  });

  it('should settle out-of-order partial cancel and completion webhooks from the cumulative figures, never twice', async () => {
    const sink = await startWebhookSink();
    try {
      const { sub } = await subscribe('scheduler');
      await t.fake.webhooksIdle();
      t.runtime.config.publicBaseUrl = sink.url;
      t.fake.setFaults({ timeout_after_charge: { count: 1, mode: 'drop' } });
      expect((await runAt(month(1))).counts).toEqual(counts({ due: 1, unknown: 1 }));
      const orderId = orderIdOf(sub.id, month(1), 1);
      const receiptId = ledgerChargesOf(t, sub.id).find((c) => c.order_id === orderId)!.receipt_id;
      expect((await callFakeBootpay(t, 'POST', 'cancel', { receipt_id: receiptId, cancel_id: 'console-1', cancel_price: 4000 })).status).toBe(200);
      await t.fake.webhooksIdle();
      const partial = sink.received.find((w) => w.receipt_id === receiptId && w.webhook_type === 'PAYMENT_PARTIAL_CANCELLED')!;
      const completed = sink.received.find((w) => w.receipt_id === receiptId && w.webhook_type === 'PAYMENT_COMPLETED')!;

      for (const body of [partial, partial, completed, partial]) expect((await postBootpayWebhook(t, body)).status).toBe(200);
      expect((await paymentDetails(t, sub.id)).find((p) => p.order_id === orderId)).toMatchObject({
        status: 'PARTIAL_CANCELED',
        receipt_id: receiptId,
        amount: 11000,
        balance_amount: 7000,
      });
      expect(await getSubscription(t, sub.id)).toMatchObject({ status: 'active', current_period_start: iso(month(1)), next_charge_at: iso(month(2)) });
    } finally {
      await t.fake.webhooksIdle();
      await sink.close();
    }
  });

  // ------------------------------------------------------------------ 8. a lost answer settled by the webhook

  it('should settle a charge whose answer timed out as DONE from the webhook Bootpay sends, before any run resolves it, without a second charge', async () => {
    const { sub } = await subscribe('scheduler');
    await t.fake.webhooksIdle();
    t.fake.setFaults({ timeout_after_charge: { count: 1, mode: 'drop' } });
    const run = await runAt(month(1));
    // The run got no answer: for it the outcome is unknown.
    expect(run.counts).toEqual(counts({ due: 1, unknown: 1 }));
    await t.fake.webhooksIdle();

    const orderId = orderIdOf(sub.id, month(1), 1);
    const charges = ledgerChargesOf(t, sub.id).filter((c) => c.order_id === orderId);
    expect(charges).toHaveLength(1);
    // Bootpay's webhook reached the service and settled it.
    expect(t.fake.ledger().webhooks.filter((w) => w.receipt_id === charges[0].receipt_id)).toEqual([
      expect.objectContaining({ url: `${t.url}/v1/webhooks/bootpay`, webhook_type: 'PAYMENT_COMPLETED', delivered: true }),
    ]);
    const p1 = (await paymentDetails(t, sub.id)).filter((p) => p.period.index === 1);
    expect(p1).toEqual([
      expect.objectContaining({
        status: 'DONE',
        attempt: 1,
        order_id: orderId,
        receipt_id: charges[0].receipt_id,
        charge_run_id: run.id,
        approved_at: iso(month(1)),
      }),
    ]);
    expect(await getSubscription(t, sub.id)).toMatchObject({
      status: 'active',
      current_period_start: iso(month(1)),
      current_period_end: iso(month(2)),
      next_charge_at: iso(month(2)),
    });
    const succeeded = (await eventsOf(t, sub.id)).filter((e) => e.type === 'payment.succeeded' && (e.data as { payment_id?: string }).payment_id === p1[0].id);
    expect(succeeded).toHaveLength(1);

    // Later runs (past the minute an open attempt must age) find nothing to resolve or charge.
    expect((await runAt(plus(month(1), 5 * MINUTE))).counts).toEqual(ZERO);
    expect(ledgerChargesOf(t, sub.id).map((c) => c.order_id)).toEqual([orderIdOf(sub.id, month(0), 1), orderId]);
    expect(t.fake.ledger().failed_charges).toEqual([]);
    expect((await t.http.get(`/v1/payments/${p1[0].id}`).set(bearer(t.serviceKey))).body).toMatchObject({ status: 'DONE', receipt_id: charges[0].receipt_id });
  });
});
