import type { Response } from 'supertest';
import { createBillingKey, createCustomer, createPlan, startSiblingApp, startWebhookSink, WebhookSink } from '../utils/fixtures';
import { bearer, startTestApp, T0, TestApp } from '../utils/test-app';

/**
 * The system under test of the model-based test: one service (its own database clone and fake Bootpay), a webhook
 * sink that can swallow Bootpay's webhooks, a sibling instance on the same database for concurrent runs, and the
 * fixtures every sequence starts from (plans, two customers with two billing keys each).
 */

export const MINUTE = 60_000;
export const HOUR = 60 * MINUTE;
export const DAY = 24 * HOUR;
export const WEEK = 7 * DAY;

/** The plans every sequence may subscribe to (index = position). */
export const PLAN_SPECS = [
  { name: 'Scheduler monthly', amount: 11000, interval: 'month', charge_mode: 'scheduler' },
  { name: 'Scheduler monthly big', amount: 22000, tax_free_amount: 2000, interval: 'month', charge_mode: 'scheduler' },
  { name: 'Reserved monthly', amount: 11000, interval: 'month', charge_mode: 'reservation' },
  { name: 'Scheduler weekly with trial', amount: 5500, interval: 'week', trial_days: 3, charge_mode: 'scheduler' },
  { name: 'Reserved weekly', amount: 7700, interval: 'week', charge_mode: 'reservation' },
  { name: 'Reserved monthly with trial', amount: 33000, interval: 'month', trial_days: 7, charge_mode: 'reservation' },
] as const;

export const CUSTOMERS = 2;
export const KEYS_PER_CUSTOMER = 2;

export interface Key {
  id: string;
  receiptId: string;
}

export interface Payment {
  id: string;
  subscription_id: string;
  kind: 'period' | 'proration';
  order_id: string;
  receipt_id: string | null;
  reserve_id: string | null;
  status: string;
  amount: number;
  tax_free_amount: number;
  balance_amount: number;
  not_applied: string | null;
  failure: { code: string } | null;
  attempt: number;
  period: { index: number; start: string; end: string };
}

export interface Subscription {
  id: string;
  status: string;
  plan_id: string;
  billing_key_id: string;
  current_period_start: string | null;
  current_period_end: string | null;
  next_charge_at: string | null;
  trial_end: string | null;
  cancel_at_period_end: boolean;
  pending_plan_id: string | null;
}

/** What the reference model keeps about one subscription: only what the service acknowledged. */
export interface SubModel {
  id: string;
  customer: number;
  /** Receipt ids of every charge at the fake when a cancel now was acknowledged (200), or null. */
  canceledAck: Set<string> | null;
  /** When a pause was acknowledged (and no resume since): the receipts known then, or null. */
  pausedAck: Set<string> | null;
  /** A cancel at period end acknowledged (and not reactivated): no period starting at or after `effectiveAt` may be charged. */
  periodEndCancel: { effectiveAt: number } | null;
}

export interface Model {
  subs: SubModel[];
  /** Charges Bootpay executed from a reservation while the subscription was canceled or paused: each must end refunded in full. */
  mustBeRefunded: Map<string, string>;
  /** Every receipt id at the fake already attributed to a step. */
  seenReceipts: Set<string>;
  /** Whether webhooks currently go to the sink. */
  webhooksLost: boolean;
}

export class ModelFailure extends Error {}

export class World {
  readonly trace: string[] = [];
  private sibling?: Awaited<ReturnType<typeof startSiblingApp>>;
  /** How many of the sink's webhooks were already replayed to the service. */
  replayed = 0;

  private constructor(
    readonly t: TestApp,
    readonly sink: WebhookSink,
    readonly serviceUrl: string,
    readonly plans: { id: string; amount: number; mode: string }[],
    readonly customers: { id: string; keys: Key[] }[],
  ) {}

  static async start(): Promise<World> {
    const t = await startTestApp({ now: T0, env: { RESERVATION_HORIZON: '3' } });
    const sink = await startWebhookSink();
    const plans = [];
    for (const spec of PLAN_SPECS) {
      const p = await createPlan(t, { ...spec });
      plans.push({ id: p.id, amount: p.amount, mode: spec.charge_mode });
    }
    const customers = [];
    for (let c = 0; c < CUSTOMERS; c++) {
      const customer = await createCustomer(t);
      const keys: Key[] = [];
      for (let k = 0; k < KEYS_PER_CUSTOMER; k++) {
        // Distinct valid card numbers, so the keys' fingerprints differ.
        const key = await createBillingKey(t, customer.id, { card_no: `42424242424${c}${k}${String(Date.now()).slice(-3)}` });
        keys.push({ id: key.id, receiptId: key.bootpay_receipt_id });
      }
      customers.push({ id: customer.id, keys });
    }
    return new World(t, sink, t.runtime.config.publicBaseUrl!, plans, customers);
  }

  static initialModel(): Model {
    return { subs: [], mustBeRefunded: new Map(), seenReceipts: new Set(), webhooksLost: false };
  }

