import { ConsentNoticesService } from '../src/consents/consent-notices.service';
import { createPlan, createSubscription, customerWithKey, eventsOf, getSubscription, ledgerChargesOf, paymentDetails, runCharges } from './utils/fixtures';
import { bearer, startTestApp, T0, TestApp } from './utils/test-app';

/**
 * Issue 14: consent before a paid conversion or a price increase (전자상거래법 제13조 제6항, 시행령 제20조의2), and the
 * notices before them. Every case checks the fake Bootpay's ledger for what was really charged.
 */

/** The rule is on by default; the test harness turns it off for the tests of other features. */
const ON = { CONSENT_REQUIRED: 'true' };
const HOUR = 3600_000;
const DAY = 24 * HOUR;
const plus = (d: Date, ms: number) => new Date(d.getTime() + ms);
const iso = (d: Date) => d.toISOString();
/** 03:00 in Seoul (the nightly run) on the business day of `d`, for instants at 10:00 KST like T0's. */
const runTimeOn = (d: Date) => plus(d, -7 * HOUR);

type Sub = {
  id: string;
  status: string;
  plan_id: string;
  trial_end: string | null;
  next_charge_at: string | null;
  cancel_reason: string | null;
  ended_at: string | null;
};

async function subscribe(t: TestApp, planId: string): Promise<Sub> {
  const { customer, key } = await customerWithKey(t);
  return (await createSubscription(t, { customer_id: customer.id, plan_id: planId, billing_key_id: key.id })) as Sub;
}

function recordConsent(t: TestApp, subId: string, body: Record<string, unknown>, key = t.serviceKey) {
  return t.http
    .post(`/v1/subscriptions/${subId}/consents`)
    .set(bearer(key))
    .send({ channel: 'web', evidence: 'notice text v3 shown; message msg_81f2', ...body });
}

async function runAt(t: TestApp, at: Date) {
  t.clock.set(at);
  const run = await runCharges(t);
  expect(run.status).toBe('completed');
  return run;
}

/** The outbound webhook events of a subscription of one type, oldest first (what the SaaS backend is sent). */
async function sentEvents(t: TestApp, subId: string, type: string) {
  const rows = (await t.db.query(`SELECT payload FROM webhook_events WHERE subscription_id = $1 AND type = $2 ORDER BY seq`, [subId, type])).rows as {
    payload: { data: { object: Record<string, unknown> } };
  }[];
  return rows.map((r) => r.payload.data.object);
}

async function sweepNotices(t: TestApp, at: Date) {
  t.clock.set(at);
  const res = await t.http.post('/v1/consent-notices/runs').set(bearer(t.adminKey));
  expect(res.status).toBe(200);
  return res.body as { consent_required: number; renewal_upcoming: number };
}

