import {
  createPlan,
  createSubscription,
  customerWithKey,
  getSubscription,
  ledgerChargesOf,
  paymentDetails,
  runCharges,
  startWebhookSink,
  subscriptionAction,
} from './utils/fixtures';
import { bearer, startTestApp, TestApp } from './utils/test-app';

/**
 * Refund and plan-change amounts at their edges: the unused part of a cancel (every payment of the period, from a
 * pause, owed durably), proration between plans of different intervals, a downgrade's credit, and a prorated
 * charge whose answer was lost. Each was seen losing money owed to a customer or charging too much.
 */

const DAY = 24 * 3600_000;
const T = new Date('2026-03-01T01:00:00Z'); // 10:00 KST; a 31-day March
const plus = (d: Date, ms: number) => new Date(d.getTime() + ms);
const iso = (d: Date) => d.toISOString();

type Refund = { amount: number; tax_free_amount: number; vat: number; status: string };

async function refundsOf(t: TestApp, subscriptionId: string): Promise<Refund[]> {
  const out: Refund[] = [];
  for (const p of await paymentDetails(t, subscriptionId)) {
    const res = await t.http.get(`/v1/payments/${p.id}/refunds`).set(bearer(t.adminKey));
    out.push(...(res.body.data as Refund[]));
  }
  return out;
}
const refunded = (rs: Refund[]) => rs.filter((r) => r.status === 'succeeded').reduce((s, r) => s + r.amount, 0);

