import { Client } from 'pg';
import { spawnChargeRun, waitUntil } from './utils/child-run';
import {
  ZERO_COUNTS,
  runCounts,
  createPlan,
  createSubscription,
  customerWithKey,
  eventsOf,
  getSubscription,
  listPayments,
  runCharges,
  startSiblingApp,
} from './utils/fixtures';
import { bearer, startTestApp, T0, TestApp } from './utils/test-app';

const SECOND = 1000;
const MINUTE = 60 * SECOND;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;
/** Open attempts are resolved once older than max(60 s, 2 × charge timeout); the test app's charge timeout is 2 s. */
const STALE_MS = 60 * SECOND;

/** Period starts of a monthly subscription anchored at T0 (2026-01-15 10:00 KST): the 15th, 10:00 KST (no DST in Seoul). */
const month = (i: number) => new Date(Date.UTC(2026, i, 15, 1, 0, 0));
const plus = (d: Date, ms: number) => new Date(d.getTime() + ms);
const iso = (d: Date) => d.toISOString();

/** The order_id a period's attempt must carry: `s<subscription hex>-<period start epoch>-p<attempt>`. */
const periodPrefix = (subId: string, periodStart: Date) => `s${subId.replace(/-/g, '')}-${Math.floor(periodStart.getTime() / 1000)}-`;
const orderIdOf = (subId: string, periodStart: Date, attempt: number) => `${periodPrefix(subId, periodStart)}p${attempt}`;

const ZERO = ZERO_COUNTS;
const counts = runCounts;

/** Moves the clock to `when` and runs a charge run to its end there. */
async function runAt(t: TestApp, when: Date) {
  t.clock.set(when);
  const run = await runCharges(t);
  expect(run.status).toBe('completed');
  return run;
}

async function subscribe(t: TestApp, planId: string, card: Record<string, string> = {}) {
  const { customer, key } = await customerWithKey(t, card);
  const sub = await createSubscription(t, { customer_id: customer.id, plan_id: planId, billing_key_id: key.id });
  return { sub: sub as { id: string; status: string; next_charge_at: string; current_period_end: string | null }, key };
}

/** Subscriptions in parallel, ten at a time. */
async function subscribeMany(t: TestApp, planId: string, n: number) {
  const out: Awaited<ReturnType<typeof subscribe>>[] = [];
  for (let i = 0; i < n; i += 10) out.push(...(await Promise.all(Array.from({ length: Math.min(10, n - i) }, () => subscribe(t, planId)))));
  return out;
}

const keyStatusAtFake = (t: TestApp, receiptId: string) => t.fake.ledger().billing_keys.find((k) => k.receipt_id === receiptId)?.status;
const chargesAtFake = (t: TestApp, prefix: string) => t.fake.ledger().charges.filter((c) => c.order_id.startsWith(prefix));
const failuresAtFake = (t: TestApp, prefix: string) => t.fake.ledger().failed_charges.filter((c) => c.order_id.startsWith(prefix));

const byOrderId = (a: { order_id: string }, b: { order_id: string }) => a.order_id.localeCompare(b.order_id);

/** The local DONE payments and Bootpay's approved charges, side by side, for a one-to-one comparison. */
async function ledgers(t: TestApp, subIds: string[]) {
  const payments = (await Promise.all(subIds.map((id) => listPayments(t, id)))).flat();
  const local = payments
    .filter((p) => p.status === 'DONE')
    .map((p) => ({ order_id: p.order_id, price: p.amount, tax_free: p.tax_free_amount }))
    .sort(byOrderId);
  const prefixes = subIds.map((id) => `s${id.replace(/-/g, '')}-`);
  const remote = t.fake
    .ledger()
    .charges.filter((c) => prefixes.some((p) => c.order_id.startsWith(p)))
    .map((c) => ({ order_id: c.order_id, price: c.price, tax_free: c.tax_free }))
    .sort(byOrderId);
  // Receipts: every receipt the service knows is the one Bootpay issued for that order.
  const receipts = new Map(t.fake.ledger().charges.map((c) => [c.order_id, c.receipt_id]));
  const wrongReceipts = payments.filter((p) => p.status === 'DONE' && p.receipt_id !== null && receipts.get(p.order_id) !== p.receipt_id);
  return { local, remote, wrongReceipts };
}

