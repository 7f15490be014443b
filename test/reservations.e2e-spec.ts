import {
  ZERO_COUNTS,
  runCounts,
  activeReservationsAtFake,
  billingKeySuffix,
  callFakeBootpay,
  createBillingKey,
  createPlan,
  createSubscription,
  customerWithKey,
  eventsOf,
  getSubscription,
  keyReservations,
  ledgerBillingKey,
  ledgerChargesOf,
  ledgerFailedChargesOf,
  ledgerReservationsOf,
  paymentDetails,
  bootpayWebhookBody,
  postBootpayWebhook,
  runCharges,
  startWebhookSink,
  subscriptionAction,
} from './utils/fixtures';
import { bearer, startTestApp, T0, TestApp } from './utils/test-app';

const MINUTE = 60_000;
const DAY = 24 * 60 * MINUTE;

/** Period starts of a monthly subscription anchored at T0 (2026-01-15 10:00 KST): the 15th, 01:00Z. */
const month = (i: number) => new Date(Date.UTC(2026, i, 15, 1, 0, 0));
const plus = (d: Date, ms: number) => new Date(d.getTime() + ms);
const iso = (d: Date) => d.toISOString();

/** `s<subscription hex>-<period start epoch>-p<attempt>`, the order_id of a period's attempt (and of its reservation). */
const periodPrefix = (subId: string, start: Date) => `s${subId.replace(/-/g, '')}-${Math.floor(start.getTime() / 1000)}-`;
const orderIdOf = (subId: string, start: Date, attempt: number) => `${periodPrefix(subId, start)}p${attempt}`;

const ZERO = ZERO_COUNTS;
const counts = runCounts;

/** Fake reservation status numbers (src/fake-bootpay/README.md). */
const RESERVED = 1;
const EXECUTED = 3;
const REVOKED = -1;

type Sub = {
  id: string;
  status: string;
  plan_id: string;
  billing_key_id: string;
  current_period_start: string | null;
  current_period_end: string | null;
  next_charge_at: string | null;
};