describe('Amounts: refund_unused, proration across intervals, credits', () => {
  let t: TestApp;
  beforeEach(async () => {
    t = await startTestApp({ now: T });
  });
  afterEach(async () => {
    await t.fake.webhooksIdle();
    await t.close();
  });

  async function subscribe(amount: number, interval = 'month', extra: Record<string, unknown> = {}) {
    const plan = await createPlan(t, { name: `${interval} ${amount}`, amount, interval, ...extra });
    const { customer, key } = await customerWithKey(t);
    const sub = await createSubscription(t, { customer_id: customer.id, plan_id: plan.id, billing_key_id: key.id });
    return { plan, sub, key };
  }

  it('refunds every payment of the period on a cancel right after an upgrade: 10,000 owed, not 5,000', async () => {
    const { sub } = await subscribe(10000, 'day', { interval_count: 30 });
    const bigger = await createPlan(t, { name: 'bigger', amount: 20000, interval: 'day', interval_count: 30 });
    t.clock.set(plus(T, 15 * DAY)); // half of the 30 days
    const up = await subscriptionAction(t, sub.id, 'change-plan', { plan_id: bigger.id, proration: 'now' });
    expect(up.status).toBe(200);
    expect(ledgerChargesOf(t, sub.id).map((c) => c.price)).toEqual([10000, 5000]);
    const res = await subscriptionAction(t, sub.id, 'cancel', { at_period_end: false, reason: 'leaving', refund_unused: true }, t.adminKey);
    expect(res.status).toBe(200);
    await t.fake.webhooksIdle();
    const rs = await refundsOf(t, sub.id);
    expect(refunded(rs)).toBe(10000);
    expect(rs.map((r) => r.amount).sort((a, b) => a - b)).toEqual([5000, 5000]);
  });

  it('refunds the unused part of a paused subscription from its pause: 5,500 of 11,000', async () => {
    const { sub } = await subscribe(11000, 'day', { interval_count: 30 });
    t.clock.set(plus(T, 15 * DAY));
    expect((await subscriptionAction(t, sub.id, 'pause', { reason: 'travelling' }, t.adminKey)).status).toBe(200);
    t.clock.set(plus(T, 20 * DAY));
    const res = await subscriptionAction(t, sub.id, 'cancel', { at_period_end: false, reason: 'leaving', refund_unused: true }, t.adminKey);
    expect(res.status).toBe(200);
    expect(refunded(await refundsOf(t, sub.id))).toBe(5500);
  });

  it('keeps the refund a cancel owes when Bootpay’s receipt is not known yet, and makes it once the receipt arrives', async () => {
    const { sub } = await subscribe(30000, 'day', { interval_count: 30 });
    // The renewal is made but its answer and its webhook are lost; the run settles it by re-sending (a duplicate):
    // approved, with no receipt known.
    const sink = await startWebhookSink();
    const serviceUrl = t.runtime.config.publicBaseUrl;
    try {
      t.runtime.config.publicBaseUrl = sink.url;
      t.fake.setFaults({ timeout_after_charge: { count: 1, mode: 'drop' } });
      const renewalAt = new Date((await getSubscription(t, sub.id)).next_charge_at);
      t.clock.set(renewalAt);
      expect((await runCharges(t)).counts).toMatchObject({ unknown: 1 });
      t.clock.set(plus(renewalAt, 2 * 60_000));
      expect((await runCharges(t)).counts).toMatchObject({ charged: 1 });
      const renewal = (await paymentDetails(t, sub.id)).at(-1)!;
      expect(renewal).toMatchObject({ status: 'DONE', receipt_id: null });

      t.clock.set(plus(renewalAt, 10 * DAY));
      const res = await subscriptionAction(t, sub.id, 'cancel', { at_period_end: false, reason: 'leaving', refund_unused: true }, t.adminKey);
      expect(res.status).toBe(200);
      expect(res.body.status).toBe('canceled');
      // Owed and recorded with the cancel, though it cannot be sent yet.
      const pending = await refundsOf(t, sub.id);
      expect(pending.map((r) => [r.amount, r.status])).toEqual([[20000, expect.stringMatching(/^(pending|unknown)$/)]]);
      const events = (await t.http.get(`/v1/subscriptions/${sub.id}/events?limit=100`).set(bearer(t.serviceKey))).body.data;
      expect(events.find((e: { type: string }) => e.type === 'subscription.canceled').data.refund_unused).toEqual([expect.objectContaining({ amount: 20000 })]);

      // Bootpay's webhook arrives; the next run sends the refund with its own cancel_id.
      t.runtime.config.publicBaseUrl = serviceUrl;
      for (const w of sink.received) await t.http.post('/v1/webhooks/bootpay').send(w);
      t.clock.set(plus(renewalAt, 11 * DAY));
      await runCharges(t);
      expect((await refundsOf(t, sub.id)).map((r) => [r.amount, r.status])).toEqual([[20000, 'succeeded']]);
    } finally {
      await sink.close();
    }
  });

  it('charges a monthly → yearly change the yearly price less the unused month (94,971 now), re-anchored, and nothing at the month’s end', async () => {
    const { sub } = await subscribe(9997);
    const yearly = await createPlan(t, { name: 'yearly', amount: 99970, interval: 'year' });
    const at = plus(T, 15.5 * DAY); // half of a 31-day March
    t.clock.set(at);
    const res = await subscriptionAction(t, sub.id, 'change-plan', { plan_id: yearly.id, proration: 'now' });
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({
      plan_id: yearly.id,
      status: 'active',
      anchor_at: iso(at),
      current_period_start: iso(at),
      next_charge_at: '2027-03-16T13:00:00.000Z',
    });
    expect(ledgerChargesOf(t, sub.id).map((c) => c.price)).toEqual([9997, 94971]);
    // No customer pays more than the new plan's price for the same time: nothing at the old period's end.
    t.clock.set(new Date('2026-04-01T01:00:00Z'));
    expect((await runCharges(t)).counts).toMatchObject({ due: 0 });
    expect(ledgerChargesOf(t, sub.id)).toHaveLength(2);
  });

  it('keeps a downgrade’s credit as a balance and takes it off the next renewal before the card (20,000 → 10,000 at mid-month)', async () => {
    const { sub } = await subscribe(20000, 'day', { interval_count: 30 });
    const smaller = await createPlan(t, { name: 'smaller', amount: 10000, interval: 'day', interval_count: 30 });
    t.clock.set(plus(T, 15 * DAY));
    const res = await subscriptionAction(t, sub.id, 'change-plan', { plan_id: smaller.id, proration: 'now' });
    expect(res.status).toBe(200);
    // credit 10,000 (half of 20,000) − charge 5,000 (half of 10,000) = 5,000 kept
    expect(res.body).toMatchObject({ plan_id: smaller.id, credit_balance: 5000 });
    expect(refunded(await refundsOf(t, sub.id))).toBe(0);
    t.clock.set(plus(T, 30 * DAY));
    await runCharges(t);
    expect(await getSubscription(t, sub.id)).toMatchObject({ credit_balance: 0, current_period_start: iso(plus(T, 30 * DAY)) });
    const renewal = (await paymentDetails(t, sub.id)).at(-1)! as unknown as { amount: number; credit_applied: number; status: string };
    expect(renewal).toMatchObject({ amount: 5000, credit_applied: 5000, status: 'DONE' });
    expect(ledgerChargesOf(t, sub.id).map((c) => c.price)).toEqual([20000, 5000]);
  });

  it('pays whole periods from a large credit without charging the card, and lets finance refund the rest (yearly → monthly)', async () => {
    const { sub } = await subscribe(99970, 'year');
    const monthly = await createPlan(t, { name: 'monthly', amount: 9997, interval: 'month' });
    const at = new Date('2026-08-30T13:00:00Z'); // about mid-year
    t.clock.set(at);
    const res = await subscriptionAction(t, sub.id, 'change-plan', { plan_id: monthly.id, proration: 'now' });
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ plan_id: monthly.id, current_period_start: iso(at) });
    const credit = res.body.credit_balance as number;
    expect(credit).toBeGreaterThan(30000); // the unused half year less the first new month
    // The next renewal is paid by the credit: nothing at Bootpay.
    t.clock.set(new Date(res.body.next_charge_at));
    await runCharges(t);
    const after = await getSubscription(t, sub.id);
    expect(after.credit_balance).toBe(credit - 9997);
    expect((await paymentDetails(t, sub.id)).at(-1)).toMatchObject({ amount: 0, status: 'DONE' });
    expect(ledgerChargesOf(t, sub.id).map((c) => c.price)).toEqual([99970]);
    // Finance gives the rest back instead: refunded from the yearly payment; a service key may not.
    expect((await subscriptionAction(t, sub.id, 'refund-credit', { reason: 'asked back' })).status).toBe(403);
    const back = await subscriptionAction(t, sub.id, 'refund-credit', { reason: 'asked back' }, t.adminKey);
    expect(back.status).toBe(200);
    expect(back.body.credit_balance).toBe(0);
    await t.fake.webhooksIdle();
    expect(refunded(await refundsOf(t, sub.id))).toBe(credit - 9997);
    expect((await subscriptionAction(t, sub.id, 'refund-credit', { reason: 'again' }, t.adminKey)).status).toBe(409);
  });

  it('answers 202 with the pending payment when the prorated charge’s answer is lost, and settles it later', async () => {
    const { sub } = await subscribe(10000);
    const bigger = await createPlan(t, { name: 'bigger', amount: 20000 });
    t.clock.set(plus(T, 10 * DAY));
    t.fake.setFaults({ timeout_after_charge: { count: 1, mode: 'drop' } });
    const res = await subscriptionAction(t, sub.id, 'change-plan', { plan_id: bigger.id, proration: 'now' });
    expect(res.status).toBe(202);
    expect(res.body.pending_payment).toMatchObject({ status: 'UNKNOWN', kind: 'proration' });
    expect(res.body.plan_id).not.toBe(bigger.id);
    // Once Bootpay is asked (the run, past the stale threshold), the change applies, charged once.
    t.clock.set(plus(T, 10 * DAY + 2 * 60_000));
    await runCharges(t);
    expect((await getSubscription(t, sub.id)).plan_id).toBe(bigger.id);
    expect(ledgerChargesOf(t, sub.id).filter((c) => c.order_id === res.body.pending_payment.order_id)).toHaveLength(1);
  });
});