describe('Charging: renewals over six months', () => {
  let t: TestApp;

  beforeAll(async () => {
    t = await startTestApp();
  });
  afterAll(async () => {
    await t.fake.webhooksIdle();
    await t.close();
  });

  it('should renew 3 subscriptions at each due date with one DONE payment per period, deterministic order_ids and a Bootpay ledger that matches one to one', async () => {
    expect(month(0)).toEqual(T0);
    const basic = { amount: 11000, tax_free_amount: 0 };
    const edu = { amount: 33000, tax_free_amount: 3000 };
    const basicPlan = await createPlan(t, { name: 'Basic monthly', ...basic });
    const eduPlan = await createPlan(t, { name: 'Edu monthly', ...edu });
    const subs: { id: string; terms: typeof basic }[] = [];
    for (const [plan, terms] of [
      [basicPlan, basic],
      [eduPlan, edu],
      [basicPlan, basic],
    ] as const) {
      const { sub } = await subscribe(t, plan.id);
      expect(sub).toMatchObject({ status: 'active', current_period_end: iso(month(1)), next_charge_at: iso(month(1)) });
      subs.push({ id: sub.id, terms });
    }

    // The business day before the first renewal nothing is due (renewals are due by business day).
    expect((await runAt(t, plus(month(1), -DAY))).counts).toEqual(ZERO);

    const runIds: string[] = [];
    for (let m = 1; m <= 6; m++) {
      const run = await runAt(t, month(m));
      expect(run).toMatchObject({ as_of: iso(month(m)), counts: counts({ due: 3, charged: 3 }) });
      runIds.push(run.id);
      // A second run at the same instant finds nothing due.
      const again = await runAt(t, month(m));
      expect(again.counts).toEqual(ZERO);
      expect(again.id).not.toBe(run.id);
    }

    for (const s of subs) {
      const payments = await listPayments(t, s.id);
      expect(payments).toHaveLength(7);
      payments.forEach((p, i) => {
        expect(p).toMatchObject({
          status: 'DONE',
          kind: 'period',
          attempt: 1,
          order_id: orderIdOf(s.id, month(i), 1),
          amount: s.terms.amount,
          tax_free_amount: s.terms.tax_free_amount,
          period: { index: i, start: iso(month(i)), end: iso(month(i + 1)) },
          // Period 0 was charged when the subscription was created; the others by the month's run.
          charge_run_id: i === 0 ? null : runIds[i - 1],
          approved_at: iso(month(i)),
          failure: null,
        });
        expect(p.receipt_id).toMatch(/^[0-9a-f]{24}$/);
      });
      expect(await getSubscription(t, s.id)).toMatchObject({
        status: 'active',
        current_period_start: iso(month(6)),
        current_period_end: iso(month(7)),
        next_charge_at: iso(month(7)),
        dunning: { attempts: 0, next_retry_at: null, past_due_since: null, last_failure: null },
      });
    }

    const { local, remote, wrongReceipts } = await ledgers(
      t,
      subs.map((s) => s.id),
    );
    expect(local).toHaveLength(21);
    expect(remote).toEqual(local);
    expect(wrongReceipts).toEqual([]);
    expect(t.fake.ledger().charges).toHaveLength(21);
    expect(t.fake.ledger().failed_charges).toEqual([]);

    // The runs are recorded with their counts.
    const list = await t.http.get('/v1/charge-runs?limit=100').set(bearer(t.adminKey));
    expect(list.status).toBe(200);
    expect(list.body.data).toHaveLength(13);
    expect(list.body.data.map((r: { id: string }) => r.id)).toEqual(expect.arrayContaining(runIds));
    const starts = list.body.data.map((r: { started_at: string }) => r.started_at);
    expect(starts).toEqual([...starts].sort().reverse());
    for (const [i, id] of runIds.entries()) {
      const res = await t.http.get(`/v1/charge-runs/${id}`).set(bearer(t.adminKey));
      expect(res.status).toBe(200);
      expect(res.body).toMatchObject({
        id,
        trigger: 'manual',
        status: 'completed',
        requested_by: 'test admin',
        as_of: iso(month(i + 1)),
        started_at: iso(month(i + 1)),
        finished_at: iso(month(i + 1)),
        error: null,
        counts: counts({ due: 3, charged: 3 }),
      });
    }
  });

  it('should keep charge runs to the admin role', async () => {
    const before = (await t.db.query(`SELECT count(*)::int AS n FROM charge_runs`)).rows[0].n;
    const start = await t.http.post('/v1/charge-runs').set(bearer(t.serviceKey)).send({ wait: true });
    expect(start.status).toBe(403);
    expect(start.body.code).toBe('insufficient_role');
    expect((await t.http.get('/v1/charge-runs').set(bearer(t.serviceKey))).status).toBe(403);
    expect((await t.db.query(`SELECT count(*)::int AS n FROM charge_runs`)).rows[0].n).toBe(before);
  });
});

