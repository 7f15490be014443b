import fc from 'fast-check';
import { postBootpayWebhook } from '../utils/fixtures';
import { bearer } from '../utils/test-app';
import { attributeNewCharges, checkSettled, checkStep, rulesAtStart } from './invariants';
import { CUSTOMERS, DAY, HOUR, KEYS_PER_CUSTOMER, MINUTE, Model, ModelFailure, PLAN_SPECS, SubModel, WEEK, World } from './world';

/**
 * The commands of the model-based test, one small class each. Every command acts through the public API (or on the
 * fake Bootpay, the test clock and the webhook sink), records in the model only what the service acknowledged, waits
 * for Bootpay's webhooks in flight, and then checks the step invariants. Subscriptions are picked by index modulo
 * the number created, so a shrunk sequence stays meaningful. `toString()` prints the constructor call, so a failing
 * sequence can be pasted as a regression test.
 */
export abstract class Step implements fc.AsyncCommand<Model, World> {
  check(m: Readonly<Model>): boolean {
    return !this.needsSub || m.subs.length > 0;
  }
  protected needsSub = false;
  /** A subscription (hex id) whose pause this step lifts: charges during it are allowed. */
  protected lifted: string | null = null;

  async run(m: Model, w: World): Promise<void> {
    const rules = rulesAtStart(m);
    this.lifted = null;
    w.trace.push(`${w.now().toISOString()} ${this.toString()}`);
    await this.act(m, w);
    await w.idle();
    attributeNewCharges(m, w, rules, this.toString(), this.lifted);
    await checkStep(m, w);
  }

  protected abstract act(m: Model, w: World): Promise<void>;
  abstract toString(): string;

  protected sub(m: Model, index: number): SubModel {
    return m.subs[index % m.subs.length];
  }
}

const REFUSED = [409, 402, 422];
/** Accepted with the outcome of its charge unknown (the answer of Bootpay was lost): settled later. */
const PENDING = 202;

// ------------------------------------------------------------------ subscriptions

export class CreateSub extends Step {
  constructor(
    readonly customer: number,
    readonly key: number,
    readonly plan: number,
    readonly start: 'now' | 'month_end',
  ) {
    super();
  }
  async act(m: Model, w: World) {
    const customer = w.customers[this.customer % CUSTOMERS];
    const body: Record<string, unknown> = {
      customer_id: customer.id,
      plan_id: w.plans[this.plan % w.plans.length].id,
      billing_key_id: customer.keys[this.key % KEYS_PER_CUSTOMER].id,
    };
    if (this.start === 'month_end') body.start_at = nextMonthEnd(w.now()).toISOString();
    const res = w.expectAnswer(this.toString(), await w.t.http.post('/v1/subscriptions').set(bearer(w.t.serviceKey)).send(body), [201, 202, ...REFUSED]);
    if (res.body?.id && (res.status === 201 || res.status === 202)) {
      m.subs.push({ id: res.body.id, customer: this.customer % CUSTOMERS, canceledAck: null, pausedAck: null, periodEndCancel: null });
    }
  }
  toString() {
    return `new CreateSub(${this.customer}, ${this.key}, ${this.plan}, '${this.start}')`;
  }
}

export class Pause extends Step {
  protected override needsSub = true;
  constructor(readonly index: number) {
    super();
  }
  async act(m: Model, w: World) {
    const s = this.sub(m, this.index);
    const res = w.expectAnswer(
      this.toString(),
      await w.t.http.post(`/v1/subscriptions/${s.id}/pause`).set(bearer(w.t.adminKey)).send({ reason: 'model pause' }),
      [200, ...REFUSED],
    );
    if (res.status === 200) s.pausedAck = new Set(m.seenReceipts);
  }
  toString() {
    return `new Pause(${this.index})`;
  }
}