describe('Reservations: charge_mode reservation with a horizon of 3 periods', () => {
  let t: TestApp;

  beforeEach(async () => {
    t = await startTestApp({ env: { RESERVATION_HORIZON: '3' } });
  });
  afterEach(async () => {
    await t.fake.webhooksIdle();
    await t.close();
  });

  const reservationPlan = (overrides: Record<string, unknown> = {}) =>
    createPlan(t, { name: 'Pro reserved', amount: 11000, interval: 'month', charge_mode: 'reservation', ...overrides });

  async function subscribe(planId: string, owner?: { customer: { id: string }; key: { id: string } }) {
    const { customer, key } = owner ?? (await customerWithKey(t));
    const sub = (await createSubscription(t, { customer_id: customer.id, plan_id: planId, billing_key_id: key.id })) as Sub;
    // The first period's approval webhook also tops the reservations up; it may still be registering one with Bootpay
    // when the answer above is sent (the reservation shows as unconfirmed until then).
    await t.fake.webhooksIdle();
    return sub;
  }

  /** Moves the clock to `when`, lets the fake Bootpay execute what is due then, and waits for its webhooks. */
  async function executeAt(when: Date) {
    t.clock.set(when);
    const executions = await t.fake.executeDueReservations(t.clock.now());
    await t.fake.webhooksIdle();
    return executions;
  }

  async function runAt(when: Date) {
    t.clock.set(when);
    const run = await runCharges(t);
    await t.fake.webhooksIdle();
    expect(run.status).toBe('completed');
    return run;
  }

  const executeAts = (view: { reservations: { execute_at: string | null }[] }) => view.reservations.map((r) => r.execute_at);

  // ------------------------------------------------------------------ 1. registration

  it('should charge the first period at creation and register the next 3 periods at Bootpay as confirmed reservations', async () => {
    const plan = await reservationPlan();
    const { customer, key } = await customerWithKey(t);
    const sub = await subscribe(plan.id, { customer, key });
    expect(sub).toMatchObject({ status: 'active', current_period_start: iso(month(0)), current_period_end: iso(month(1)), next_charge_at: iso(month(1)) });

    // The first period was charged directly, at once.
    expect(ledgerChargesOf(t, sub.id)).toEqual([
      expect.objectContaining({ order_id: orderIdOf(sub.id, month(0), 1), price: 11000, status: 1, source: 'charge' }),
    ]);

    const view = await keyReservations(t, key.id);
    expect(view.billing_key_id).toBe(key.id);
    expect(view.budget).toEqual({ limit: 10, used: 3, available: 7 });
    expect(view.reservations).toEqual(
      [1, 2, 3].map((i) => ({
        payment_id: expect.any(String),
        subscription_id: sub.id,
        reserve_id: expect.stringMatching(/^[0-9a-f]{24}$/),
        confirmed: true,
        order_id: orderIdOf(sub.id, month(i), 1),
        amount: 11000,
        tax_free_amount: 0,
        execute_at: iso(month(i)),
        period: { start: iso(month(i)), end: iso(month(i + 1)) },
      })),
    );

    // Bootpay holds the same reservations, active, on this key.
    const suffix = await billingKeySuffix(t, key.id);
    expect(ledgerReservationsOf(t, sub.id)).toEqual(
      view.reservations.map((r) => ({
        reserve_id: r.reserve_id,
        order_id: r.order_id,
        status: RESERVED,
        price: 11000,
        reserve_execute_at: r.execute_at,
        billing_key_suffix: suffix,
      })),
    );
    // Each carries the service's webhook address, so its execution is reported back to the service.
    for (const r of view.reservations) {
      const looked = await callFakeBootpay(t, 'GET', `subscribe/payment/reserve/${r.reserve_id}`);
      expect(looked.status).toBe(200);
      expect(looked.body).toMatchObject({ order_id: r.order_id, price: 11000, tax_free: 0, status: RESERVED, feedback_url: `${t.url}/v1/webhooks/bootpay` });
    }

    const payments = await paymentDetails(t, sub.id);
    expect(payments.map((p) => [p.period.index, p.status, p.reserve_id])).toEqual([
      [0, 'DONE', null],
      ...view.reservations.map((r, i) => [i + 1, 'READY', r.reserve_id]),
    ]);
  });

  // ------------------------------------------------------------------ 2. the budget of 10 per key

  it('should never use more than 10 reservations on a key shared by several subscriptions, and charge the periods it could not reserve in the run, once each', async () => {
    const plan = await reservationPlan();
    const owner = await customerWithKey(t);
    const suffix = await billingKeySuffix(t, owner.key.id);

    /** The service's budget for the key; Bootpay's count of active reservations on the key agrees with it. */
    const budget = async () => {
      const view = await keyReservations(t, owner.key.id);
      expect(view.budget.used).toBeLessThanOrEqual(10);
      expect(view.budget.available).toBe(10 - view.budget.used);
      expect(activeReservationsAtFake(t, suffix).length).toBe(view.budget.used);
      return view;
    };
    const heldBy = (view: Awaited<ReturnType<typeof budget>>, subId: string) => view.reservations.filter((r) => r.subscription_id === subId);

    // Four subscriptions: 3 + 3 + 3 + 1 = 10; the fourth gets only its next period.
    const subs: Sub[] = [];
    const expectedHeld = [3, 3, 3, 1];
    for (let i = 0; i < 4; i++) {
      subs.push(await subscribe(plan.id, owner));
      const view = await budget();
      expect(heldBy(view, subs[i].id)).toHaveLength(expectedHeld[i]);
    }
    let view = await budget();
    expect(view.budget).toEqual({ limit: 10, used: 10, available: 0 });
    expect(executeAts({ reservations: heldBy(view, subs[3].id) })).toEqual([iso(month(1))]);
    // A fifth finds the budget spent: none of its periods can be reserved, so the run must charge them.
    const fifth = await subscribe(plan.id, owner);
    subs.push(fifth);
    view = await budget();
    expect(view.budget.used).toBe(10);
    expect(heldBy(view, fifth.id)).toEqual([]);

    for (let m = 1; m <= 4; m++) {
      const executions = await executeAt(month(m));
      expect(executions.every((e) => e.result === 'success')).toBe(true);
      await budget();
      const reservedNow = new Set(executions.map((e) => e.order_id.split('-')[0]));
      const run = await runAt(month(m));
      // The run charges exactly the subscriptions whose period was not reserved.
      expect(run.counts).toEqual(counts({ due: subs.length - executions.length, charged: subs.length - executions.length }));
      expect(reservedNow.has(`s${fifth.id.replace(/-/g, '')}`)).toBe(false);
      await budget();
      for (const s of subs) {
        expect(await getSubscription(t, s.id)).toMatchObject({ status: 'active', current_period_start: iso(month(m)), current_period_end: iso(month(m + 1)) });
      }
    }

    // Exactly one charge per subscription per period at Bootpay, and one DONE payment for it here.
    for (const [n, s] of subs.entries()) {
      const charges = ledgerChargesOf(t, s.id);
      const payments = (await paymentDetails(t, s.id)).filter((p) => p.status === 'DONE');
      expect(charges).toHaveLength(5);
      expect(payments).toHaveLength(5);
      for (let m = 0; m <= 4; m++) {
        const atFake = charges.filter((c) => c.order_id.startsWith(periodPrefix(s.id, month(m))));
        expect(atFake).toHaveLength(1);
        const paid = payments.find((p) => p.period.start === iso(month(m)))!;
        expect(paid).toMatchObject({ order_id: atFake[0].order_id, receipt_id: atFake[0].receipt_id, amount: 11000 });
        // A period is paid either by its reservation, or (not reserved) by the run: never both.
        if (atFake[0].source === 'reservation') expect(paid).toMatchObject({ reserve_id: expect.any(String), charge_run_id: null });
        else if (m > 0) expect(paid).toMatchObject({ reserve_id: null, charge_run_id: expect.any(String) });
        if (n < 3 && m > 0) expect(atFake[0].source).toBe('reservation');
        if (s.id === fifth.id && m > 0) expect(atFake[0].source).toBe('charge');
      }
    }
    expect(t.fake.ledger().failed_charges).toEqual([]);
    // Bootpay never refused a reservation for the limit: the service kept count itself.
    expect((await t.db.query(`SELECT count(*)::int AS n FROM payments WHERE failure_code = 'reservation_limit'`)).rows[0].n).toBe(0);
    expect(t.logs.join('\n')).not.toMatch(/RC_RESERVE_LIMIT_EXCEEDED|reservation_limit/);
  });

  // ------------------------------------------------------------------ 3. execution

  it('should settle executed reservations from their webhooks: periods advance, payments are DONE with the receipt, the budget is topped up; a repeated delivery changes nothing', async () => {
    const plan = await reservationPlan();
    const a = await customerWithKey(t);
    const b = await customerWithKey(t);
    const subs = [await subscribe(plan.id, a), await subscribe(plan.id, b)];
    const keys = [a.key, b.key];

    const executions = await executeAt(month(1));
    expect(executions).toHaveLength(2);
    for (const [i, s] of subs.entries()) {
      const ex = executions.find((e) => e.order_id === orderIdOf(s.id, month(1), 1))!;
      expect(ex).toMatchObject({ result: 'success', reservation_status: EXECUTED, receipt_id: expect.stringMatching(/^[0-9a-f]{24}$/) });

      expect(await getSubscription(t, s.id)).toMatchObject({
        status: 'active',
        current_period_start: iso(month(1)),
        current_period_end: iso(month(2)),
        next_charge_at: iso(month(2)),
        dunning: { attempts: 0, next_retry_at: null, past_due_since: null, last_failure: null },
      });
      const p1 = (await paymentDetails(t, s.id)).find((p) => p.period.index === 1)!;
      expect(p1).toMatchObject({
        status: 'DONE',
        order_id: orderIdOf(s.id, month(1), 1),
        receipt_id: ex.receipt_id,
        reserve_id: ex.reserve_id,
        charge_run_id: null,
        amount: 11000,
        balance_amount: 11000,
        approved_at: iso(month(1)),
      });
      // Topped up: a new reservation for the period after the horizon, at Bootpay too.
      const view = await keyReservations(t, keys[i].id);
      expect(view.budget).toEqual({ limit: 10, used: 3, available: 7 });
      expect(executeAts(view)).toEqual([iso(month(2)), iso(month(3)), iso(month(4))]);
      expect(view.reservations.every((r) => r.confirmed)).toBe(true);
      expect(ledgerReservationsOf(t, s.id).map((r) => [r.reserve_execute_at, r.status])).toEqual([
        [iso(month(1)), EXECUTED],
        [iso(month(2)), RESERVED],
        [iso(month(3)), RESERVED],
        [iso(month(4)), RESERVED],
      ]);
      expect(ledgerChargesOf(t, s.id).map((c) => [c.order_id, c.source])).toEqual([
        [orderIdOf(s.id, month(0), 1), 'charge'],
        [orderIdOf(s.id, month(1), 1), 'reservation'],
      ]);
      // The service was told by Bootpay's webhook, first time.
      expect(t.fake.ledger().webhooks.find((w) => w.receipt_id === ex.receipt_id)).toMatchObject({
        url: `${t.url}/v1/webhooks/bootpay`,
        delivered: true,
        attempts: 1,
      });
    }
    // A run at the same instant has nothing to do.
    expect((await runAt(month(1))).counts).toEqual(ZERO);

    // Bootpay delivers the same webhook again (twice): nothing changes anywhere.
    const snapshot = async () => ({
      payments: await Promise.all(subs.map((s) => paymentDetails(t, s.id))),
      subs: await Promise.all(subs.map((s) => getSubscription(t, s.id))),
      events: await Promise.all(subs.map((s) => eventsOf(t, s.id))),
      budgets: await Promise.all(keys.map((k) => keyReservations(t, k.id))),
      charges: t.fake.ledger().charges,
      reservations: t.fake.ledger().reservations,
    });
    const before = await snapshot();
    const receiptId = executions[0].receipt_id!;
    const body = await bootpayWebhookBody(t, receiptId, 'PAYMENT_COMPLETED');
    for (let i = 0; i < 2; i++) {
      const res = await postBootpayWebhook(t, body);
      expect(res.status).toBe(200);
      expect(res.body).toEqual({ success: true });
    }
    await t.fake.webhooksIdle();
    expect(await snapshot()).toEqual(before);
  });

  // ------------------------------------------------------------------ 4. a failed execution

  it('should make the subscription past_due when its reservation fails at execution, and retry in the scheduled run one day later', async () => {
    const plan = await reservationPlan();
    const { customer, key } = await customerWithKey(t);
    const sub = await subscribe(plan.id, { customer, key });
    t.fake.setKeyBehavior(key.bootpay_receipt_id, 'insufficient_funds');

    const executions = await executeAt(month(1));
    expect(executions).toEqual([
      expect.objectContaining({ order_id: orderIdOf(sub.id, month(1), 1), result: 'failed', error_code: 'RC_CONFIRM_FAILED', pg_error_code: 'F051' }),
    ]);
    expect(ledgerFailedChargesOf(t, sub.id)).toEqual([expect.objectContaining({ order_id: orderIdOf(sub.id, month(1), 1), source: 'reservation' })]);

    // The failed webhook: past_due, the first retry a day later.
    expect(await getSubscription(t, sub.id)).toMatchObject({
      status: 'past_due',
      current_period_end: iso(month(1)),
      next_charge_at: iso(plus(month(1), DAY)),
      dunning: { attempts: 1, next_retry_at: iso(plus(month(1), DAY)), past_due_since: iso(month(1)), last_failure: { code: 'PAYMENT_REQUEST_FAILED' } },
    });
    const failed = (await paymentDetails(t, sub.id)).find((p) => p.period.index === 1)!;
    expect(failed).toMatchObject({ status: 'ABORTED', attempt: 1, order_id: orderIdOf(sub.id, month(1), 1), failure: { code: 'PAYMENT_REQUEST_FAILED' } });
    const types = (await eventsOf(t, sub.id)).map((e) => e.type);
    expect(types.slice(-2)).toEqual(['payment.failed', 'subscription.past_due']);

    t.fake.setKeyBehavior(key.bootpay_receipt_id, null);
    // Not on the business day before the retry is due (23:00 KST the day of the failure; the retry is at 10:00 the next day).
    expect((await runAt(plus(month(1), 13 * 60 * MINUTE))).counts).toEqual(ZERO);
    expect(ledgerChargesOf(t, sub.id)).toHaveLength(1);

    const run = await runAt(plus(month(1), DAY));
    expect(run.counts).toEqual(counts({ due: 1, charged: 1 }));
    const retried = (await paymentDetails(t, sub.id)).filter((p) => p.period.index === 1);
    expect(retried.map((p) => [p.attempt, p.status])).toEqual([
      [1, 'ABORTED'],
      [2, 'DONE'],
    ]);
    expect(retried[1]).toMatchObject({ order_id: orderIdOf(sub.id, month(1), 2), charge_run_id: run.id, reserve_id: null, amount: 11000 });
    expect(await getSubscription(t, sub.id)).toMatchObject({
      status: 'active',
      current_period_start: iso(month(1)),
      current_period_end: iso(month(2)),
      next_charge_at: iso(month(2)),
      dunning: { attempts: 0, next_retry_at: null, past_due_since: null, last_failure: null },
    });
    expect(ledgerChargesOf(t, sub.id).map((c) => [c.order_id, c.source])).toEqual([
      [orderIdOf(sub.id, month(0), 1), 'charge'],
      [orderIdOf(sub.id, month(1), 2), 'charge'],
    ]);
    // Paid again: the coming periods are reserved up to the horizon.
    expect(executeAts(await keyReservations(t, key.id))).toEqual([iso(month(2)), iso(month(3)), iso(month(4))]);
  });

  // ------------------------------------------------------------------ 5. a missed webhook

  it('should resolve executed reservations whose webhooks never reached the service by reservation lookup, in a run more than 10 minutes later, without charging again', async () => {
    // Bootpay's webhooks go to an address that answers like the service but is not it: the service misses them.
    const sink = await startWebhookSink();
    try {
      t.runtime.config.publicBaseUrl = sink.url;
      const plan = await reservationPlan();
      const owner = await customerWithKey(t);
      const subs = [await subscribe(plan.id, owner), await subscribe(plan.id, owner)];
      for (const r of (await keyReservations(t, owner.key.id)).reservations) {
        expect((await callFakeBootpay(t, 'GET', `subscribe/payment/reserve/${r.reserve_id}`)).body.feedback_url).toBe(`${sink.url}/v1/webhooks/bootpay`);
      }

      const executions = await executeAt(month(1));
      expect(executions.map((e) => e.result)).toEqual(['success', 'success']);
      // Bootpay did report them, to the address it was given.
      for (const e of executions)
        expect(sink.received).toContainEqual(expect.objectContaining({ receipt_id: e.receipt_id, webhook_type: 'PAYMENT_COMPLETED' }));

      const unresolved = async () => {
        for (const s of subs) {
          expect((await paymentDetails(t, s.id)).find((p) => p.period.index === 1)).toMatchObject({ status: 'READY', receipt_id: null });
          expect(await getSubscription(t, s.id)).toMatchObject({ status: 'active', current_period_end: iso(month(1)), next_charge_at: iso(month(1)) });
          expect(ledgerChargesOf(t, s.id)).toHaveLength(2);
        }
      };
      await unresolved();
      // Within 10 minutes the run neither asks Bootpay nor charges the reserved periods itself.
      expect((await runAt(plus(month(1), 9 * MINUTE))).counts).toEqual(ZERO);
      await unresolved();

      const run = await runAt(plus(month(1), 11 * MINUTE));
      expect(run.counts).toEqual(counts({ resolved: 2 }));
      for (const s of subs) {
        const ex = executions.find((e) => e.order_id === orderIdOf(s.id, month(1), 1))!;
        const p1 = (await paymentDetails(t, s.id)).filter((p) => p.period.index === 1);
        expect(p1).toEqual([
          expect.objectContaining({
            status: 'DONE',
            attempt: 1,
            receipt_id: ex.receipt_id,
            reserve_id: ex.reserve_id,
            approved_at: iso(month(1)),
            charge_run_id: null,
          }),
        ]);
        expect(await getSubscription(t, s.id)).toMatchObject({
          status: 'active',
          current_period_start: iso(month(1)),
          current_period_end: iso(month(2)),
          next_charge_at: iso(month(2)),
        });
        expect(ledgerChargesOf(t, s.id).map((c) => [c.order_id, c.source])).toEqual([
          [orderIdOf(s.id, month(0), 1), 'charge'],
          [orderIdOf(s.id, month(1), 1), 'reservation'],
        ]);
      }
      expect(t.fake.ledger().failed_charges).toEqual([]);
      // Topped up after the resolution; a later run has nothing left to do.
      expect(executeAts(await keyReservations(t, owner.key.id)).sort()).toEqual([2, 2, 3, 3, 4, 4].map((i) => iso(month(i))));
      expect((await runAt(plus(month(1), 3 * 60 * MINUTE))).counts).toEqual(ZERO);
      for (const s of subs) expect(ledgerChargesOf(t, s.id)).toHaveLength(2);
    } finally {
      await t.fake.webhooksIdle();
      await sink.close();
    }
  });

  // ------------------------------------------------------------------ 6. cancel, pause, plan change, key swap

  describe('outstanding reservations when the subscription changes', () => {
    it('should revoke every outstanding reservation on cancel, free the budget, and destroy the key no one else uses only after that', async () => {
      const plan = await reservationPlan();
      const { customer, key } = await customerWithKey(t);
      const sub = await subscribe(plan.id, { customer, key });
      const suffix = await billingKeySuffix(t, key.id);
      const reserveIds = (await keyReservations(t, key.id)).reservations.map((r) => r.reserve_id);
      expect(reserveIds).toHaveLength(3);

      const at = plus(T0, 3 * DAY);
      t.clock.set(at);
      const res = await subscriptionAction(t, sub.id, 'cancel', { at_period_end: false, reason: 'customer left' });
      expect(res.status).toBe(200);
      expect(res.body.status).toBe('canceled');

      // Revoked at Bootpay, and the budget freed on both sides.
      expect(ledgerReservationsOf(t, sub.id).map((r) => [r.reserve_id, r.status, r.revoked_at])).toEqual(reserveIds.map((id) => [id, REVOKED, iso(at)]));
      expect(activeReservationsAtFake(t, suffix)).toEqual([]);
      expect((await keyReservations(t, key.id)).budget).toEqual({ limit: 10, used: 0, available: 10 });
      const reserved = (await paymentDetails(t, sub.id)).filter((p) => p.period.index > 0);
      expect(reserved.map((p) => [p.status, p.failure?.code])).toEqual([
        ['ABORTED', 'reservation_canceled'],
        ['ABORTED', 'reservation_canceled'],
        ['ABORTED', 'reservation_canceled'],
      ]);

      // The key, used by no one now, is destroyed, and after the reservations: Bootpay refuses to revoke a
      // reservation once its key is destroyed (SUBSCRIBE_BK_EXPIRED), so revoked reservations prove the order.
      expect(ledgerBillingKey(t, key.bootpay_receipt_id)).toMatchObject({ status: 'destroyed', destroyed_at: iso(at) });
      expect((await t.http.get(`/v1/billing-keys/${key.id}`).set(bearer(t.serviceKey))).body.status).toBe('deleted');
      expect((await callFakeBootpay(t, 'DELETE', `subscribe/payment/reserve/${reserveIds[0]}`)).body.error_code).toBe('SUBSCRIBE_BK_EXPIRED');

      // Nothing executes later.
      expect(await executeAt(month(3))).toEqual([]);
      expect(ledgerChargesOf(t, sub.id)).toHaveLength(1);
    });

    it('should revoke only the canceled subscription’s reservations when the key is shared, and keep the key', async () => {
      const plan = await reservationPlan();
      const owner = await customerWithKey(t);
      const [gone, kept] = [await subscribe(plan.id, owner), await subscribe(plan.id, owner)];
      expect((await keyReservations(t, owner.key.id)).budget.used).toBe(6);

      t.clock.set(plus(T0, DAY));
      expect((await subscriptionAction(t, gone.id, 'cancel', { at_period_end: false, reason: 'second seat dropped' })).status).toBe(200);

      expect(ledgerReservationsOf(t, gone.id).map((r) => r.status)).toEqual([REVOKED, REVOKED, REVOKED]);
      expect(ledgerReservationsOf(t, kept.id).map((r) => r.status)).toEqual([RESERVED, RESERVED, RESERVED]);
      const view = await keyReservations(t, owner.key.id);
      expect(view.budget).toEqual({ limit: 10, used: 3, available: 7 });
      expect(view.reservations.every((r) => r.subscription_id === kept.id)).toBe(true);
      expect(ledgerBillingKey(t, owner.key.bootpay_receipt_id)?.status).toBe('active');
      expect((await t.http.get(`/v1/billing-keys/${owner.key.id}`).set(bearer(t.serviceKey))).body.status).toBe('active');

      // The kept subscription renews from its reservation.
      const executions = await executeAt(month(1));
      expect(executions.map((e) => e.order_id)).toEqual([orderIdOf(kept.id, month(1), 1)]);
      expect(await getSubscription(t, kept.id)).toMatchObject({ status: 'active', current_period_start: iso(month(1)) });
      expect(ledgerChargesOf(t, gone.id)).toHaveLength(1);
    });

    it('should revoke the reservations of a paused subscription', async () => {
      const plan = await reservationPlan();
      const { customer, key } = await customerWithKey(t);
      const sub = await subscribe(plan.id, { customer, key });

      t.clock.set(plus(T0, 2 * DAY));
      const res = await subscriptionAction(t, sub.id, 'pause', { reason: 'vacation' }, t.adminKey);
      expect(res.status).toBe(200);
      expect(res.body.status).toBe('paused');
      expect(ledgerReservationsOf(t, sub.id).map((r) => r.status)).toEqual([REVOKED, REVOKED, REVOKED]);
      expect((await keyReservations(t, key.id)).budget).toEqual({ limit: 10, used: 0, available: 10 });
      expect(ledgerBillingKey(t, key.bootpay_receipt_id)?.status).toBe('active');

      // Nothing is charged while paused.
      expect(await executeAt(month(1))).toEqual([]);
      expect((await runAt(month(1))).counts).toEqual(ZERO);
      expect(ledgerChargesOf(t, sub.id)).toHaveLength(1);
    });

    it('should revoke the old reservations on a plan change and register new ones at the new price', async () => {
      const basic = await reservationPlan();
      const premium = await reservationPlan({ name: 'Premium reserved', amount: 22000 });
      const { customer, key } = await customerWithKey(t);
      const sub = await subscribe(basic.id, { customer, key });
      const suffix = await billingKeySuffix(t, key.id);
      const old = ledgerReservationsOf(t, sub.id).map((r) => r.reserve_id);

      t.clock.set(plus(T0, 10 * DAY));
      const res = await subscriptionAction(t, sub.id, 'change-plan', { plan_id: premium.id, proration: 'now', reason: 'upgrade' });
      expect(res.status).toBe(200);
      expect(res.body).toMatchObject({ status: 'active', plan_id: premium.id, current_period_end: iso(month(1)) });

      const atFake = ledgerReservationsOf(t, sub.id);
      expect(atFake.filter((r) => old.includes(r.reserve_id)).map((r) => [r.price, r.status])).toEqual([
        [11000, REVOKED],
        [11000, REVOKED],
        [11000, REVOKED],
      ]);
      // The coming periods (the new plan's, from the end of the paid one) are reserved at the new price.
      const view = await keyReservations(t, key.id);
      expect(view.reservations.map((r) => [r.execute_at, r.amount, r.confirmed])).toEqual([1, 2, 3].map((i) => [iso(month(i)), 22000, true]));
      expect(
        activeReservationsAtFake(t, suffix)
          .map((r) => [r.reserve_execute_at, r.price])
          .sort(),
      ).toEqual([1, 2, 3].map((i) => [iso(month(i)), 22000]));

      // The next period is charged once, at the new price.
      await executeAt(month(1));
      expect(
        ledgerChargesOf(t, sub.id)
          .filter((c) => c.order_id.startsWith(periodPrefix(sub.id, month(1))))
          .map((c) => [c.price, c.source]),
      ).toEqual([[22000, 'reservation']]);
      expect(await getSubscription(t, sub.id)).toMatchObject({
        status: 'active',
        plan_id: premium.id,
        current_period_start: iso(month(1)),
        current_period_end: iso(month(2)),
      });
    });

    it('should move the reservations to the new billing key on a key swap', async () => {
      const plan = await reservationPlan();
      const { customer, key } = await customerWithKey(t);
      const newKey = await createBillingKey(t, customer.id, { card_no: '5555444433331111' });
      const sub = await subscribe(plan.id, { customer, key });
      const [oldSuffix, newSuffix] = [await billingKeySuffix(t, key.id), await billingKeySuffix(t, newKey.id)];
      expect(activeReservationsAtFake(t, oldSuffix)).toHaveLength(3);

      t.clock.set(plus(T0, 5 * DAY));
      const res = await subscriptionAction(t, sub.id, 'billing-key', { billing_key_id: newKey.id, reason: 'new card' });
      expect(res.status).toBe(200);
      expect(res.body.billing_key_id).toBe(newKey.id);

      // Off the old key, at Bootpay and here.
      expect(activeReservationsAtFake(t, oldSuffix)).toEqual([]);
      expect(
        ledgerReservationsOf(t, sub.id)
          .filter((r) => r.billing_key_suffix === oldSuffix)
          .map((r) => r.status),
      ).toEqual([REVOKED, REVOKED, REVOKED]);
      expect((await keyReservations(t, key.id)).budget.used).toBe(0);
      // On the new key, for the same periods and price.
      const view = await keyReservations(t, newKey.id);
      expect(view.reservations.map((r) => [r.subscription_id, r.execute_at, r.amount, r.confirmed])).toEqual(
        [1, 2, 3].map((i) => [sub.id, iso(month(i)), 11000, true]),
      );
      expect(
        activeReservationsAtFake(t, newSuffix)
          .map((r) => [r.reserve_execute_at, r.price])
          .sort(),
      ).toEqual([1, 2, 3].map((i) => [iso(month(i)), 11000]));

      // The next period is charged once, on the new card.
      await executeAt(month(1));
      expect(
        ledgerChargesOf(t, sub.id)
          .filter((c) => c.order_id.startsWith(periodPrefix(sub.id, month(1))))
          .map((c) => [c.billing_key_suffix, c.source]),
      ).toEqual([[newSuffix, 'reservation']]);
      expect(await getSubscription(t, sub.id)).toMatchObject({ status: 'active', billing_key_id: newKey.id, current_period_start: iso(month(1)) });
    });
  });
});