describe('Charging: declines at renewal', () => {
  let t: TestApp;
  /** [scenario, how the decline comes, error code, pg code, PG message]. `card`: a test card on a 31-day trial that ends at the renewal; `key`: setKeyBehavior after a paid first period. */
  type Case = [scenario: string, via: 'card' | 'key', code: string, pgCode: string, message: string];
  const SOFT: Case[] = [
    ['insufficient_funds', 'card', 'RC_CONFIRM_FAILED', 'F051', '잔액부족'],
    ['limit_exceeded', 'key', 'RC_CONFIRM_FAILED', 'F061', '한도초과'],
    ['pg_temporary_error', 'key', 'RC_REQUEST_FAILED', 'F096', 'PG사 일시적인 오류입니다'],
  ];
  const HARD: Case[] = [
    ['lost_or_stolen', 'card', 'RC_CONFIRM_FAILED', 'F043', '분실/도난카드'],
    ['suspended', 'key', 'RC_CONFIRM_FAILED', 'F062', '거래정지카드'],
    ['expired_card', 'key', 'RC_CONFIRM_FAILED', 'F054', '유효기간이 만료된 카드입니다'],
  ];
  const CARD_NUMBERS: Record<string, string> = { insufficient_funds: '4111110000000051', lost_or_stolen: '9411110000000043' };
  const subs = new Map<string, { id: string; keyId: string; receiptId: string }>();
  let firstRun: { id: string; counts: Record<string, number> };

  beforeAll(async () => {
    t = await startTestApp();
    const monthly = await createPlan(t, { amount: 11000 });
    const trial = await createPlan(t, { amount: 11000, trial_days: 31 });
    for (const [scenario, via] of [...SOFT, ...HARD]) {
      if (via === 'card') {
        const { sub, key } = await subscribe(t, trial.id, { card_no: CARD_NUMBERS[scenario] });
        expect(sub).toMatchObject({ status: 'trialing', next_charge_at: iso(month(1)) });
        subs.set(scenario, { id: sub.id, keyId: key.id, receiptId: key.bootpay_receipt_id });
      } else {
        const { sub, key } = await subscribe(t, monthly.id);
        expect(sub).toMatchObject({ status: 'active', next_charge_at: iso(month(1)) });
        t.fake.setKeyBehavior(key.bootpay_receipt_id, scenario);
        subs.set(scenario, { id: sub.id, keyId: key.id, receiptId: key.bootpay_receipt_id });
      }
    }
    firstRun = await runAt(t, month(1));
  });
  afterAll(async () => {
    await t.close();
  });

  it('should count every renewal as failed', () => {
    expect(firstRun.counts).toEqual(counts({ due: 6, failed: 6 }));
  });

  it.each(SOFT)(
    'should make a subscription declined for %s (%s) past_due with a retry in a day, keeping its key',
    async (scenario, _via, code, pgCode, message) => {
      const s = subs.get(scenario)!;
      expect(await getSubscription(t, s.id)).toMatchObject({
        status: 'past_due',
        next_charge_at: iso(plus(month(1), DAY)),
        canceled_at: null,
        ended_at: null,
        dunning: {
          attempts: 1,
          next_retry_at: iso(plus(month(1), DAY)),
          past_due_since: iso(month(1)),
          last_failure: { code, message: expect.stringContaining(message) },
        },
      });
      const payments = await listPayments(t, s.id);
      expect(payments.at(-1)).toMatchObject({
        status: 'ABORTED',
        order_id: orderIdOf(s.id, month(1), 1),
        attempt: 1,
        period: { start: iso(month(1)), end: iso(month(2)) },
        charge_run_id: firstRun.id,
        receipt_id: null,
        failure: { code, pg_code: pgCode, hard: false, message: expect.stringContaining(message) },
      });
      expect(failuresAtFake(t, periodPrefix(s.id, month(1))).map((f) => f.order_id)).toEqual([orderIdOf(s.id, month(1), 1)]);
      expect(chargesAtFake(t, periodPrefix(s.id, month(1)))).toEqual([]);
      expect(keyStatusAtFake(t, s.receiptId)).toBe('active');
    },
  );

  it.each(HARD)('should end a subscription declined for %s (%s) at once, with no retry, and destroy its key', async (scenario, _via, code, pgCode, message) => {
    const s = subs.get(scenario)!;
    expect(await getSubscription(t, s.id)).toMatchObject({
      status: 'canceled',
      cancel_reason: `hard decline: ${code}`,
      canceled_at: iso(month(1)),
      ended_at: iso(month(1)),
      next_charge_at: null,
      dunning: { attempts: 1, next_retry_at: null, last_failure: { code, message: expect.stringContaining(message) } },
    });
    const payments = await listPayments(t, s.id);
    expect(payments.at(-1)).toMatchObject({
      status: 'ABORTED',
      order_id: orderIdOf(s.id, month(1), 1),
      charge_run_id: firstRun.id,
      failure: { code, pg_code: pgCode, hard: true, message: expect.stringContaining(message) },
    });
    expect(keyStatusAtFake(t, s.receiptId)).toBe('destroyed');
    expect((await t.http.get(`/v1/billing-keys/${s.keyId}`).set(bearer(t.adminKey))).body.status).toBe('deleted');
  });

  it('should retry only the soft declines the next day', async () => {
    const run = await runAt(t, plus(month(1), DAY));
    expect(run.counts).toEqual(counts({ due: 3, failed: 3 }));
    for (const [scenario] of SOFT) {
      const s = subs.get(scenario)!;
      expect((await listPayments(t, s.id)).filter((p) => p.period.start === iso(month(1))).map((p) => p.order_id)).toEqual([
        orderIdOf(s.id, month(1), 1),
        orderIdOf(s.id, month(1), 2),
      ]);
      expect((await getSubscription(t, s.id)).dunning).toMatchObject({ attempts: 2, next_retry_at: iso(plus(month(1), 3 * DAY)) });
    }
    for (const [scenario] of HARD) {
      const s = subs.get(scenario)!;
      expect(failuresAtFake(t, periodPrefix(s.id, month(1)))).toHaveLength(1);
      expect(await listPayments(t, s.id)).toHaveLength(scenario === 'lost_or_stolen' ? 1 : 2);
    }
    expect(t.fake.ledger().failed_charges).toHaveLength(9);
  });
});

