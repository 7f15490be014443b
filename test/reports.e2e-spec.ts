import { monthlyAmount } from '../src/reports/reports.service';
import { callFakeBootpay, createPlan, createSubscription, customerWithKey, runCharges } from './utils/fixtures';
import { bearer, startTestApp, TestApp } from './utils/test-app';

describe('Finance reports', () => {
  let t: TestApp;

  beforeAll(async () => {
    t = await startTestApp({ now: new Date('2026-03-10T01:00:00Z') });
  });
  afterAll(async () => {
    await t.close();
  });

  it('should find a difference planted at Bootpay in the day reconciliation, and none before it', async () => {
    // No feedback_url on this charge, so the service does not hear of the refund made at Bootpay below.
    const publicBaseUrl = t.runtime.config.publicBaseUrl;
    t.runtime.config.publicBaseUrl = undefined;
    const plan = await createPlan(t, { amount: 22000, tax_free_amount: 2000 });
    const { customer, key } = await customerWithKey(t);
    const sub = await createSubscription(t, { customer_id: customer.id, plan_id: plan.id, billing_key_id: key.id });
    const payment = (await t.http.get(`/v1/payments?subscription_id=${sub.id}`).set(bearer(t.adminKey))).body.data[0];
    t.runtime.config.publicBaseUrl = publicBaseUrl;

    const clean = await t.http.get('/v1/reports/reconciliation?date=2026-03-10').set(bearer(t.adminKey));
    expect(clean.status).toBe(200);
    expect(clean.body).toMatchObject({ date: '2026-03-10', time_zone: 'Asia/Seoul', differences: [] });
    expect(clean.body.checked).toBeGreaterThanOrEqual(1);

    // Someone refunds 5,000 won in Bootpay's console, behind the service's back.
    const res = await fetch(`${t.fake.apiBaseUrl}/cancel`, {
      method: 'POST',
      headers: {
        'Content-Type': 'application/json',
        Authorization: `Basic ${Buffer.from(`${t.fake.credentials.clientKey}:${t.fake.credentials.secretKey}`).toString('base64')}`,
      },
      body: JSON.stringify({ receipt_id: payment.receipt_id, cancel_price: 5000, cancel_id: 'console-1' }),
    });
    expect(res.status).toBe(200);

    const report = await t.http.get('/v1/reports/reconciliation?date=2026-03-10').set(bearer(t.adminKey));
    expect(report.body.differences).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ kind: 'payment', id: payment.id, field: 'refunded_amount', local: 0, bootpay: 5000 }),
        expect.objectContaining({ kind: 'payment', id: payment.id, field: 'status', local: 'DONE', bootpay: 'PARTIAL_CANCELED' }),
      ]),
    );
    // Another day has nothing to compare.
    const other = await t.http.get('/v1/reports/reconciliation?date=2026-03-09').set(bearer(t.adminKey));
    expect(other.body).toMatchObject({ payments: 0, differences: [] });
  });

  it('should refuse a bad date with 400, and the service role with 403', async () => {
    expect((await t.http.get('/v1/reports/reconciliation?date=2026-02-30').set(bearer(t.adminKey))).status).toBe(400);
    expect((await t.http.get('/v1/reports/reconciliation?date=yesterday').set(bearer(t.adminKey))).status).toBe(400);
    expect((await t.http.get('/v1/reports/summary').set(bearer(t.serviceKey))).status).toBe(403);
  });

  it('should report MRR in won, counts, churn and recoveries by retry step', async () => {
    const monthly = await createPlan(t, { amount: 11000 });
    const yearly = await createPlan(t, { amount: 120000, interval: 'year' });
    const a = await customerWithKey(t);
    await createSubscription(t, { customer_id: a.customer.id, plan_id: monthly.id, billing_key_id: a.key.id });
    const b = await customerWithKey(t);
    await createSubscription(t, { customer_id: b.customer.id, plan_id: yearly.id, billing_key_id: b.key.id });
    const c = await customerWithKey(t, { card_no: '4111110000002051' }); // approved once, then declined
    const recovering = await createSubscription(t, { customer_id: c.customer.id, plan_id: monthly.id, billing_key_id: c.key.id });
    const d = await customerWithKey(t);
    const leaving = await createSubscription(t, { customer_id: d.customer.id, plan_id: monthly.id, billing_key_id: d.key.id });
    await t.http.post(`/v1/subscriptions/${leaving.id}/cancel`).set(bearer(t.serviceKey)).send({ at_period_end: false, reason: 'test' }).expect(200);

    // The recovering one fails its renewal, then the card works again and the first retry succeeds.
    t.clock.set(new Date(recovering.next_charge_at));
    await runCharges(t);
    const receipt = (await t.http.get(`/v1/billing-keys/${c.key.id}`).set(bearer(t.adminKey))).body.bootpay_receipt_id;
    t.fake.setKeyBehavior(receipt, 'approve');
    t.clock.advance(24 * 60 * 60 * 1000);
    await runCharges(t);

    const res = await t.http.get('/v1/reports/summary?from=2026-03-01T00:00:00Z').set(bearer(t.adminKey));
    expect(res.status).toBe(200);
    // The first test's 22,000 subscription, two monthly at 11,000, one yearly at 120,000 (10,000 a month); one churned.
    expect(res.body).toMatchObject({ currency: 'KRW', mrr: 22000 + 2 * 11000 + 10000, active: 4, churned: 1 });
    expect(res.body.recovered_by_retry).toEqual([{ attempt: 2, retry_step: 1, payments: 1, amount: 11000 }]);
  });

  it('should count MRR in whole won rounded half up: a 6,999-won fortnightly plan adds 15,165', async () => {
    expect(monthlyAmount(6999, 'week', 2)).toBe(15165); // 6,999 × 52 / 12 / 2 = 15,164.5
    expect(monthlyAmount(1000, 'day', 3)).toBe(10139); // 1,000 × 365 / 12 / 3 = 10,138.9
    expect(monthlyAmount(120000, 'year', 1)).toBe(10000);
    const before = (await t.http.get('/v1/reports/summary').set(bearer(t.adminKey))).body.mrr;
    const fortnightly = await createPlan(t, { amount: 6999, interval: 'week', interval_count: 2 });
    const { customer, key } = await customerWithKey(t);
    await createSubscription(t, { customer_id: customer.id, plan_id: fortnightly.id, billing_key_id: key.id });
    const after = (await t.http.get('/v1/reports/summary').set(bearer(t.adminKey))).body.mrr;
    expect(after - before).toBe(15165);
  });
});