export class Resume extends Step {
  protected override needsSub = true;
  constructor(readonly index: number) {
    super();
  }
  async act(m: Model, w: World) {
    const s = this.sub(m, this.index);
    this.lifted = s.id.replace(/-/g, '');
    const res = w.expectAnswer(this.toString(), await w.t.http.post(`/v1/subscriptions/${s.id}/resume`).set(bearer(w.t.adminKey)).send({}), [
      200,
      PENDING,
      ...REFUSED,
    ]);
    if (res.status === 200) s.pausedAck = null;
    else if ((await w.subscription(s.id)).status !== 'paused')
      s.pausedAck = null; // a declined resume leaves it past_due
    else this.lifted = null; // refused and still paused: nothing may have been charged
  }
  toString() {
    return `new Resume(${this.index})`;
  }
}

export class CancelNow extends Step {
  protected override needsSub = true;
  constructor(
    readonly index: number,
    readonly refundUnused: boolean,
  ) {
    super();
  }
  async act(m: Model, w: World) {
    const s = this.sub(m, this.index);
    // refund_unused refunds money: only the admin (finance) may ask for it.
    const body = { at_period_end: false, reason: 'model cancel', ...(this.refundUnused ? { refund_unused: true } : {}) };
    const res = w.expectAnswer(
      this.toString(),
      await w.t.http
        .post(`/v1/subscriptions/${s.id}/cancel`)
        .set(bearer(this.refundUnused ? w.t.adminKey : w.t.serviceKey))
        .send(body),
      [200, ...REFUSED],
    );
    if (res.status === 200) s.canceledAck = new Set(m.seenReceipts);
  }
  toString() {
    return `new CancelNow(${this.index}, ${this.refundUnused})`;
  }
}

export class CancelAtPeriodEnd extends Step {
  protected override needsSub = true;
  constructor(readonly index: number) {
    super();
  }
  async act(m: Model, w: World) {
    const s = this.sub(m, this.index);
    const res = w.expectAnswer(
      this.toString(),
      await w.t.http.post(`/v1/subscriptions/${s.id}/cancel`).set(bearer(w.t.serviceKey)).send({ at_period_end: true, reason: 'model cancel at period end' }),
      [200, ...REFUSED],
    );
    if (res.status === 200) {
      const end = res.body.current_period_end ?? res.body.trial_end;
      if (res.body.status === 'canceled') s.canceledAck = new Set(m.seenReceipts);
      else if (end) s.periodEndCancel = { effectiveAt: Date.parse(end) };
    }
  }
  toString() {
    return `new CancelAtPeriodEnd(${this.index})`;
  }
}

export class Reactivate extends Step {
  protected override needsSub = true;
  constructor(readonly index: number) {
    super();
  }
  async act(m: Model, w: World) {
    const s = this.sub(m, this.index);
    const res = w.expectAnswer(this.toString(), await w.t.http.post(`/v1/subscriptions/${s.id}/reactivate`).set(bearer(w.t.serviceKey)).send({}), [
      200,
      ...REFUSED,
    ]);
    if (res.status === 200) s.periodEndCancel = null;
  }
  toString() {
    return `new Reactivate(${this.index})`;
  }
}

export class ChangePlan extends Step {
  protected override needsSub = true;
  constructor(
    readonly index: number,
    readonly plan: number,
    readonly proration: 'now' | 'period_end',
  ) {
    super();
  }
  async act(m: Model, w: World) {
    const s = this.sub(m, this.index);
    const body = { plan_id: w.plans[this.plan % w.plans.length].id, proration: this.proration };
    w.expectAnswer(this.toString(), await w.t.http.post(`/v1/subscriptions/${s.id}/change-plan`).set(bearer(w.t.serviceKey)).send(body), [
      200,
      PENDING,
      ...REFUSED,
    ]);
  }
  toString() {
    return `new ChangePlan(${this.index}, ${this.plan}, '${this.proration}')`;
  }
}

export class SwapKey extends Step {
  protected override needsSub = true;
  constructor(
    readonly index: number,
    readonly key: number,
  ) {
    super();
  }
  async act(m: Model, w: World) {
    const s = this.sub(m, this.index);
    const key = w.customers[s.customer].keys[this.key % KEYS_PER_CUSTOMER];
    w.expectAnswer(this.toString(), await w.t.http.post(`/v1/subscriptions/${s.id}/billing-key`).set(bearer(w.t.serviceKey)).send({ billing_key_id: key.id }), [
      200,
      PENDING,
      ...REFUSED,
    ]);
  }
  toString() {
    return `new SwapKey(${this.index}, ${this.key})`;
  }
}