describe('Charging: the retry ladder (default policy: +1, +3, +5, +7 days, then cancel)', () => {
  let t: TestApp;

  beforeAll(async () => {
    t = await startTestApp();
  });
  afterAll(async () => {
    await t.fake.webhooksIdle();
    await t.close();
  });

  it('should retry at exactly +1, +3, +5 and +7 days, charge nothing the business day before, then cancel; a card that recovers mid-ladder is active again on its original anchor', async () => {
    const plan = await createPlan(t, { amount: 11000 });
    const failing = await subscribe(t, plan.id);
    const recovering = await subscribe(t, plan.id);
    t.fake.setKeyBehavior(failing.key.bootpay_receipt_id, 'insufficient_funds');
    t.fake.setKeyBehavior(recovering.key.bootpay_receipt_id, 'limit_exceeded');
    const F = month(1);

    expect((await runAt(t, F)).counts).toEqual(counts({ due: 2, failed: 2 }));
    expect((await getSubscription(t, failing.sub.id)).dunning).toMatchObject({ attempts: 1, next_retry_at: iso(plus(F, DAY)), past_due_since: iso(F) });

    const ladder: { day: number; expected: Partial<typeof ZERO>; failingNext: Date | null }[] = [
      { day: 1, expected: { due: 2, failed: 2 }, failingNext: plus(F, 3 * DAY) },
      { day: 3, expected: { due: 2, failed: 1, charged: 1 }, failingNext: plus(F, 5 * DAY) },
      { day: 5, expected: { due: 1, failed: 1 }, failingNext: plus(F, 7 * DAY) },
      { day: 7, expected: { due: 1, failed: 1 }, failingNext: null },
    ];
    for (const [i, step] of ladder.entries()) {
      // The recovering card works again before its second retry.
      if (step.day === 3) t.fake.setKeyBehavior(recovering.key.bootpay_receipt_id, null);
      const retryAt = plus(F, step.day * DAY);
      expect((await runAt(t, plus(retryAt, -DAY))).counts).toEqual(ZERO);
      expect((await runAt(t, retryAt)).counts).toEqual(counts(step.expected));
      const sub = await getSubscription(t, failing.sub.id);
      expect(sub.dunning).toMatchObject({ attempts: i + 2, next_retry_at: step.failingNext && iso(step.failingNext), past_due_since: iso(F) });
      expect(sub.next_charge_at).toBe(step.failingNext && iso(step.failingNext));
      expect(sub.status).toBe(step.failingNext ? 'past_due' : 'canceled');
    }

    // Exhausted: canceled, five attempts for the period at Bootpay (p1..p5, all declined), none approved, key destroyed.
    expect(await getSubscription(t, failing.sub.id)).toMatchObject({
      status: 'canceled',
      cancel_reason: 'dunning exhausted',
      ended_at: iso(plus(F, 7 * DAY)),
      dunning: { attempts: 5, next_retry_at: null, last_failure: { code: 'RC_CONFIRM_FAILED' } },
    });
    const failedPayments = (await listPayments(t, failing.sub.id)).filter((p) => p.period.start === iso(F));
    expect(failedPayments.map((p) => [p.order_id, p.status, p.failure?.hard])).toEqual(
      [1, 2, 3, 4, 5].map((n) => [orderIdOf(failing.sub.id, F, n), 'ABORTED', false]),
    );
    expect(failuresAtFake(t, periodPrefix(failing.sub.id, F)).map((f) => f.order_id)).toEqual([1, 2, 3, 4, 5].map((n) => orderIdOf(failing.sub.id, F, n)));
    expect(chargesAtFake(t, periodPrefix(failing.sub.id, F))).toEqual([]);
    expect(keyStatusAtFake(t, failing.key.bootpay_receipt_id)).toBe('destroyed');

    // Recovered on its retry at +3 days: paid for the ORIGINAL period, dunning reset, next renewal on the anchor.
    expect(await getSubscription(t, recovering.sub.id)).toMatchObject({
      status: 'active',
      current_period_start: iso(F),
      current_period_end: iso(month(2)),
      next_charge_at: iso(month(2)),
      dunning: { attempts: 0, next_retry_at: null, past_due_since: null, last_failure: null },
    });
    expect((await listPayments(t, recovering.sub.id)).filter((p) => p.period.start === iso(F)).map((p) => [p.order_id, p.status])).toEqual([
      [orderIdOf(recovering.sub.id, F, 1), 'ABORTED'],
      [orderIdOf(recovering.sub.id, F, 2), 'ABORTED'],
      [orderIdOf(recovering.sub.id, F, 3), 'DONE'],
    ]);

    // The next renewal: only the recovered subscription, on its anchor, first attempt.
    expect((await runAt(t, plus(month(2), -DAY))).counts).toEqual(ZERO);
    expect((await runAt(t, month(2))).counts).toEqual(counts({ due: 1, charged: 1 }));
    expect((await listPayments(t, recovering.sub.id)).at(-1)).toMatchObject({ order_id: orderIdOf(recovering.sub.id, month(2), 1), status: 'DONE' });
    expect(await listPayments(t, failing.sub.id)).toHaveLength(6);

    const { local, remote } = await ledgers(t, [failing.sub.id, recovering.sub.id]);
    expect(remote).toEqual(local);
  });

  it('should let only an admin retry a past_due subscription now', async () => {
    // Weekly, so that all of this happens before the monthly subscription above falls due again.
    t.clock.set(plus(month(2), HOUR));
    const plan = await createPlan(t, { amount: 11000, interval: 'week' });
    const { sub, key } = await subscribe(t, plan.id);
    expect(sub.next_charge_at).toBe(iso(plus(month(2), HOUR + 7 * DAY)));
    t.fake.setKeyBehavior(key.bootpay_receipt_id, 'insufficient_funds');
    const due = new Date(sub.next_charge_at);
    expect((await runAt(t, due)).counts).toEqual(counts({ due: 1, failed: 1 }));
    expect((await getSubscription(t, sub.id)).status).toBe('past_due');

    t.clock.set(plus(due, 2 * HOUR));
    const refused = await t.http.post(`/v1/subscriptions/${sub.id}/retry`).set(bearer(t.serviceKey)).send({});
    expect(refused.status).toBe(403);
    expect(refused.body.code).toBe('insufficient_role');
    expect(await listPayments(t, sub.id)).toHaveLength(2);

    t.fake.setKeyBehavior(key.bootpay_receipt_id, null);
    const retried = await t.http.post(`/v1/subscriptions/${sub.id}/retry`).set(bearer(t.adminKey)).send({});
    expect(retried.status).toBe(200);
    expect(retried.body).toMatchObject({
      status: 'active',
      current_period_start: iso(due),
      next_charge_at: retried.body.current_period_end,
      dunning: { attempts: 0, next_retry_at: null, past_due_since: null, last_failure: null },
      latest_payment: { status: 'DONE' },
    });
    const payments = await listPayments(t, sub.id);
    expect(payments.at(-1)).toMatchObject({ order_id: orderIdOf(sub.id, due, 2), status: 'DONE', charge_run_id: null, approved_at: iso(plus(due, 2 * HOUR)) });
    expect(chargesAtFake(t, periodPrefix(sub.id, due)).map((c) => c.order_id)).toEqual([orderIdOf(sub.id, due, 2)]);
    // Its +1 day retry is gone: nothing is due then.
    expect((await runAt(t, plus(due, DAY))).counts).toEqual(ZERO);
  });
});