describe('Reconciliation of a day: changes Bootpay recorded that day, and reservation outcomes', () => {
  let t: TestApp;
  const DAY = 24 * 60 * 60 * 1000;
  /** The business day (Asia/Seoul) of an instant, as YYYY-MM-DD. */
  const seoulDay = (at: string | Date) => new Date(new Date(at).getTime() + 9 * 3600_000).toISOString().slice(0, 10);

  beforeAll(async () => {
    t = await startTestApp({ now: new Date('2026-03-10T01:00:00Z') });
  });
  afterAll(async () => {
    await t.fake.webhooksIdle();
    await t.close();
  });

  /** Creates a subscription whose charges and reservations carry no feedback_url: Bootpay's webhooks are lost. */
  async function subscribeUnheard(planId: string, card: Record<string, string> = {}) {
    const publicBaseUrl = t.runtime.config.publicBaseUrl;
    t.runtime.config.publicBaseUrl = undefined;
    try {
      const { customer, key } = await customerWithKey(t, card);
      const sub = await createSubscription(t, { customer_id: customer.id, plan_id: planId, billing_key_id: key.id });
      return { sub, key };
    } finally {
      t.runtime.config.publicBaseUrl = publicBaseUrl;
    }
  }

  it('should list on the day of the refund a payment approved the day before and refunded at Bootpay, its webhook lost', async () => {
    t.clock.set(new Date('2026-03-10T01:00:00Z')); // 03-10 10:00 in Seoul
    const plan = await createPlan(t, { amount: 11000 });
    const { sub } = await subscribeUnheard(plan.id);
    const payment = (await t.http.get(`/v1/payments?subscription_id=${sub.id}`).set(bearer(t.adminKey))).body.data[0];
    expect(payment).toMatchObject({ status: 'DONE', amount: 11000 });

    t.clock.set(new Date('2026-03-11T03:00:00Z')); // 03-11 12:00 in Seoul: refunded in Bootpay's console
    const cancel = await callFakeBootpay(t, 'POST', 'cancel', { receipt_id: payment.receipt_id, cancel_id: 'console-full' });
    expect(cancel.status).toBe(200);

    t.clock.set(new Date('2026-03-12T01:00:00Z'));
    const report = await t.http.get('/v1/reports/reconciliation?date=2026-03-11').set(bearer(t.adminKey));
    expect(report.status).toBe(200);
    const mine = report.body.differences.filter((d: { id: string }) => d.id === payment.id);
    expect(mine).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ kind: 'payment', field: 'status', local: 'DONE', bootpay: 'CANCELED', bootpay_changed_at: '2026-03-11T03:00:00.000Z' }),
        expect.objectContaining({ kind: 'payment', field: 'refunded_amount', local: 0, bootpay: 11000 }),
      ]),
    );
    expect(report.body.payments).toBeGreaterThanOrEqual(1);
    // The day after, Bootpay recorded nothing of it.
    const next = await t.http.get('/v1/reports/reconciliation?date=2026-03-12').set(bearer(t.adminKey));
    expect(next.body.differences.filter((d: { id: string }) => d.id === payment.id)).toEqual([]);
  });

  it('should tell a declined reservation from a paid and a revoked one', async () => {
    t.clock.set(new Date('2026-03-10T01:00:00Z'));
    const plan = await createPlan(t, { amount: 11000, charge_mode: 'reservation' });
    const paid = await subscribeUnheard(plan.id);
    const declined = await subscribeUnheard(plan.id);
    const revoked = await subscribeUnheard(plan.id);
    const reservationOf = async (subId: string) =>
      (await t.http.get(`/v1/payments?subscription_id=${subId}&status=READY`).set(bearer(t.adminKey))).body.data[0] as { id: string; reserve_id: string };
    const [rPaid, rDeclined, rRevoked] = [await reservationOf(paid.sub.id), await reservationOf(declined.sub.id), await reservationOf(revoked.sub.id)];
    expect([rPaid, rDeclined, rRevoked].every((r) => r?.reserve_id)).toBe(true);

    // At Bootpay: one reservation revoked in the console; at the period's start one key declines, the others execute.
    expect((await callFakeBootpay(t, 'DELETE', `subscribe/payment/reserve/${rRevoked.reserve_id}`)).status).toBe(200);
    t.fake.setKeyBehavior(declined.key.bootpay_receipt_id, 'insufficient_funds');
    const executeAt = new Date(paid.sub.next_charge_at as string);
    t.clock.set(executeAt);
    await t.fake.executeDueReservations(executeAt);
    await t.fake.webhooksIdle();

    t.clock.set(new Date(executeAt.getTime() + DAY));
    const report = await t.http.get(`/v1/reports/reconciliation?date=${seoulDay(executeAt)}`).set(bearer(t.adminKey));
    expect(report.status).toBe(200);
    const statusOf = (id: string) => report.body.differences.find((d: { id: string; field: string }) => d.id === id && d.field === 'status');
    expect(statusOf(rPaid.id)).toMatchObject({
      kind: 'reservation',
      reserve_id: rPaid.reserve_id,
      local: 'reserved',
      bootpay: 'paid',
      receipt_id: expect.any(String),
    });
    expect(statusOf(rDeclined.id)).toMatchObject({ kind: 'reservation', reserve_id: rDeclined.reserve_id, local: 'reserved', bootpay: 'declined' });
    expect(statusOf(rRevoked.id)).toMatchObject({ kind: 'reservation', reserve_id: rRevoked.reserve_id, local: 'reserved', bootpay: 'revoked' });
  });
});