describe('Consent before a paid conversion (trials)', () => {
  let t: TestApp;
  beforeEach(async () => {
    t = await startTestApp({ env: ON });
  });
  afterEach(async () => {
    await t.fake.webhooksIdle();
    await t.close();
  });

  it('registers no Bootpay reservation for a trial’s end (reservation mode), so a trial without consent is never charged', async () => {
    const plan = await createPlan(t, { name: 'Reserved trial', amount: 11000, interval: 'month', trial_days: 14, charge_mode: 'reservation' });
    const { customer, key } = await customerWithKey(t);
    const sub = (await createSubscription(t, { customer_id: customer.id, plan_id: plan.id, billing_key_id: key.id })) as Sub;
    expect((await t.http.get(`/v1/billing-keys/${key.id}/reservations`).set(bearer(t.adminKey))).body.reservations).toEqual([]);
    expect(t.fake.ledger().reservations).toEqual([]);
    const trialEnd = new Date(sub.trial_end!);
    t.clock.set(trialEnd);
    await t.fake.executeDueReservations(trialEnd);
    await runAt(t, runTimeOn(trialEnd));
    expect(ledgerChargesOf(t, sub.id)).toEqual([]);
    expect(await getSubscription(t, sub.id)).toMatchObject({ status: 'canceled' });
  });

  it('converts a 14-day trial with a consent and charges it once, the payment naming the consent', async () => {
    const plan = await createPlan(t, { name: 'Pro trial', amount: 11000, interval: 'month', trial_days: 14 });
    const sub = await subscribe(t, plan.id);
    const trialEnd = new Date(sub.trial_end!);
    expect(trialEnd).toEqual(plus(T0, 14 * DAY));
    // A trial of 30 days or less is inside the window at once: the notice is sent at creation.
    expect(await sentEvents(t, sub.id, 'subscription.consent_required')).toEqual([
      expect.objectContaining({
        change: 'trial_conversion',
        date: iso(trialEnd),
        amount: 11000,
        price_before: 0,
        plan: { id: plan.id, name: 'Pro trial' },
        without_consent: expect.objectContaining({ action: 'cancel' }),
      }),
    ]);
    // It is written with the subscription, as its second event, so the day's sweep has nothing more to send.
    const sequences = await t.db.query(`SELECT type, sequence FROM webhook_events WHERE subscription_id = $1 ORDER BY sequence`, [sub.id]);
    expect(sequences.rows).toEqual([
      { type: 'subscription.created', sequence: 1 },
      { type: 'subscription.consent_required', sequence: 2 },
    ]);
    expect(await sweepNotices(t, T0)).toMatchObject({ consent_required: 0 });
    expect(await sentEvents(t, sub.id, 'subscription.consent_required')).toHaveLength(1);

    t.clock.set(plus(T0, DAY));
    const res = await recordConsent(t, sub.id, { kind: 'trial_conversion', obtained_at: iso(plus(T0, DAY)) });
    expect(res.status).toBe(201);
    expect(res.body).toMatchObject({
      kind: 'trial_conversion',
      change_at: iso(trialEnd),
      price_before: 0,
      price_after: 11000,
      payment_method: { card_no_masked: expect.stringMatching(/\S/) },
      status: 'valid',
      counts: true,
    });
    expect((await eventsOf(t, sub.id)).map((e) => e.type)).toContain('subscription.consent_recorded');

    // The day before the trial ends nothing is due; on its day it converts and is charged once.
    await runAt(t, runTimeOn(plus(trialEnd, -DAY)));
    expect(ledgerChargesOf(t, sub.id)).toHaveLength(0);
    await runAt(t, runTimeOn(trialEnd));
    await runAt(t, plus(runTimeOn(trialEnd), HOUR));
    expect(ledgerChargesOf(t, sub.id).map((c) => c.price)).toEqual([11000]);
    expect(await getSubscription(t, sub.id)).toMatchObject({ status: 'active', current_period_start: iso(trialEnd) });
    const [payment] = (await paymentDetails(t, sub.id)) as unknown as { status: string; consent_id: string | null }[];
    expect(payment).toMatchObject({ status: 'DONE', consent_id: res.body.id });
  });

  it('never charges a trial that ends without a consent: it ends with the reason recorded and subscription.canceled sent', async () => {
    const plan = await createPlan(t, { name: 'Pro trial', amount: 11000, interval: 'month', trial_days: 14 });
    const sub = await subscribe(t, plan.id);
    const trialEnd = new Date(sub.trial_end!);

    const run = await runAt(t, runTimeOn(trialEnd));
    expect(run.counts).toMatchObject({ charged: 0, canceled: 1 });
    expect(await getSubscription(t, sub.id)).toMatchObject({
      status: 'canceled',
      cancel_reason: 'no consent to the paid conversion',
      ended_at: iso(trialEnd),
      next_charge_at: null,
    });
    expect(await sentEvents(t, sub.id, 'subscription.canceled')).toHaveLength(1);
    const canceled = (await eventsOf(t, sub.id)).find((e) => e.type === 'subscription.canceled');
    expect(canceled).toMatchObject({ actor: { type: 'system' }, data: expect.objectContaining({ consent_missing: 'trial_conversion' }) });

    await runAt(t, plus(trialEnd, 31 * DAY));
    expect(ledgerChargesOf(t, sub.id)).toHaveLength(0);
    expect(t.fake.ledger().failed_charges.filter((c) => c.order_id.startsWith(`s${sub.id.replace(/-/g, '')}-`))).toHaveLength(0);
    // A consent after the end changes nothing: there is no conversion left to consent to.
    expect((await recordConsent(t, sub.id, { kind: 'trial_conversion', obtained_at: iso(t.clock.now()) })).status).toBe(409);
  });

  it('does not count a consent obtained more than 30 days before the conversion', async () => {
    const plan = await createPlan(t, { name: 'Long trial', amount: 11000, interval: 'month', trial_days: 45 });
    const sub = await subscribe(t, plan.id);
    const trialEnd = new Date(sub.trial_end!);
    const res = await recordConsent(t, sub.id, { kind: 'trial_conversion', obtained_at: iso(T0) });
    expect(res.status).toBe(201);
    expect(res.body).toMatchObject({ status: 'too_early', counts: false, change_at: iso(trialEnd), window_opens_at: iso(plus(trialEnd, -30 * DAY)) });

    // The compliance report lists the coming conversion as missing its consent.
    t.clock.set(plus(trialEnd, -10 * DAY));
    const report = await t.http.get(`/v1/reports/consents?due_before=${iso(plus(trialEnd, DAY))}`).set(bearer(t.adminKey));
    expect(report.status).toBe(200);
    expect(report.body.data).toEqual([
      expect.objectContaining({ subscription_id: sub.id, kind: 'trial_conversion', change_at: iso(trialEnd), consent_status: 'missing', price_after: 11000 }),
    ]);
    expect((await t.http.get('/v1/reports/consents').set(bearer(t.serviceKey))).status).toBe(403);

    await runAt(t, runTimeOn(trialEnd));
    expect(await getSubscription(t, sub.id)).toMatchObject({ status: 'canceled', cancel_reason: 'no consent to the paid conversion' });
    expect(ledgerChargesOf(t, sub.id)).toHaveLength(0);
  });

  it('does not count a withdrawn consent', async () => {
    const plan = await createPlan(t, { name: 'Pro trial', amount: 11000, interval: 'month', trial_days: 14 });
    const sub = await subscribe(t, plan.id);
    const trialEnd = new Date(sub.trial_end!);
    t.clock.set(plus(T0, 2 * DAY));
    const consent = await recordConsent(t, sub.id, { kind: 'trial_conversion', obtained_at: iso(plus(T0, 2 * DAY)) });
    expect(consent.body.status).toBe('valid');
    t.clock.set(plus(T0, 5 * DAY));
    const withdrawn = await t.http
      .post(`/v1/subscriptions/${sub.id}/consents/${consent.body.id}/withdraw`)
      .set(bearer(t.serviceKey))
      .send({ reason: 'changed my mind' });
    expect(withdrawn.status).toBe(200);
    expect(withdrawn.body).toMatchObject({ status: 'withdrawn', counts: false, withdrawn_at: iso(plus(T0, 5 * DAY)) });
    expect((await t.http.post(`/v1/subscriptions/${sub.id}/consents/${consent.body.id}/withdraw`).set(bearer(t.serviceKey)).send({})).status).toBe(409);
    const list = await t.http.get(`/v1/subscriptions/${sub.id}/consents`).set(bearer(t.serviceKey));
    expect(list.body.data).toEqual([expect.objectContaining({ id: consent.body.id, status: 'withdrawn' })]);
    expect((await eventsOf(t, sub.id)).map((e) => e.type)).toEqual(expect.arrayContaining(['subscription.consent_recorded', 'subscription.consent_withdrawn']));

    await runAt(t, runTimeOn(trialEnd));
    expect(await getSubscription(t, sub.id)).toMatchObject({ status: 'canceled' });
    expect(ledgerChargesOf(t, sub.id)).toHaveLength(0);
  });

  it('pages the consents of a subscription oldest first, like every list, and refuses a cursor it did not write', async () => {
    const plan = await createPlan(t, { name: 'Pro trial', amount: 11000, interval: 'month', trial_days: 14 });
    const sub = await subscribe(t, plan.id);
    const recorded: string[] = [];
    for (let i = 0; i < 5; i++) {
      t.clock.set(plus(T0, i * HOUR));
      const res = await recordConsent(t, sub.id, { kind: 'trial_conversion', obtained_at: iso(plus(T0, i * HOUR)) });
      expect(res.status).toBe(201);
      recorded.push(res.body.id);
    }
    const seen: string[] = [];
    let cursor: string | null = null;
    let pages = 0;
    do {
      const res: { status: number; body: { data: { id: string }[]; has_more: boolean; next_cursor: string | null } } = await t.http
        .get(`/v1/subscriptions/${sub.id}/consents?limit=2${cursor ? `&cursor=${cursor}` : ''}`)
        .set(bearer(t.serviceKey));
      expect(res.status).toBe(200);
      expect(res.body.data.length).toBeLessThanOrEqual(2);
      seen.push(...res.body.data.map((c) => c.id));
      expect(res.body.has_more).toBe(res.body.next_cursor !== null);
      cursor = res.body.next_cursor;
      pages++;
    } while (cursor);
    expect(pages).toBe(3);
    expect(seen).toEqual(recorded);
    const bad = await t.http.get(`/v1/subscriptions/${sub.id}/consents?cursor=bm90LWEtY3Vyc29y`).set(bearer(t.serviceKey));
    expect(bad.status).toBe(400);
    expect(bad.body.details).toEqual([expect.objectContaining({ field: 'cursor' })]);
  });

  it('keeps a conversion consent across a change to a dearer plan the SaaS backend asked for (its own consent), and charges the new price', async () => {
    const plan = await createPlan(t, { name: 'Pro trial', amount: 11000, interval: 'month', trial_days: 14 });
    const dearer = await createPlan(t, { name: 'Team trial', amount: 33000, interval: 'month', trial_days: 14 });
    const sub = await subscribe(t, plan.id);
    const consent = await recordConsent(t, sub.id, { kind: 'trial_conversion', obtained_at: iso(T0) });
    t.clock.set(plus(T0, 3 * DAY));
    const changed = await t.http.post(`/v1/subscriptions/${sub.id}/change-plan`).set(bearer(t.serviceKey)).send({ plan_id: dearer.id, proration: 'now' });
    expect(changed.status).toBe(200);
    await runAt(t, runTimeOn(new Date(sub.trial_end!)));
    expect(await getSubscription(t, sub.id)).toMatchObject({ status: 'active', plan_id: dearer.id });
    expect(ledgerChargesOf(t, sub.id).map((c) => c.price)).toEqual([33000]);
    const [payment] = (await paymentDetails(t, sub.id)) as unknown as { consent_id: string | null }[];
    expect(payment.consent_id).toBe(consent.body.id);
  });

  it('refuses bad consents field by field and stores nothing', async () => {
    const plan = await createPlan(t, { name: 'Pro trial', amount: 11000, interval: 'month', trial_days: 14 });
    const sub = await subscribe(t, plan.id);
    const bad = async (body: Record<string, unknown>, field: string) => {
      const res = await t.http.post(`/v1/subscriptions/${sub.id}/consents`).set(bearer(t.serviceKey)).send(body);
      expect(res.status).toBe(400);
      expect(res.body.details.map((d: { field: string }) => d.field)).toContain(field);
    };
    const good = { kind: 'trial_conversion', obtained_at: iso(T0), channel: 'web', evidence: 'notice v3' };
    await bad({ ...good, kind: 'blanket_terms' }, 'kind');
    await bad({ ...good, obtained_at: 'yesterday' }, 'obtained_at');
    await bad({ ...good, obtained_at: iso(plus(T0, DAY)) }, 'obtained_at');
    await bad({ ...good, channel: '' }, 'channel');
    await bad({ ...good, evidence: undefined }, 'evidence');
    await bad({ ...good, kind: 'price_increase' }, 'change_id');
    await bad({ ...good, change_id: 'nope' }, 'change_id');
    expect((await t.db.query('SELECT count(*)::int AS n FROM consents')).rows[0].n).toBe(0);
    expect((await recordConsent(t, '00000000-0000-4000-8000-000000000000', { kind: 'trial_conversion', obtained_at: iso(T0) })).status).toBe(404);
    const unknownMigration = await recordConsent(t, sub.id, {
      kind: 'price_increase',
      change_id: '00000000-0000-4000-8000-000000000000',
      obtained_at: iso(T0),
    });
    expect(unknownMigration.status).toBe(422);
    expect(unknownMigration.body.details).toEqual([{ field: 'change_id', message: 'no plan migration has this id' }]);
    const report = await t.http.get('/v1/reports/consents?due_before=soon').set(bearer(t.adminKey));
    expect(report.status).toBe(400);
    expect(report.body.details.map((d: { field: string }) => d.field)).toEqual(['due_before']);
    const migration = await t.http.post(`/v1/plans/${plan.id}/migrations`).set(bearer(t.adminKey)).send({ to_plan_id: plan.id, effective_at: 'tomorrow' });
    expect(migration.status).toBe(400);
    expect(migration.body.details.map((d: { field: string }) => d.field).sort()).toEqual(['effective_at']);
    expect((await t.http.get(`/v1/plans/${plan.id}/migrations/00000000-0000-4000-8000-000000000000`).set(bearer(t.adminKey))).status).toBe(404);
  });

  it('pauses instead of ending when CONSENT_MISSING_ACTION=pause, and a plan without a trial needs no conversion consent', async () => {
    await t.close();
    t = await startTestApp({ env: { ...ON, CONSENT_MISSING_ACTION: 'pause' } });
    const trial = await createPlan(t, { name: 'Pro trial', amount: 11000, interval: 'month', trial_days: 14 });
    const sub = await subscribe(t, trial.id);
    const noTrial = await subscribe(t, (await createPlan(t, { name: 'Pro', amount: 11000, interval: 'month' })).id);
    expect(noTrial.status).toBe('active');

    await runAt(t, runTimeOn(new Date(sub.trial_end!)));
    expect(await getSubscription(t, sub.id)).toMatchObject({ status: 'paused', pause: { reason: 'no consent to the paid conversion' } });
    expect(await sentEvents(t, sub.id, 'subscription.paused')).toHaveLength(1);
    expect(ledgerChargesOf(t, sub.id)).toHaveLength(0);

    await runAt(t, runTimeOn(new Date('2026-02-15T01:00:00Z')));
    expect(ledgerChargesOf(t, noTrial.id).map((c) => c.price)).toEqual([11000, 11000]);

    // Resuming it would charge the conversion: refused without the consent, charged once with it.
    const refused = await t.http.post(`/v1/subscriptions/${sub.id}/resume`).set(bearer(t.adminKey)).send({});
    expect(refused.status).toBe(409);
    expect(refused.body.code).toBe('consent_required');
    expect(ledgerChargesOf(t, sub.id)).toHaveLength(0);
    const consent = await recordConsent(t, sub.id, { kind: 'trial_conversion', obtained_at: t.clock.now().toISOString() });
    expect(consent.status).toBe(201);
    const resumed = await t.http.post(`/v1/subscriptions/${sub.id}/resume`).set(bearer(t.adminKey)).send({});
    expect(resumed.status).toBe(200);
    expect(resumed.body.status).toBe('active');
    expect(ledgerChargesOf(t, sub.id).map((c) => c.price)).toEqual([11000]);
  });
});