describe('Charging: the retry ladder with DUNNING_FINAL_ACTION=unpaid and DUNNING_RETRY_DAYS=2,4', () => {
  let t: TestApp;
  let sub: { id: string };
  let receiptId: string;
  let keyId: string;
  const F = month(1);

  beforeAll(async () => {
    t = await startTestApp({ env: { DUNNING_FINAL_ACTION: 'unpaid', DUNNING_RETRY_DAYS: '2,4' } });
  });
  afterAll(async () => {
    await t.fake.webhooksIdle();
    await t.close();
  });

  it('should retry at +2 and +4 days only, then leave the subscription unpaid with its key', async () => {
    const plan = await createPlan(t, { amount: 11000 });
    const s = await subscribe(t, plan.id);
    sub = s.sub;
    receiptId = s.key.bootpay_receipt_id;
    keyId = s.key.id;
    t.fake.setKeyBehavior(receiptId, 'insufficient_funds');

    expect((await runAt(t, F)).counts).toEqual(counts({ due: 1, failed: 1 }));
    expect((await getSubscription(t, sub.id)).dunning).toMatchObject({ attempts: 1, next_retry_at: iso(plus(F, 2 * DAY)) });
    expect((await runAt(t, plus(F, DAY))).counts).toEqual(ZERO);
    expect((await runAt(t, plus(F, DAY))).counts).toEqual(ZERO);
    expect((await runAt(t, plus(F, 2 * DAY))).counts).toEqual(counts({ due: 1, failed: 1 }));
    expect((await getSubscription(t, sub.id)).dunning).toMatchObject({ attempts: 2, next_retry_at: iso(plus(F, 4 * DAY)) });
    expect((await runAt(t, plus(F, 3 * DAY))).counts).toEqual(ZERO);
    expect((await runAt(t, plus(F, 4 * DAY))).counts).toEqual(counts({ due: 1, failed: 1 }));

    expect(await getSubscription(t, sub.id)).toMatchObject({
      status: 'unpaid',
      next_charge_at: null,
      canceled_at: null,
      ended_at: null,
      dunning: { attempts: 3, next_retry_at: null, past_due_since: iso(F), last_failure: { code: 'RC_CONFIRM_FAILED' } },
    });
    expect((await listPayments(t, sub.id)).filter((p) => p.period.start === iso(F)).map((p) => p.order_id)).toEqual(
      [1, 2, 3].map((n) => orderIdOf(sub.id, F, n)),
    );
    expect(keyStatusAtFake(t, receiptId)).toBe('active');
    expect((await t.http.get(`/v1/billing-keys/${keyId}`).set(bearer(t.adminKey))).body.status).toBe('active');
    expect((await runAt(t, plus(F, 30 * DAY))).counts).toEqual(ZERO);
  });

  it('should let only an admin retry an unpaid subscription now: a decline is only recorded, a success makes it active for a new period starting now', async () => {
    // Long after the failed period ended: the retry pays for a new period that starts now (re-anchored), never for
    // the period that is over (which would leave the subscription active with its paid period in the past).
    const R = plus(F, 31 * DAY);
    t.clock.set(R);
    const refused = await t.http.post(`/v1/subscriptions/${sub.id}/retry`).set(bearer(t.serviceKey)).send({});
    expect(refused.status).toBe(403);
    expect(await listPayments(t, sub.id)).toHaveLength(4);

    const declined = await t.http.post(`/v1/subscriptions/${sub.id}/retry`).set(bearer(t.adminKey)).send({});
    expect(declined.status).toBe(200);
    expect(declined.body).toMatchObject({ status: 'unpaid', next_charge_at: null, dunning: { attempts: 3, last_failure: { code: 'RC_CONFIRM_FAILED' } } });
    expect((await listPayments(t, sub.id)).at(-1)).toMatchObject({ order_id: orderIdOf(sub.id, R, 1), status: 'ABORTED', charge_run_id: null });

    t.fake.setKeyBehavior(receiptId, null);
    const paid = await t.http.post(`/v1/subscriptions/${sub.id}/retry`).set(bearer(t.adminKey)).send({});
    expect(paid.status).toBe(200);
    const nextMonth = new Date(R);
    nextMonth.setUTCMonth(nextMonth.getUTCMonth() + 1);
    expect(paid.body).toMatchObject({
      status: 'active',
      anchor_at: iso(R),
      current_period_start: iso(R),
      current_period_end: iso(nextMonth),
      next_charge_at: iso(nextMonth),
      dunning: { attempts: 0, next_retry_at: null, past_due_since: null, last_failure: null },
    });
    expect(new Date(paid.body.current_period_end).getTime()).toBeGreaterThan(R.getTime());
    expect((await listPayments(t, sub.id)).at(-1)).toMatchObject({ order_id: orderIdOf(sub.id, R, 2), status: 'DONE' });
    // The period that ended unpaid was never charged; the new one once.
    expect(chargesAtFake(t, periodPrefix(sub.id, F))).toEqual([]);
    expect(chargesAtFake(t, periodPrefix(sub.id, R)).map((c) => c.order_id)).toEqual([orderIdOf(sub.id, R, 2)]);
    // The next run charges nothing: the paid period runs for a month.
    expect((await runAt(t, plus(R, DAY))).counts).toEqual(ZERO);
    const { local, remote } = await ledgers(t, [sub.id]);
    expect(remote).toEqual(local);
  });
});

describe('Charging: two instances running at once', () => {
  let t: TestApp;
  let sibling: Awaited<ReturnType<typeof startSiblingApp>>;

  beforeAll(async () => {
    // Small batches, so that the two runs take turns claiming work.
    t = await startTestApp({ env: { CHARGE_RUN_BATCH_SIZE: '5' } });
    sibling = await startSiblingApp(t);
  });
  afterAll(async () => {
    t.fake.setFaults({});
    await t.fake.webhooksIdle();
    await sibling.close();
    await t.close();
  });

  it('should charge each of 40 due subscriptions exactly once, month after month, when both instances run at the same time', async () => {
    const plan = await createPlan(t, { amount: 11000 });
    const ids = (await subscribeMany(t, plan.id, 40)).map((s) => s.sub.id);
    t.fake.setFaults({ latency_ms: 20 });
    const start = (http: TestApp['http']) => http.post('/v1/charge-runs').set(bearer(t.adminKey)).send({ wait: true });

    // Several renewals: each is another chance for the two instances' claims to interleave badly.
    for (let m = 1; m <= 6; m++) {
      t.clock.set(month(m));
      const [a, b] = await Promise.all([start(t.http), start(sibling.http)]);
      expect([a.status, b.status]).toEqual([202, 202]);
      // Neither run may fail, and between them they charge each due subscription once.
      expect([a.body, b.body]).toEqual([
        expect.objectContaining({ status: 'completed', error: null }),
        expect.objectContaining({ status: 'completed', error: null }),
      ]);
      expect(a.body.counts.charged + b.body.counts.charged).toBe(40);
      expect(a.body.counts.due + b.body.counts.due).toBe(40);
      for (const r of [a, b]) expect(r.body.counts).toMatchObject({ failed: 0, unknown: 0, skipped: 0, resolved: 0 });
      // Both instances really worked (batches of 5 at 20 ms a charge: neither can finish before the other starts).
      expect(a.body.counts.charged).toBeGreaterThan(0);
      expect(b.body.counts.charged).toBeGreaterThan(0);

      // Exactly one charge per subscription at Bootpay for the period, with the first attempt's order_id.
      for (const id of ids) {
        expect(chargesAtFake(t, periodPrefix(id, month(m))).map((c) => c.order_id)).toEqual([orderIdOf(id, month(m), 1)]);
      }
      expect(t.fake.ledger().charges).toHaveLength(40 * (m + 1));
      expect(t.fake.ledger().failed_charges).toEqual([]);

      // Locally: one DONE payment each for the period (first attempt), recorded by the run that charged it.
      const rows: { subscription_id: string; status: string; attempt: number; charge_run_id: string }[] = (
        await t.db.query(`SELECT subscription_id, status, attempt, charge_run_id FROM payments WHERE period_start = $1 ORDER BY subscription_id`, [month(m)])
      ).rows;
      expect(rows.map((r) => [r.subscription_id, r.status, r.attempt])).toEqual([...ids].sort().map((id) => [id, 'DONE', 1]));
      const byRun: Record<string, number> = {};
      for (const r of rows) byRun[r.charge_run_id] = (byRun[r.charge_run_id] ?? 0) + 1;
      expect(byRun).toEqual({ [a.body.id]: a.body.counts.charged, [b.body.id]: b.body.counts.charged });

      // Afterwards neither instance finds anything due.
      const again = await Promise.all([start(t.http), start(sibling.http)]);
      expect(again.map((r) => r.body.counts)).toEqual([ZERO, ZERO]);
    }
    const { local, remote } = await ledgers(t, ids);
    expect(remote).toEqual(local);
  });
});