  /** The sibling instance (same database, fake and clock), started on first use with the service's own webhook address. */
  async siblingHttp() {
    if (!this.sibling) {
      // The sibling copies the configuration when it starts: it always gives Bootpay the service's own address.
      const current = this.t.runtime.config.publicBaseUrl;
      this.t.runtime.config.publicBaseUrl = this.serviceUrl;
      try {
        this.sibling = await startSiblingApp(this.t);
      } finally {
        this.t.runtime.config.publicBaseUrl = current;
      }
    }
    return this.sibling.http;
  }

  async close() {
    await this.t.fake.webhooksIdle();
    if (this.sibling) await this.sibling.close();
    await this.sink.close();
    await this.t.close();
  }

  get allKeys(): Key[] {
    return this.customers.flatMap((c) => c.keys);
  }

  now(): Date {
    return this.t.clock.now();
  }

  setClock(at: Date) {
    this.t.clock.set(at);
  }

  /** Throws on a 5xx, or on an answer the model does not allow (a client error other than a refusal means the test is wrong). */
  expectAnswer(what: string, res: Response, allowed: number[], note = true): Response {
    if (note && this.trace.length)
      this.trace[this.trace.length - 1] += ` → ${res.status}${res.status >= 400 ? ` ${res.body?.code ?? ''}` : res.body?.status ? ` ${res.body.status}` : ''}`;
    if (res.status >= 500) throw new ModelFailure(`${what}: ${res.status} ${JSON.stringify(res.body)}`);
    if (!allowed.includes(res.status)) throw new ModelFailure(`${what}: unexpected ${res.status} ${JSON.stringify(res.body)}`);
    return res;
  }

  async runCharges(http = this.t.http): Promise<Response> {
    return http.post('/v1/charge-runs').set(bearer(this.t.adminKey)).send({ wait: true });
  }

  checkRun(what: string, res: Response) {
    this.expectAnswer(what, res, [202, 409]);
    if (res.status === 202 && res.body.status !== 'completed') throw new ModelFailure(`${what}: the run ended ${res.body.status}: ${JSON.stringify(res.body)}`);
  }

  async subscription(id: string): Promise<Subscription> {
    const res = await this.t.http.get(`/v1/subscriptions/${id}`).set(bearer(this.t.serviceKey));
    this.expectAnswer('GET subscription', res, [200], false);
    return res.body as Subscription;
  }

  async payments(subscriptionId: string): Promise<Payment[]> {
    const out: Payment[] = [];
    let cursor: string | null = null;
    do {
      const res: Response = await this.t.http
        .get(`/v1/payments?subscription_id=${subscriptionId}&limit=100${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`)
        .set(bearer(this.t.adminKey));
      this.expectAnswer('GET payments', res, [200], false);
      out.push(...(res.body.data as Payment[]));
      cursor = res.body.has_more ? res.body.next_cursor : null;
    } while (cursor);
    return out;
  }

  /** Every subscription with its payments, and the fake's charges and reservations, for a failure message. */
  async describe(m: Model): Promise<string> {
    const out: string[] = [];
    const ledger = this.t.fake.ledger();
    for (const s of m.subs) {
      const sub = await this.subscription(s.id);
      const hex = subHex(s.id);
      out.push(
        `subscription ${s.id} ${sub.status} period ${sub.current_period_start} – ${sub.current_period_end} next ${sub.next_charge_at} cancel_at_period_end ${sub.cancel_at_period_end}`,
      );
      for (const p of await this.payments(s.id)) {
        out.push(
          `  payment ${p.order_id} ${p.kind} ${p.status} ${p.amount} balance ${p.balance_amount} receipt ${p.receipt_id} reserve ${p.reserve_id}` +
            `${p.failure ? ` failure ${p.failure.code}` : ''}${p.not_applied ? ` not_applied ${p.not_applied}` : ''}`,
        );
      }
      for (const c of ledger.charges.filter((c) => c.order_id.startsWith(`s${hex}-`))) {
        out.push(`  Bootpay charge ${c.order_id} ${c.source} ${c.price} cancelled ${c.cancelled_price} at ${c.purchased_at} receipt ${c.receipt_id}`);
      }
      for (const r of ledger.reservations.filter((r) => r.order_id.startsWith(`s${hex}-`))) {
        out.push(`  Bootpay reservation ${r.order_id} status ${r.status} at ${r.reserve_execute_at} reserve ${r.reserve_id}`);
      }
    }
    return out.join('\n');
  }

  /** Bootpay's webhooks go to the sink from now on (for charges and reservations made from now). */
  loseWebhooks() {
    this.t.runtime.config.publicBaseUrl = this.sink.url;
  }

  restoreWebhooks() {
    this.t.runtime.config.publicBaseUrl = this.serviceUrl;
  }

  /** Lets Bootpay's webhooks in flight arrive (at the service or the sink), so each step ends in a known state. */
  async idle() {
    await this.t.fake.webhooksIdle();
  }
}

/** `s<subscription hex>-<period start epoch>-p<attempt>` (period) or `-x…` (proration). */
export function parseOrderId(orderId: string): { subHex: string; periodStart: number; kind: 'period' | 'proration' } | null {
  const m = /^s([0-9a-f]{32})-(\d+)-([px])/.exec(orderId);
  if (!m) return null;
  return { subHex: m[1], periodStart: Number(m[2]) * 1000, kind: m[3] === 'p' ? 'period' : 'proration' };
}

export const subHex = (id: string) => id.replace(/-/g, '');