describe('With CONSENT_REQUIRED=false', () => {
  it('converts a trial without a consent and sends no consent notice', async () => {
    const t = await startTestApp({ env: { CONSENT_REQUIRED: 'false' } });
    try {
      const plan = await createPlan(t, { name: 'Pro trial', amount: 11000, interval: 'month', trial_days: 14 });
      const sub = await subscribe(t, plan.id);
      expect(await sentEvents(t, sub.id, 'subscription.consent_required')).toHaveLength(0);
      await runAt(t, runTimeOn(new Date(sub.trial_end!)));
      expect(await getSubscription(t, sub.id)).toMatchObject({ status: 'active' });
      expect(ledgerChargesOf(t, sub.id).map((c) => c.price)).toEqual([11000]);
    } finally {
      await t.close();
    }
  });
});

describe('Consent before a price increase (plan migrations)', () => {
  let t: TestApp;
  beforeEach(async () => {
    t = await startTestApp({ env: ON });
  });
  afterEach(async () => {
    await t.fake.webhooksIdle();
    await t.close();
  });

  it('switches only the consenting subscriptions, each at its renewal; the rest end at their period ends, never charged the new price', async () => {
    const basic = await createPlan(t, { name: 'Basic', amount: 11000, interval: 'month' });
    const pricier = await createPlan(t, { name: 'Basic 2026', amount: 22000, interval: 'month' });
    const s1 = await subscribe(t, basic.id); // renews on the 15th
    const s2 = await subscribe(t, basic.id);
    t.clock.set(plus(T0, 5 * DAY));
    const s3 = await subscribe(t, basic.id); // renews on the 20th
    const feb15 = new Date('2026-02-15T01:00:00Z');
    const feb20 = new Date('2026-02-20T01:00:00Z');
    const mar15 = new Date('2026-03-15T01:00:00Z');

    const body = { to_plan_id: pricier.id, effective_at: '2026-02-01T00:00:00+09:00' };
    expect((await t.http.post(`/v1/plans/${basic.id}/migrations`).set(bearer(t.serviceKey)).send(body)).status).toBe(403);
    expect(
      (
        await t.http
          .post(`/v1/plans/${basic.id}/migrations`)
          .set(bearer(t.adminKey))
          .send({ ...body, effective_at: '2025-01-01T00:00:00Z' })
      ).status,
    ).toBe(400);
    const created = await t.http.post(`/v1/plans/${basic.id}/migrations`).set(bearer(t.adminKey)).send(body);
    expect(created.status).toBe(201);
    expect(created.body).toMatchObject({ requires_consent: true, progress: { switched: 0, ended: 0, waiting_for_consent: 3 } });
    expect((await t.http.post(`/v1/plans/${basic.id}/migrations`).set(bearer(t.adminKey)).send(body)).status).toBe(409);
    const migrationId = created.body.id as string;

    t.clock.set(new Date('2026-02-01T01:00:00Z'));
    const c1 = await recordConsent(t, s1.id, { kind: 'price_increase', change_id: migrationId, obtained_at: iso(t.clock.now()) });
    expect(c1.status).toBe(201);
    expect(c1.body).toMatchObject({ change_at: iso(feb15), price_before: 11000, price_after: 22000, plan_id_after: pricier.id, status: 'valid' });
    const report = await t.http.get(`/v1/reports/consents?due_before=2026-03-01T00:00:00Z`).set(bearer(t.adminKey));
    const rows = report.body.data.map((r: { subscription_id: string; consent_status: string; change_at: string }) => [
      r.subscription_id,
      r.consent_status,
      r.change_at,
    ]);
    expect(rows).toHaveLength(3);
    expect(rows).toEqual(
      expect.arrayContaining([
        [s1.id, 'valid', iso(feb15)],
        [s2.id, 'missing', iso(feb15)],
        [s3.id, 'missing', iso(feb20)],
      ]),
    );
    t.clock.set(new Date('2026-02-10T01:00:00Z'));
    expect((await recordConsent(t, s3.id, { kind: 'price_increase', change_id: migrationId, obtained_at: iso(t.clock.now()) })).status).toBe(201);

    await runAt(t, runTimeOn(feb15));
    expect(await getSubscription(t, s1.id)).toMatchObject({ status: 'active', plan_id: pricier.id, current_period_start: iso(feb15) });
    expect(await getSubscription(t, s2.id)).toMatchObject({
      status: 'canceled',
      plan_id: basic.id,
      cancel_reason: 'no consent to the price increase',
      ended_at: iso(feb15),
    });
    expect(await getSubscription(t, s3.id)).toMatchObject({ status: 'active', plan_id: basic.id });
    const progress = await t.http.get(`/v1/plans/${basic.id}/migrations/${migrationId}`).set(bearer(t.adminKey));
    expect(progress.body.progress).toEqual({
      switched: 1,
      ended: 1,
      paused: 0,
      consented_waiting_for_renewal: 1,
      waiting_for_consent: 0,
      waiting_for_renewal: 0,
    });

    await runAt(t, runTimeOn(feb20));
    await runAt(t, runTimeOn(mar15));
    expect(ledgerChargesOf(t, s1.id).map((c) => c.price)).toEqual([11000, 22000, 22000]);
    expect(ledgerChargesOf(t, s2.id).map((c) => c.price)).toEqual([11000]);
    expect(ledgerChargesOf(t, s3.id).map((c) => c.price)).toEqual([11000, 22000]);
    const s1Payments = (await paymentDetails(t, s1.id)) as unknown as { amount: number; consent_id: string | null }[];
    expect(s1Payments.map((p) => [p.amount, p.consent_id])).toEqual([
      [11000, null],
      [22000, c1.body.id],
      [22000, null],
    ]);
    expect((await t.http.get(`/v1/plans/${basic.id}/migrations/${migrationId}`).set(bearer(t.adminKey))).body.progress).toMatchObject({
      switched: 2,
      ended: 1,
      waiting_for_consent: 0,
    });
  });

  it('moves subscriptions to a plan of the same or a lower price at their renewal without consent', async () => {
    const basic = await createPlan(t, { name: 'Basic', amount: 11000, interval: 'month' });
    const cheaper = await createPlan(t, { name: 'Basic lite', amount: 5500, interval: 'month' });
    const sub = await subscribe(t, basic.id);
    const created = await t.http
      .post(`/v1/plans/${basic.id}/migrations`)
      .set(bearer(t.adminKey))
      .send({ to_plan_id: cheaper.id, effective_at: iso(plus(T0, DAY)) });
    expect(created.body).toMatchObject({ requires_consent: false, progress: { waiting_for_renewal: 1 } });
    await runAt(t, runTimeOn(new Date('2026-02-15T01:00:00Z')));
    expect(await getSubscription(t, sub.id)).toMatchObject({ status: 'active', plan_id: cheaper.id });
    expect(ledgerChargesOf(t, sub.id).map((c) => c.price)).toEqual([11000, 5500]);
  });
});