describe('Charging: lost answers and server errors from Bootpay', () => {
  let t: TestApp;
  let ids: string[];

  beforeAll(async () => {
    t = await startTestApp();
    // No webhooks: only the charge runs may find out what happened to a charge.
    t.runtime.config.publicBaseUrl = undefined;
    const plan = await createPlan(t, { amount: 22000, tax_free_amount: 2000 });
    ids = (await subscribeMany(t, plan.id, 4)).map((s) => s.sub.id);
  });
  afterAll(async () => {
    await t.close();
  });

  it('should record charges whose answer was lost as UNKNOWN, keep the subscriptions out of dunning, and resolve them after the stale threshold without charging twice', async () => {
    t.fake.setFaults({ timeout_after_charge: { count: 2, mode: 'drop' } });
    const run = await runAt(t, month(1));
    expect(run.counts).toEqual(counts({ due: 4, charged: 2, unknown: 2 }));
    expect(t.fake.getFaults().timeout_after_charge ?? null).toBeNull();

    const renewal = async (id: string) => (await listPayments(t, id)).filter((p) => p.period.start === iso(month(1)));
    const unknown: string[] = [];
    for (const id of ids) {
      const [p, ...more] = await renewal(id);
      expect(more).toEqual([]);
      expect(p.order_id).toBe(orderIdOf(id, month(1), 1));
      if (p.status === 'UNKNOWN') unknown.push(id);
      else expect(p.status).toBe('DONE');
      // Bootpay did charge every one of them, once.
      expect(chargesAtFake(t, periodPrefix(id, month(1))).map((c) => c.order_id)).toEqual([orderIdOf(id, month(1), 1)]);
    }
    expect(unknown).toHaveLength(2);
    for (const id of unknown) {
      expect(await getSubscription(t, id)).toMatchObject({
        status: 'active',
        next_charge_at: iso(month(1)),
        current_period_start: iso(month(0)),
        dunning: { attempts: 0, next_retry_at: null, past_due_since: null, last_failure: null },
      });
    }

    // Not stale yet: a run 59 s later leaves them alone and sends nothing.
    const requestsBefore = t.fake.stats().requests;
    expect((await runAt(t, plus(month(1), 59 * SECOND))).counts).toEqual(ZERO);
    expect(t.fake.stats().requests).toBe(requestsBefore);
    for (const id of unknown) expect((await renewal(id))[0].status).toBe('UNKNOWN');

    // Past the threshold: re-sent with the same order_id, answered as a duplicate, settled as paid.
    expect((await runAt(t, plus(month(1), STALE_MS + SECOND))).counts).toEqual(counts({ charged: 2, resolved: 2 }));
    for (const id of unknown) {
      const payments = await renewal(id);
      expect(payments.map((p) => [p.order_id, p.status])).toEqual([[orderIdOf(id, month(1), 1), 'DONE']]);
      expect(chargesAtFake(t, periodPrefix(id, month(1)))).toHaveLength(1);
      expect(await getSubscription(t, id)).toMatchObject({ status: 'active', current_period_start: iso(month(1)), next_charge_at: iso(month(2)) });
    }
    expect(t.fake.ledger().charges).toHaveLength(8);
    expect(t.fake.ledger().failed_charges).toEqual([]);
    const { local, remote, wrongReceipts } = await ledgers(t, ids);
    expect(remote).toEqual(local);
    expect(wrongReceipts).toEqual([]);
  });

  it('should leave a subscription due when Bootpay answers 5xx to its charge, and charge it exactly once later', async () => {
    t.fake.setFaults({ fail_next: { count: 1, status: 503, route: 'subscribe/payment' } });
    const run = await runAt(t, month(2));
    // A 5xx may come after the charge was made, so the attempt is UNKNOWN (not a decline): no dunning, no second attempt.
    expect(run.counts).toEqual(counts({ due: 4, charged: 3, unknown: 1 }));
    const hit: string[] = [];
    for (const id of ids) {
      const p = (await listPayments(t, id)).filter((x) => x.period.start === iso(month(2)));
      expect(p).toHaveLength(1);
      if (p[0].status !== 'DONE') hit.push(id);
    }
    expect(hit).toHaveLength(1);
    const [id] = hit;
    const order = orderIdOf(id, month(2), 1);
    expect((await listPayments(t, id)).at(-1)).toMatchObject({ order_id: order, status: 'UNKNOWN', failure: null });
    // Nothing was done at Bootpay.
    expect(chargesAtFake(t, periodPrefix(id, month(2)))).toEqual([]);
    expect(failuresAtFake(t, periodPrefix(id, month(2)))).toEqual([]);
    expect(await getSubscription(t, id)).toMatchObject({ status: 'active', next_charge_at: iso(month(2)), dunning: { attempts: 0, past_due_since: null } });

    expect((await runAt(t, plus(month(2), 59 * SECOND))).counts).toEqual(ZERO);
    expect(chargesAtFake(t, periodPrefix(id, month(2)))).toEqual([]);

    expect((await runAt(t, plus(month(2), STALE_MS + SECOND))).counts).toEqual(counts({ charged: 1, resolved: 1 }));
    const charged = chargesAtFake(t, periodPrefix(id, month(2)));
    expect(charged.map((c) => c.order_id)).toEqual([order]);
    expect((await listPayments(t, id)).at(-1)).toMatchObject({ order_id: order, status: 'DONE', receipt_id: charged[0].receipt_id });
    expect(await getSubscription(t, id)).toMatchObject({ status: 'active', current_period_start: iso(month(2)), next_charge_at: iso(month(3)) });

    expect((await runAt(t, plus(month(2), 2 * STALE_MS))).counts).toEqual(ZERO);
    expect(t.fake.ledger().charges).toHaveLength(12);
    const { local, remote, wrongReceipts } = await ledgers(t, ids);
    expect(remote).toEqual(local);
    expect(wrongReceipts).toEqual([]);
  });
});