/** An admin refund of one of the subscription's paid payments: the whole balance, or a third of it. */
export class Refund extends Step {
  protected override needsSub = true;
  constructor(
    readonly index: number,
    readonly payment: number,
    readonly partial: boolean,
  ) {
    super();
  }
  async act(m: Model, w: World) {
    const s = this.sub(m, this.index);
    const paid = (await w.payments(s.id)).filter((p) => p.status === 'DONE' || p.status === 'PARTIAL_CANCELED');
    if (!paid.length) return;
    const p = paid[this.payment % paid.length];
    const amount = Math.floor(p.balance_amount / 3);
    const body = this.partial && amount > 0 ? { amount, reason: 'model partial refund' } : { reason: 'model refund' };
    w.expectAnswer(this.toString(), await w.t.http.post(`/v1/payments/${p.id}/refunds`).set(bearer(w.t.adminKey)).send(body), [200, 201, 202, ...REFUSED]);
  }
  toString() {
    return `new Refund(${this.index}, ${this.payment}, ${this.partial})`;
  }
}

// ------------------------------------------------------------------ the clock and the runs

export class Advance extends Step {
  constructor(readonly ms: number) {
    super();
  }
  async act(_m: Model, w: World) {
    w.setClock(new Date(w.now().getTime() + this.ms));
  }
  toString() {
    return `new Advance(${this.ms})`;
  }
}

/** Moves the clock to the last day of the month (10:00 in Seoul), so subscriptions created next are anchored there. */
export class ToMonthEnd extends Step {
  async act(_m: Model, w: World) {
    w.setClock(nextMonthEnd(w.now()));
  }
  toString() {
    return `new ToMonthEnd()`;
  }
}

export class Run extends Step {
  async act(_m: Model, w: World) {
    w.checkRun(this.toString(), await w.runCharges());
  }
  toString() {
    return `new Run()`;
  }
}

/** Two runs at once: both on this instance, or one on a sibling instance sharing the database. */
export class TwoRuns extends Step {
  constructor(readonly sibling: boolean) {
    super();
  }
  async act(_m: Model, w: World) {
    const other = this.sibling ? await w.siblingHttp() : w.t.http;
    const [a, b] = await Promise.all([w.runCharges(), w.runCharges(other)]);
    w.checkRun(`${this.toString()} (first)`, a);
    w.checkRun(`${this.toString()} (second)`, b);
  }
  toString() {
    return `new TwoRuns(${this.sibling})`;
  }
}

// ------------------------------------------------------------------ the fake's faults

export class Decline extends Step {
  constructor(
    readonly key: number,
    readonly scenario: 'insufficient_funds' | 'lost_or_stolen',
  ) {
    super();
  }
  async act(_m: Model, w: World) {
    w.t.fake.setKeyBehavior(w.allKeys[this.key % w.allKeys.length].receiptId, this.scenario);
  }
  toString() {
    return `new Decline(${this.key}, '${this.scenario}')`;
  }
}

export class Recover extends Step {
  constructor(readonly key: number) {
    super();
  }
  async act(_m: Model, w: World) {
    w.t.fake.setKeyBehavior(w.allKeys[this.key % w.allKeys.length].receiptId, null);
  }
  toString() {
    return `new Recover(${this.key})`;
  }
}

/** Bootpay makes the next charge (or reservation) and the answer is lost. */
export class DropNextAnswer extends Step {
  constructor(readonly route: 'subscribe/payment' | 'subscribe/payment/reserve') {
    super();
  }
  async act(_m: Model, w: World) {
    w.t.fake.setFaults({ timeout_after_charge: { count: 1, mode: 'drop', route: this.route } });
  }
  toString() {
    return `new DropNextAnswer('${this.route}')`;
  }
}