describe('Notices before a conversion, a price increase and each renewal', () => {
  it('sends each notice once, on its day, across a restart on the same database', async () => {
    const t = await startTestApp({ env: ON });
    let t2: TestApp | undefined;
    try {
      const monthly = await createPlan(t, { name: 'Pro', amount: 11000, interval: 'month' });
      const longTrial = await createPlan(t, { name: 'Long trial', amount: 11000, interval: 'month', trial_days: 45 });
      const pricier = await createPlan(t, { name: 'Pro 2026', amount: 16500, interval: 'month' });
      const renewing = await subscribe(t, monthly.id); // renews 2026-02-15 10:00 KST
      const trialing = await subscribe(t, longTrial.id); // converts 2026-03-01 10:00 KST
      const trialEnd = new Date(trialing.trial_end!);
      expect(trialEnd).toEqual(new Date('2026-03-01T01:00:00Z'));
      // A 45-day trial is not yet in its 30-day window: nothing at creation.
      expect(await sentEvents(t, trialing.id, 'subscription.consent_required')).toHaveLength(0);

      // The window opens on 2026-01-30 (10:00 KST): the day before, nothing; on the day, one notice.
      await sweepNotices(t, runTimeOn(new Date('2026-01-29T01:00:00Z')));
      expect(await sentEvents(t, trialing.id, 'subscription.consent_required')).toHaveLength(0);
      await sweepNotices(t, runTimeOn(new Date('2026-01-30T01:00:00Z')));
      expect(await sentEvents(t, trialing.id, 'subscription.consent_required')).toEqual([
        expect.objectContaining({ change: 'trial_conversion', date: iso(trialEnd), amount: 11000, plan: { id: longTrial.id, name: 'Long trial' } }),
      ]);

      // RENEWAL_NOTICE_DAYS (7): the renewal of 2026-02-15 is announced on 2026-02-08, not before.
      await sweepNotices(t, runTimeOn(new Date('2026-02-07T01:00:00Z')));
      expect(await sentEvents(t, renewing.id, 'subscription.renewal_upcoming')).toHaveLength(0);
      await sweepNotices(t, runTimeOn(new Date('2026-02-08T01:00:00Z')));
      expect(await sentEvents(t, renewing.id, 'subscription.renewal_upcoming')).toEqual([
        expect.objectContaining({ date: '2026-02-15T01:00:00.000Z', amount: 11000, charge: 'renewal', plan: { id: monthly.id, name: 'Pro' } }),
      ]);
      // A price increase from 2026-03-20: the renewal on or after it is 2026-03-15's next, 2026-04-15; its window opens 2026-03-16.
      const migration = await t.http
        .post(`/v1/plans/${monthly.id}/migrations`)
        .set(bearer(t.adminKey))
        .send({ to_plan_id: pricier.id, effective_at: '2026-03-20T00:00:00+09:00' });
      expect(migration.status).toBe(201);

      // A restart: another process on the same database (its own clock, set to the same day).
      t2 = await startTestApp({ env: ON, databaseUrl: t.databaseUrl, encryptionKey: t.encryptionKey, now: t.clock.now() });
      await sweepNotices(t2, runTimeOn(new Date('2026-02-08T01:00:00Z')));
      await sweepNotices(t2, runTimeOn(new Date('2026-02-09T01:00:00Z')));
      expect(await sentEvents(t, renewing.id, 'subscription.renewal_upcoming')).toHaveLength(1);
      expect(await sentEvents(t, trialing.id, 'subscription.consent_required')).toHaveLength(1);
      // The trial's conversion is a charge too: announced on 2026-02-22, once.
      await sweepNotices(t2, runTimeOn(new Date('2026-02-22T01:00:00Z')));
      await sweepNotices(t2, plus(runTimeOn(new Date('2026-02-22T01:00:00Z')), 5 * HOUR));
      expect(await sentEvents(t, trialing.id, 'subscription.renewal_upcoming')).toEqual([
        expect.objectContaining({ date: iso(trialEnd), charge: 'trial_conversion' }),
      ]);

      await sweepNotices(t2, runTimeOn(new Date('2026-03-15T01:00:00Z')));
      expect(await sentEvents(t, renewing.id, 'subscription.consent_required')).toHaveLength(0);
      await sweepNotices(t2, runTimeOn(new Date('2026-03-16T01:00:00Z')));
      await sweepNotices(t, runTimeOn(new Date('2026-03-17T01:00:00Z')));
      expect(await sentEvents(t, renewing.id, 'subscription.consent_required')).toEqual([
        expect.objectContaining({
          change: 'price_increase',
          change_id: migration.body.id,
          date: '2026-04-15T01:00:00.000Z',
          price_before: 11000,
          amount: 16500,
        }),
      ]);

      // The scheduled task's tick is claimed by one instance.
      const tick = new Date('2026-03-17T00:10:00Z');
      const first = await t.app.get(ConsentNoticesService).tick(tick, 'instance-a');
      const second = await t2.app.get(ConsentNoticesService).tick(tick, 'instance-b');
      expect([first === null, second === null]).toEqual([false, true]);
    } finally {
      await t2?.close();
      await t.close();
    }
  });
});
