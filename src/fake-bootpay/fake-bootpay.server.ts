/**
 * A fake of Bootpay's PG REST API (billing subset), served over plain node `http`, for the real `@bootpay/backend-js`
 * SDK to talk to. See README.md beside this file for routes, assumptions, test cards, faults and the control API.
 *
 * State is in memory. Every lookup is by map (order id, billing key, receipt id, reserve id), so per-request work is
 * O(1). The fake never logs billing keys, card numbers or request bodies (it logs nothing at all).
 *
 * This file holds the server: its lifecycle, the programmatic control, the /v2 dispatch with its faults and the route
 * table. The routes' behaviour is in fake-bootpay.billing-keys.ts, .payments.ts, .cancels.ts, .reservations.ts,
 * .receipts.ts and .auth.ts; the state in fake-bootpay.state.ts, the webhooks in .webhooks.ts, the clock in .clock.ts.
 */
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { FakeBootpayOptions, FakeCredentials, FakeFaults, FakeLedger, ReservationExecution, TimeoutAfterChargeFault } from './fake-bootpay.types';
import { dispatchControl } from './fake-bootpay.control';
import { failRateSeed, prng, validateFaults } from './fake-bootpay.faults';
import { FakeHttpError, Json, matchRoute, parseJsonBody, readBody, routeMatches, sendJson, serverErrorBody } from './fake-bootpay.http';
import { FakeAuth } from './fake-bootpay.auth';
import { FakeBillingKeys } from './fake-bootpay.billing-keys';
import { FakeCancels } from './fake-bootpay.cancels';
import { FakeClock } from './fake-bootpay.clock';
import { FakePayments } from './fake-bootpay.payments';
import { FakeReceipts } from './fake-bootpay.receipts';
import { FakeReservations } from './fake-bootpay.reservations';
import { FakeState } from './fake-bootpay.state';
import { FakeWebhooks } from './fake-bootpay.webhooks';

export * from './fake-bootpay.types';
export { TEST_CARDS, maskCardNo, cardCompanyFor } from './test-cards';
export type { DeclineScenario, TestCard } from './test-cards';
export { RESERVATION_STATUS } from './fake-bootpay.state';

export const DEFAULT_FAKE_CREDENTIALS: FakeCredentials = Object.freeze({
  clientKey: 'ck_test_fake',
  secretKey: 'sk_test_fake',
  applicationId: '5b8f6a4d396fa665fdc2b5ea',
  privateKey: 'pk_test_fake',
});

/** The fake Bootpay server: its lifecycle, the programmatic control (also served under /__fake) and the /v2 API. */
export class FakeBootpayServer {
  readonly credentials: FakeCredentials;

  private readonly opts: FakeBootpayOptions;
  private server: http.Server | null = null;
  private baseUrl = '';
  private stopped = false;

  // state, and the routes' handlers that read and change it
  private readonly state = new FakeState();
  private readonly clock: FakeClock;
  private readonly auth: FakeAuth;
  private readonly keys: FakeBillingKeys;
  private readonly receipts: FakeReceipts;
  private readonly webhooks: FakeWebhooks;
  private readonly payments: FakePayments;
  private readonly cancels: FakeCancels;
  private readonly reservations: FakeReservations;

  // counters
  private counters = { requests: 0, tokens_issued: 0 };

  // faults
  private faults: FakeFaults = {};
  private random: () => number;
  private failRandom: () => number;
  private readonly hangTimers = new Set<NodeJS.Timeout>();
  private readonly latencyTimers = new Set<NodeJS.Timeout>();

  constructor(options: FakeBootpayOptions = {}) {
    this.opts = { ...options };
    this.credentials = Object.freeze({
      clientKey: options.clientKey ?? DEFAULT_FAKE_CREDENTIALS.clientKey,
      secretKey: options.secretKey ?? DEFAULT_FAKE_CREDENTIALS.secretKey,
      applicationId: options.applicationId ?? DEFAULT_FAKE_CREDENTIALS.applicationId,
      privateKey: options.privateKey ?? DEFAULT_FAKE_CREDENTIALS.privateKey,
    });
    this.random = prng(options.seed ?? 1);
    this.failRandom = prng(failRateSeed(options.seed ?? 1));
    this.clock = new FakeClock(this.opts);
    this.auth = new FakeAuth(this.credentials, this, this.counters);
    this.keys = new FakeBillingKeys(this.state, this);
    this.receipts = new FakeReceipts(this.state, this);
    this.webhooks = new FakeWebhooks(this.opts, this.state, this, this.receipts, () => this.stopped);
    this.payments = new FakePayments(this.state, this, this.keys, this.receipts, this.webhooks);
    this.cancels = new FakeCancels(this.state, this, this.receipts, this.webhooks);
    this.reservations = new FakeReservations(this.state, this, this.keys, this.webhooks);
  }

  get url(): string {
    return this.baseUrl;
  }