describe('Charging: a CLI charge run killed midway, then a run that carries on', () => {
  let t: TestApp;
  let cli: ReturnType<typeof spawnChargeRun> | undefined;

  beforeAll(async () => {
    // The CLI charges by the system clock: this app starts at the real now.
    t = await startTestApp({ now: new Date() });
  });
  afterAll(async () => {
    if (cli && cli.child.exitCode === null && cli.child.signalCode === null) cli.child.kill('SIGKILL');
    t.fake.setFaults({});
    await t.fake.webhooksIdle();
    await t.close();
  });

  it('should lose no charge and make none twice when the process dies mid-run', async () => {
    const plan = await createPlan(t, { amount: 11000, tax_free_amount: 1000 });
    const subs = await subscribeMany(t, plan.id, 40);
    const ids = subs.map((s) => s.sub.id);
    // Period 1 starts where the paid period 0 ends; make it due now in real time.
    const periodStart = new Map(subs.map((s) => [s.sub.id, new Date(s.sub.current_period_end!)]));
    await t.db.query(`UPDATE subscriptions SET next_charge_at = now() - interval '1 minute' WHERE id = ANY($1)`, [ids]);
    const prefixes = ids.map((id) => periodPrefix(id, periodStart.get(id)!));
    const renewalsAtFake = () => t.fake.ledger().charges.filter((c) => prefixes.some((p) => c.order_id.startsWith(p)));

    t.fake.setFaults({ latency_ms: 200 });
    const child = spawnChargeRun(t, { CHARGE_RUN_CONCURRENCY: '4', CHARGE_RUN_BATCH_SIZE: '8' });
    cli = child;
    let exited = false;
    void child.exited.then(() => (exited = true));
    // Batches of 8, 4 at a time, 200 ms each: kill it as soon as the second batch's first charges are made at Bootpay,
    // before it has heard of them.
    await waitUntil(
      'the CLI has made 10 charges',
      () => {
        if (exited) throw new Error(`the CLI ended before it was killed:\n${child.output()}`);
        return renewalsAtFake().length >= 10;
      },
      { intervalMs: 1 },
    );
    child.child.kill('SIGKILL');
    expect((await child.exited).signal).toBe('SIGKILL');

    // Killed midway: some subscriptions were never claimed, some attempts are left open.
    const [cliRun] = (await t.db.query(`SELECT id, status FROM charge_runs WHERE trigger = 'cli'`)).rows;
    expect(cliRun.status).toBe('running');
    const state = async () =>
      (
        await t.db.query(
          `SELECT count(*) FILTER (WHERE status = 'DONE')::int AS done, count(*) FILTER (WHERE status IN ('IN_PROGRESS', 'UNKNOWN'))::int AS open,
                  count(*)::int AS claimed
           FROM payments WHERE subscription_id = ANY($1) AND period_index = 1`,
          [ids],
        )
      ).rows[0] as { done: number; open: number; claimed: number };
    const before = await state();
    expect(before.claimed).toBe(before.done + before.open);
    expect(before.claimed).toBeLessThan(40);
    expect(before.open).toBeGreaterThan(0);
    // Some charges were made at Bootpay that the dead process never recorded.
    expect(renewalsAtFake().length).toBeGreaterThan(before.done);
    expect(renewalsAtFake().length).toBeLessThan(40);

    // The dead process's run stops beating (wall clock); the next run marks it interrupted.
    await t.db.query(`UPDATE charge_runs SET heartbeat_at = now() - interval '10 minutes' WHERE id = $1`, [cliRun.id]);
    // Restarted later, past the stale threshold: open attempts are resolved first, then the rest is charged.
    t.clock.set(new Date(Date.now() + STALE_MS + MINUTE));
    const run = await runCharges(t);
    expect(run.status).toBe('completed');
    expect(run.counts).toEqual(counts({ due: 40 - before.claimed, charged: 40 - before.done, resolved: before.open }));

    const killed = await t.http.get(`/v1/charge-runs/${cliRun.id}`).set(bearer(t.adminKey));
    expect(killed.body).toMatchObject({ trigger: 'cli', status: 'interrupted' });
    expect(killed.body.finished_at).not.toBeNull();

    // Exactly one charge per subscription for the period at Bootpay, the first attempt's, and every one recorded.
    for (const id of ids) {
      const start = periodStart.get(id)!;
      expect(chargesAtFake(t, periodPrefix(id, start)).map((c) => c.order_id)).toEqual([orderIdOf(id, start, 1)]);
      const renewal = (await listPayments(t, id)).filter((p) => p.period.index === 1);
      expect(renewal.map((p) => [p.order_id, p.status])).toEqual([[orderIdOf(id, start, 1), 'DONE']]);
      expect(await getSubscription(t, id)).toMatchObject({ status: 'active', current_period_start: iso(start), dunning: { attempts: 0 } });
    }
    expect(await state()).toEqual({ done: 40, open: 0, claimed: 40 });
    expect(t.fake.ledger().failed_charges).toEqual([]);
    const { local, remote, wrongReceipts } = await ledgers(t, ids);
    expect(local).toHaveLength(80);
    expect(remote).toEqual(local);
    expect(wrongReceipts).toEqual([]);

    // And nothing more is due.
    expect((await runCharges(t)).counts).toEqual(ZERO);
  });
});

