import { createPlan, createSubscription, customerWithKey, runCharges } from './utils/fixtures';
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
});