  get apiBaseUrl(): string {
    return `${this.baseUrl}/v2`;
  }

  // ---------------------------------------------------------------------------------------------------- lifecycle

  start(port = 0, host = '127.0.0.1'): Promise<string> {
    if (this.server) return Promise.resolve(this.baseUrl);
    this.stopped = false;
    const server = http.createServer((req, res) => this.onRequest(req, res));
    server.keepAliveTimeout = 65_000;
    server.headersTimeout = 66_000;
    server.requestTimeout = 0;
    this.server = server;
    return new Promise((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, host, () => {
        server.off('error', reject);
        const addr = server.address() as AddressInfo;
        const h = addr.family === 'IPv6' ? `[${addr.address}]` : addr.address;
        this.baseUrl = `http://${h}:${addr.port}`;
        resolve(this.baseUrl);
      });
    });
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.webhooks.cancelWebhooks();
    for (const t of this.hangTimers) clearTimeout(t);
    this.hangTimers.clear();
    for (const t of this.latencyTimers) clearTimeout(t);
    this.latencyTimers.clear();
    this.webhooks.destroyAgents();
    const server = this.server;
    this.server = null;
    if (!server) return;
    await new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    });
  }

  // ---------------------------------------------------------------------------------------------------- programmatic control

  /** Clears all payment state, faults, the clock offset and pending webhooks. Tokens stay valid. */
  reset(): void {
    this.webhooks.cancelWebhooks();
    this.state.clear();
    this.faults = {};
    this.random = prng(this.opts.seed ?? 1);
    this.failRandom = prng(failRateSeed(this.opts.seed ?? 1));
    this.clock.offsetMs = 0;
    this.webhooks.webhookUrl = this.opts.webhookUrl ?? null;
  }

  setFaults(faults: FakeFaults): void {
    this.faults = validateFaults(faults);
    if (faults.seed !== undefined) {
      this.random = prng(faults.seed);
      this.failRandom = prng(failRateSeed(faults.seed));
    }
  }

  getFaults(): FakeFaults {
    return JSON.parse(JSON.stringify(this.faults)) as FakeFaults;
  }

  setWebhookUrl(url: string | null): void {
    if (url !== null) new URL(url); // throws on a malformed URL
    this.webhooks.webhookUrl = url;
  }

  /** Sets the clock offset and/or moves it by `advanceMs` (PUT /__fake/clock). */
  moveClock(change: { offsetMs?: number; advanceMs?: number }): { now: Date; offsetMs: number } {
    return this.clock.move(change);
  }

  /** The receipt page of an approved payment (its receipt_url). */
  receiptPage(receiptId: string): Json {
    return this.receipts.receiptLookup(receiptId, false);
  }

  /** Moves the fake's clock forward (or back, with a negative value) relative to its time source. */
  advanceClock(ms: number): Date {
    return this.clock.advance(ms);
  }

  /** `decline`: a test-card scenario name, `'approve'` (always approve), or null (back to the card's own behaviour). */
  setKeyBehavior(receiptId: string, decline: string | null): void {
    this.keys.setKeyBehavior(receiptId, decline);
  }

  /**
   * Seeding for benchmarks and soak tests: issues `count` working billing keys at once, as `POST request/subscribe`
   * would one by one (same records, same lookups, same charge behaviour), without an HTTP round trip per key.
   * `cardNo` picks the card (a test card makes the keys behave like it); any well-formed number approves.
   */
  issueBillingKeysBulk(count: number, opts: { cardNo?: string; pg?: string } = {}): Array<{ billing_key: string; receipt_id: string }> {
    return this.keys.issueBillingKeysBulk(count, opts);
  }

  ledger(): FakeLedger {
    return this.state.ledger();
  }

  /** Executes every active reservation due at `now` (default: the fake's clock), in due-time order. */
  async executeDueReservations(now?: Date): Promise<ReservationExecution[]> {
    return this.reservations.executeDue(now);
  }

  /** Request counters: /v2 requests received, access tokens issued (new tokens only). Not cleared by reset(). */
  stats(): { requests: number; tokens_issued: number; pending_webhooks: number } {
    return { ...this.counters, pending_webhooks: this.webhooks.pending };
  }

  /** Resolves when no webhook delivery is pending (delivered or given up). */
  webhooksIdle(): Promise<void> {
    return this.webhooks.idle();
  }

  // ---------------------------------------------------------------------------------------------------- HTTP plumbing

  /** The fake's time: its time source moved by the clock offset. */
  now(): Date {
    return this.clock.now();
  }

  private onRequest(req: http.IncomingMessage, res: http.ServerResponse): void {
    readBody(req, res, (raw) => {
      this.dispatch(req, res, raw).catch(() => {
        if (!res.headersSent) sendJson(res, 500, { error_code: 'SERVER_ERROR', message: 'fake internal error', http_status: 500 });
      });
    });
  }

  private async dispatch(req: http.IncomingMessage, res: http.ServerResponse, raw: string): Promise<void> {
    const method = (req.method ?? 'GET').toUpperCase();
    const rawUrl = req.url ?? '/';
    const q = rawUrl.indexOf('?');
    const pathname = q === -1 ? rawUrl : rawUrl.slice(0, q);
    const query = new URLSearchParams(q === -1 ? '' : rawUrl.slice(q + 1));

    if (pathname.startsWith('/__fake/') || pathname === '/__fake') {
      await dispatchControl(this, method, pathname, raw, res);
      return;
    }
    if (!pathname.startsWith('/v2/')) {
      sendJson(res, 404, { error_code: 'ROUTE_NOT_FOUND', message: `no route for ${method} (routes are under /v2)` });
      return;
    }
    let segments: string[];
    try {
      segments = pathname
        .slice(4)
        .split('/')
        .map((s) => decodeURIComponent(s));
    } catch {
      sendJson(res, 404, { error_code: 'ROUTE_NOT_FOUND', message: 'malformed path' });
      return;
    }
    this.counters.requests += 1;
    const match = matchRoute(method, segments);
    if (!match) {
      sendJson(res, 404, { error_code: 'ROUTE_NOT_FOUND', message: `no route for ${method} /v2/${segments[0] ?? ''}/…` });
      return;
    }

    const latency = this.faults.latency_ms ?? this.opts.latencyMs ?? 0;
    if (latency > 0) {
      await new Promise<void>((resolve) => {
        const t = setTimeout(() => {
          this.latencyTimers.delete(t);
          resolve();
        }, latency);
        this.latencyTimers.add(t);
      });
      if (this.stopped) {
        res.destroy();
        return;
      }
    }

    const fail = this.faults.fail_next;
    if (fail && fail.count > 0 && routeMatches(fail.route, method, match.route.key, null)) {
      fail.count -= 1;
      if (fail.count <= 0) this.faults.fail_next = null;
      const status = fail.status ?? 500;
      sendJson(res, status, serverErrorBody(status));
      return;
    }
    const failRate = this.faults.fail_rate;
    if (failRate && routeMatches(failRate.route, method, match.route.key, null) && this.failRandom() < failRate.rate) {
      const status = failRate.status ?? 500;
      sendJson(res, status, serverErrorBody(status));
      return;
    }

    let status = 200;
    let body: unknown;
    try {
      if (match.route.key !== 'request/token') this.auth.authenticate(req.headers.authorization);
      body = this.handleV2(method, match.route.key, match.id, parseJsonBody(raw), query);
    } catch (e) {
      if (!(e instanceof FakeHttpError)) throw e;
      status = e.status;
      body = e.body();
    }

    const timeout = this.faults.timeout_after_charge;
    if (timeout && routeMatches(timeout.route, method, match.route.key, 'subscribe/payment') && this.shouldTimeout(timeout)) {
      if ((timeout.mode ?? 'drop') === 'hang') {
        const t = setTimeout(() => {
          this.hangTimers.delete(t);
          res.destroy();
        }, timeout.hang_ms ?? 1000);
        this.hangTimers.add(t);
      } else {
        res.destroy();
      }
      return;
    }
    sendJson(res, status, body);
  }

  private shouldTimeout(f: TimeoutAfterChargeFault): boolean {
    if (f.count !== undefined) {
      if (f.count <= 0) return false;
      f.count -= 1;
      if (f.count <= 0) this.faults.timeout_after_charge = null;
      return true;
    }
    return f.rate !== undefined && this.random() < f.rate;
  }

  // ---------------------------------------------------------------------------------------------------- /v2 routes

  private handleV2(method: string, key: string, id: string | null, body: Json, query: URLSearchParams): unknown {
    switch (`${method} ${key}`) {
      case 'POST request/token':
        return this.auth.issueToken(body);
      case 'POST request/subscribe':
        return this.keys.issueBillingKey(body);
      case 'GET subscribe/billing_key':
        return this.keys.billingKeyJson(this.keys.activeKeyByReceipt(id as string));
      case 'DELETE subscribe/billing_key':
        return this.keys.destroyBillingKey(id as string);
      case 'GET billing_key':
        return this.keys.billingKeyJson(this.keys.activeKey(id as string));
      case 'POST subscribe/payment':
        return this.payments.charge(body);
      case 'POST subscribe/payment/reserve':
        return this.reservations.reserve(body);
      case 'GET subscribe/payment/reserve':
        return this.reservations.reservationJson(this.reservations.reservationById(id as string));
      case 'DELETE subscribe/payment/reserve':
        return this.reservations.revokeReservation(id as string);
      case 'GET receipt':
        return this.receipts.receiptLookup(id as string, query.get('lookup_user_data') === 'true');
      case 'POST cancel':
        return this.cancels.cancel(body);
      case 'POST confirm':
        return this.payments.confirm(body);
      default:
        throw new FakeHttpError(404, 'ROUTE_NOT_FOUND', 'no such route');
    }
  }
}