describe('Charging: a subscription changed while its renewal is at Bootpay', () => {
  let t: TestApp;

  beforeAll(async () => {
    t = await startTestApp();
  });
  afterAll(async () => {
    t.fake.setFaults({});
    await t.fake.webhooksIdle();
    await t.close();
  });

  it('should refuse a cancel at period end while the renewal is at Bootpay (409), and accept it once the renewal is settled, stating the new period', async () => {
    const plan = await createPlan(t, { amount: 11000 });
    const changed = await subscribe(t, plan.id);
    const untouched = await subscribe(t, plan.id);
    t.clock.set(month(1));
    t.fake.setFaults({ latency_ms: 1000 });
    const run = t.http
      .post('/v1/charge-runs')
      .set(bearer(t.adminKey))
      .send({ wait: true })
      .then((r) => r);
    // Both renewals are recorded and on their way to Bootpay when the SaaS backend asks to cancel one at period end.
    await waitUntil(
      'both renewals are in flight',
      async () => (await t.db.query(`SELECT count(*)::int AS n FROM payments WHERE status = 'IN_PROGRESS'`)).rows[0].n === 2,
      { intervalMs: 5 },
    );
    // A 200 here would read as "no more charges" just before the renewal is charged: it is refused instead.
    const cancel = await t.http
      .post(`/v1/subscriptions/${changed.sub.id}/cancel`)
      .set(bearer(t.serviceKey))
      .send({ at_period_end: true, reason: 'moving to annual' });
    expect(cancel.status).toBe(409);
    expect(cancel.body).toMatchObject({ code: 'charge_in_progress' });

    const done = await run;
    expect(done.body).toMatchObject({ status: 'completed', counts: counts({ due: 2, charged: 2 }) });
    expect(await getSubscription(t, changed.sub.id)).toMatchObject({ status: 'active', current_period_end: iso(month(2)), cancel_at_period_end: false });

    // Once settled, the cancel is accepted and its answer states the period it ends with.
    t.fake.setFaults({});
    const again = await t.http
      .post(`/v1/subscriptions/${changed.sub.id}/cancel`)
      .set(bearer(t.serviceKey))
      .send({ at_period_end: true, reason: 'moving to annual' });
    expect(again.status).toBe(200);
    expect(again.body).toMatchObject({
      status: 'active',
      current_period_start: iso(month(1)),
      current_period_end: iso(month(2)),
      cancel_at_period_end: true,
      cancel_reason: 'moving to annual',
    });
    expect(await getSubscription(t, untouched.sub.id)).toMatchObject({ status: 'active', current_period_end: iso(month(2)), cancel_at_period_end: false });
    // Its audit trail is numbered 1, 2, 3... with no number given twice.
    const events = await eventsOf(t, changed.sub.id);
    expect(events.slice(-2).map((e) => e.type)).toEqual(['payment.succeeded', 'subscription.cancel_scheduled']);
    expect(events.map((e) => e.sequence)).toEqual(events.map((_, i) => i + 1));
    for (const id of [changed.sub.id, untouched.sub.id]) {
      expect(chargesAtFake(t, periodPrefix(id, month(1))).map((c) => c.order_id)).toEqual([orderIdOf(id, month(1), 1)]);
    }
    // At the period's end, the run ends it and charges nothing.
    expect((await runAt(t, month(2))).counts).toEqual(counts({ due: 2, charged: 1, canceled: 1 }));
    expect(chargesAtFake(t, periodPrefix(changed.sub.id, month(2)))).toEqual([]);
  });
});

describe('Charging: a due subscription held by another transaction when the run passes it', () => {
  let t: TestApp;

  beforeAll(async () => {
    // One at a time, so that the run claims the subscriptions one after another.
    t = await startTestApp({ env: { CHARGE_RUN_BATCH_SIZE: '1', CHARGE_RUN_CONCURRENCY: '1' } });
  });
  afterAll(async () => {
    t.fake.setFaults({});
    await t.fake.webhooksIdle();
    await t.close();
  });

  it('should come back for it before the run ends, and charge it once', async () => {
    const plan = await createPlan(t, { amount: 11000 });
    const ids = [];
    for (let i = 0; i < 3; i++) ids.push((await subscribe(t, plan.id)).sub.id);
    // All three fall due at the same instant, so the run takes them in id order: hold the first one's row.
    const [held, ...others] = [...ids].sort();
    const holder = new Client({ connectionString: t.databaseUrl });
    await holder.connect();
    try {
      await holder.query('BEGIN');
      await holder.query('SELECT id FROM subscriptions WHERE id = $1 FOR UPDATE', [held]);
      t.clock.set(month(1));
      t.fake.setFaults({ latency_ms: 300 });
      const run = t.http
        .post('/v1/charge-runs')
        .set(bearer(t.adminKey))
        .send({ wait: true })
        .then((r) => r);
      // The run has gone past the held row and is charging the next one: the row is let go.
      await waitUntil(
        'the second subscription is being charged',
        async () => (await t.db.query(`SELECT count(*)::int AS n FROM payments WHERE subscription_id = $1 AND period_index = 1`, [others[0]])).rows[0].n === 1,
        { intervalMs: 5 },
      );
      expect((await t.db.query(`SELECT count(*)::int AS n FROM payments WHERE subscription_id = $1 AND period_index = 1`, [held])).rows[0].n).toBe(0);
      await holder.query('COMMIT');
      const done = await run;
      expect(done.body).toMatchObject({ status: 'completed', counts: counts({ due: 3, charged: 3 }) });
    } finally {
      await holder.end();
    }
    for (const id of ids) {
      expect(chargesAtFake(t, periodPrefix(id, month(1))).map((c) => c.order_id)).toEqual([orderIdOf(id, month(1), 1)]);
      expect(await getSubscription(t, id)).toMatchObject({ status: 'active', current_period_start: iso(month(1)) });
    }
  });
});
