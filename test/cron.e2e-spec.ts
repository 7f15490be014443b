import { ChargeRunCron } from '../src/charging/charge-run.cron';
import { createPlan, createSubscription, customerWithKey, startSiblingApp } from './utils/fixtures';
import { bearer, startTestApp, TestApp } from './utils/test-app';

describe('The nightly cron across instances', () => {
  let t: TestApp;
  let sibling: Awaited<ReturnType<typeof startSiblingApp>>;

  beforeAll(async () => {
    t = await startTestApp();
    sibling = await startSiblingApp(t);
  });
  afterAll(async () => {
    await sibling.close();
    await t.close();
  });

  it('should make one run for a tick fired by two instances at once, and charge each due subscription once', async () => {
    const plan = await createPlan(t);
    const subs = [];
    for (let i = 0; i < 3; i++) {
      const { customer, key } = await customerWithKey(t);
      subs.push(await createSubscription(t, { customer_id: customer.id, plan_id: plan.id, billing_key_id: key.id }));
    }
    t.clock.set(new Date(subs[0].next_charge_at));
    const tick = new Date('2026-02-14T18:00:00.250Z'); // 03:00 Asia/Seoul, as the cron fires it on both instances
    await Promise.all([t.app.get(ChargeRunCron).tick(tick), sibling.app.get(ChargeRunCron).tick(new Date(tick.getTime() + 400))]);

    const runs = (await t.http.get('/v1/charge-runs').set(bearer(t.adminKey))).body.data.filter((r: { trigger: string }) => r.trigger === 'cron');
    expect(runs).toHaveLength(1);
    expect(runs[0]).toMatchObject({ status: 'completed', scheduled_for: '2026-02-14T18:00:00.000Z', counts: expect.objectContaining({ due: 3, charged: 3 }) });
    for (const s of subs) {
      const charges = t.fake.ledger().charges.filter((c) => c.order_id.startsWith(`s${s.id.replace(/-/g, '')}`));
      expect(charges).toHaveLength(2); // the first period at creation, the renewal once
    }

    // The next night's tick is a new run.
    await t.app.get(ChargeRunCron).tick(new Date(tick.getTime() + 24 * 60 * 60 * 1000));
    const after = (await t.http.get('/v1/charge-runs').set(bearer(t.adminKey))).body.data.filter((r: { trigger: string }) => r.trigger === 'cron');
    expect(after).toHaveLength(2);
  });
});