/** Bootpay's webhooks for charges and reservations made from now on go to the sink (lost until replayed). */
export class LoseWebhooks extends Step {
  async act(m: Model, w: World) {
    w.loseWebhooks();
    m.webhooksLost = true;
  }
  toString() {
    return `new LoseWebhooks()`;
  }
}

export class RestoreWebhooks extends Step {
  async act(m: Model, w: World) {
    w.restoreWebhooks();
    m.webhooksLost = false;
  }
  toString() {
    return `new RestoreWebhooks()`;
  }
}

/** Delivers the webhooks the sink held (late), oldest or newest first. */
export class ReplayHeld extends Step {
  constructor(readonly newestFirst: boolean) {
    super();
  }
  async act(_m: Model, w: World) {
    const held = w.sink.received.slice(w.replayed);
    w.replayed = w.sink.received.length;
    if (this.newestFirst) held.reverse();
    for (const body of held) w.expectAnswer(`${this.toString()} ${String(body.receipt_id)}`, await postBootpayWebhook(w.t, body), [200]);
  }
  toString() {
    return `new ReplayHeld(${this.newestFirst})`;
  }
}

export class ExecuteReservations extends Step {
  async act(_m: Model, w: World) {
    await w.t.fake.executeDueReservations(w.now());
  }
  toString() {
    return `new ExecuteReservations()`;
  }
}

/**
 * Brings every outcome to light: faults cleared, webhook delivery restored (held ones stay lost), the clock past the
 * stale threshold (max(60 s, 2 × the 2 s time-out)), Bootpay executes what is due, runs; then past the 10 minutes
 * after which executed reservations are looked up, again. Everything up to the first of these instants is then known.
 */
export class Settle extends Step {
  async act(m: Model, w: World) {
    w.t.fake.setFaults({});
    w.restoreWebhooks();
    m.webhooksLost = false;
    w.setClock(new Date(w.now().getTime() + 2 * MINUTE));
    const cutoff = w.now();
    await w.t.fake.executeDueReservations(cutoff);
    await w.idle();
    // A run charges one overdue period per subscription; a cron outage is caught up by the runs of the nights after.
    for (let i = 1; ; i++) {
      const run = await w.runCharges();
      w.checkRun(`settle run ${i}`, run);
      await w.idle();
      const c = run.body.counts ?? {};
      if (c.charged + c.failed + c.unknown + c.resolved === 0) break;
      if (i === 24) throw new ModelFailure(`settle: still charging after ${i} runs: ${JSON.stringify(c)}`);
    }
    // After the lookup delay, attempts left open are resolved; the periods they held back are charged by the runs
    // after, one per run as above.
    w.setClock(new Date(w.now().getTime() + 11 * MINUTE));
    for (let i = 1; ; i++) {
      const run = await w.runCharges();
      w.checkRun(`settle run ${i} after the lookup delay`, run);
      await w.idle();
      const c = run.body.counts ?? {};
      if (i > 1 && c.charged + c.failed + c.unknown + c.resolved === 0) break;
      if (i === 24) throw new ModelFailure(`settle: still charging after ${i} runs past the lookup delay: ${JSON.stringify(c)}`);
    }
    this.cutoff = cutoff;
  }
  private cutoff: Date | null = null;

  override async run(m: Model, w: World) {
    await super.run(m, w);
    await checkSettled(m, w, this.cutoff!);
  }
  toString() {
    return `new Settle()`;
  }
}

// ------------------------------------------------------------------ generation

/** 10:00 Seoul (01:00Z) on the last day of this month, or of the next if that has passed. */
export function nextMonthEnd(now: Date): Date {
  const seoul = new Date(now.getTime() + 9 * HOUR);
  for (let add = 0; ; add++) {
    const last = new Date(Date.UTC(seoul.getUTCFullYear(), seoul.getUTCMonth() + add + 1, 0, 1, 0, 0));
    if (last.getTime() > now.getTime()) return last;
  }
}

const sub = fc.nat({ max: 7 });
const clockMoves = fc.oneof(fc.constantFrom(5 * MINUTE, HOUR, DAY, 3 * DAY, WEEK, 2 * WEEK, 31 * DAY), fc.integer({ min: MINUTE, max: 3 * WEEK }));

const createSub = fc
  .tuple(
    fc.nat({ max: CUSTOMERS - 1 }),
    fc.nat({ max: KEYS_PER_CUSTOMER - 1 }),
    fc.nat({ max: PLAN_SPECS.length - 1 }),
    fc.constantFrom<'now' | 'month_end'>('now', 'now', 'now', 'month_end'),
  )
  .map(([c, k, p, s]) => new CreateSub(c, k, p, s));

/** Routes whose answer may be dropped; MODEL_NO_RESERVE_DROP=1 keeps reservation registrations answered. */
const DROP_ROUTES: ('subscribe/payment' | 'subscribe/payment/reserve')[] = process.env.MODEL_NO_RESERVE_DROP
  ? ['subscribe/payment']
  : ['subscribe/payment', 'subscribe/payment/reserve'];

/** The subscriptions every sequence starts with. */
export const initialSubs = fc.array(createSub, { minLength: 1, maxLength: 4 });

/** One step, weighted towards what makes money move: clock moves, runs and reservations executing. */
export const stepArbitrary: fc.Arbitrary<Step> = fc.oneof(
  { weight: 3, arbitrary: createSub },
  { weight: 8, arbitrary: clockMoves.map((ms) => new Advance(ms)) },
  { weight: 1, arbitrary: fc.constant(new ToMonthEnd()) },
  { weight: 6, arbitrary: fc.constant(new Run()) },
  { weight: 2, arbitrary: fc.boolean().map((s) => new TwoRuns(s)) },
  { weight: 3, arbitrary: fc.constant(new ExecuteReservations()) },
  { weight: 2, arbitrary: sub.map((i) => new Pause(i)) },
  { weight: 2, arbitrary: sub.map((i) => new Resume(i)) },
  { weight: 1, arbitrary: fc.tuple(sub, fc.boolean()).map(([i, r]) => new CancelNow(i, r)) },
  { weight: 2, arbitrary: sub.map((i) => new CancelAtPeriodEnd(i)) },
  { weight: 1, arbitrary: sub.map((i) => new Reactivate(i)) },
  {
    weight: 2,
    arbitrary: fc
      .tuple(sub, fc.nat({ max: PLAN_SPECS.length - 1 }), fc.constantFrom<'now' | 'period_end'>('now', 'period_end'))
      .map(([i, p, r]) => new ChangePlan(i, p, r)),
  },
  { weight: 1, arbitrary: fc.tuple(sub, fc.nat({ max: KEYS_PER_CUSTOMER - 1 })).map(([i, k]) => new SwapKey(i, k)) },
  { weight: 2, arbitrary: fc.tuple(sub, fc.nat({ max: 5 }), fc.boolean()).map(([i, p, partial]) => new Refund(i, p, partial)) },
  {
    weight: 2,
    arbitrary: fc
      .tuple(
        fc.nat({ max: CUSTOMERS * KEYS_PER_CUSTOMER - 1 }),
        fc.constantFrom<'insufficient_funds' | 'lost_or_stolen'>('insufficient_funds', 'insufficient_funds', 'lost_or_stolen'),
      )
      .map(([k, s]) => new Decline(k, s)),
  },
  { weight: 2, arbitrary: fc.nat({ max: CUSTOMERS * KEYS_PER_CUSTOMER - 1 }).map((k) => new Recover(k)) },
  { weight: 2, arbitrary: fc.constantFrom<'subscribe/payment' | 'subscribe/payment/reserve'>(...DROP_ROUTES).map((r) => new DropNextAnswer(r)) },
  { weight: 2, arbitrary: fc.constant(new LoseWebhooks()) },
  { weight: 1, arbitrary: fc.constant(new RestoreWebhooks()) },
  { weight: 2, arbitrary: fc.boolean().map((b) => new ReplayHeld(b)) },
  { weight: 1, arbitrary: fc.constant(new Settle()) },
);
