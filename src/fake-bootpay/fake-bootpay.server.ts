/**
 * A fake of Bootpay's PG REST API (billing subset), served over plain node `http`, for the real `@bootpay/backend-js`
 * SDK to talk to. See README.md beside this file for routes, assumptions, test cards, faults and the control API.
 *
 * State is in memory. Every lookup is by map (order id, billing key, receipt id, reserve id), so per-request work is
 * O(1). The fake never logs billing keys, card numbers or request bodies (it logs nothing at all).
 */
import { randomBytes } from 'node:crypto';
import * as http from 'node:http';
import * as https from 'node:https';
import type { AddressInfo } from 'node:net';
import { DeclineScenario, TEST_CARD_BY_NUMBER, TEST_CARD_BY_SCENARIO, TEST_CARDS, TestCard, cardCompanyFor, isDeclineScenario, maskCardNo } from './test-cards';
import type {
  FakeBootpayOptions,
  FakeCredentials,
  FakeFaults,
  FakeLedger,
  LedgerCancel,
  LedgerFailedCharge,
  LedgerWebhook,
  ReservationExecution,
  TimeoutAfterChargeFault,
} from './fake-bootpay.types';
import { dispatchControl } from './fake-bootpay.control';
import { failRateSeed, prng, validateFaults } from './fake-bootpay.faults';
import {
  amount,
  FakeHttpError,
  invalid,
  isObject,
  Json,
  matchRoute,
  optString,
  parseIso,
  parseJsonBody,
  readBody,
  reqString,
  routeMatches,
  sendJson,
  serverErrorBody,
  validBirth,
} from './fake-bootpay.http';

export * from './fake-bootpay.types';
export { TEST_CARDS, maskCardNo, cardCompanyFor } from './test-cards';
export type { DeclineScenario, TestCard } from './test-cards';

export const DEFAULT_FAKE_CREDENTIALS: FakeCredentials = Object.freeze({
  clientKey: 'ck_test_fake',
  secretKey: 'sk_test_fake',
  applicationId: '5b8f6a4d396fa665fdc2b5ea',
  privateKey: 'pk_test_fake',
});

const MINUTE = 60_000;
const TOKEN_SAME_FOR_MS = 25 * MINUTE;
const TOKEN_VALID_FOR_MS = 30 * MINUTE;
const TOKEN_EXPIRE_IN_S = 1800;
const MAX_ACTIVE_RESERVATIONS_PER_KEY = 10;
const KST_OFFSET_MS = 9 * 3600_000;

/** Reservation status numbers (an assumption: Bootpay does not document them). */
export const RESERVATION_STATUS = Object.freeze({
  RESERVED: 1,
  EXECUTING: 2,
  EXECUTED: 3,
  EXECUTION_FAILED: -3,
  REVOKED: -1,
});

const STATUS_LOCALE: Readonly<Record<number, string>> = {
  1: '결제완료',
  11: '빌링키발급완료',
  20: '결제취소완료',
  [-2]: '결제승인실패',
  [-11]: '빌링키삭제',
};

type KeyBehavior = DeclineScenario | 'approve' | null;

interface BillingKeyRec {
  billingKey: string;
  receiptId: string;
  subscriptionId: string;
  orderName: string;
  pg: string;
  cardNoMasked: string;
  cardCompany: string;
  cardCompanyCode: string;
  cardScenario: DeclineScenario | null;
  behavior: KeyBehavior;
  chargeAttempts: number;
  activeReservations: number;
  requestedAt: Date;
  publishedAt: Date;
  expireAt: Date;
  destroyedAt: Date | null;
  metadata: unknown;
  user: unknown;
}

interface PaymentRec {
  receiptId: string;
  orderId: string;
  orderName: string;
  price: number;
  taxFree: number;
  cancelledPrice: number;
  cancelledTaxFree: number;
  status: number;
  pg: string;
  requestedAt: Date;
  purchasedAt: Date | null;
  cancelledAt: Date | null;
  metadata: unknown;
  user: unknown;
  feedbackUrl: string | null;
  bkSuffix: string;
  cardNoMasked: string;
  cardCompany: string;
  cardCompanyCode: string;
  tid: string;
  approveNo: string | null;
  source: 'charge' | 'reservation';
  failure: { errorCode: string; pgErrorCode: string | null; message: string } | null;
  cancelIds: Set<string>;
}

interface ReservationRec {
  reserveId: string;
  bk: BillingKeyRec;
  orderId: string;
  orderName: string;
  price: number;
  taxFree: number;
  metadata: unknown;
  user: unknown;
  feedbackUrl: string | null;
  contentType: string;
  requestedAt: Date;
  executeAt: Date;
  startedAt: Date | null;
  finishedAt: Date | null;
  revokedAt: Date | null;
  status: number;
  receiptId: string | null;
}

interface WebhookJob {
  entry: LedgerWebhook;
  url: string;
  payload: string;
  timer: NodeJS.Timeout | null;
  generation: number;
}

/** Random bytes from a pooled buffer (one syscall per 4 KiB instead of one per id). */
let randomPool = Buffer.alloc(0);
let randomPoolOffset = 0;
function pooledRandom(size: number): Buffer {
  if (randomPoolOffset + size > randomPool.length) {
    randomPool = randomBytes(4096);
    randomPoolOffset = 0;
  }
  const out = randomPool.subarray(randomPoolOffset, randomPoolOffset + size);
  randomPoolOffset += size;
  return out;
}

const hexId = (): string => pooledRandom(12).toString('hex');
const iso = (d: Date | null | undefined): string | null => (d ? d.toISOString() : null);
const suffix = (billingKey: string): string => billingKey.slice(-4);

export class FakeBootpayServer {
  readonly credentials: FakeCredentials;

  private readonly opts: FakeBootpayOptions;
  private server: http.Server | null = null;
  private baseUrl = '';
  private stopped = false;

  // state
  private billingKeys = new Map<string, BillingKeyRec>();
  private billingKeysByReceipt = new Map<string, BillingKeyRec>();
  private billingKeyList: BillingKeyRec[] = [];
  private payments = new Map<string, PaymentRec>();
  private paymentList: PaymentRec[] = [];
  private approvedOrderIds = new Map<string, string>();
  private reservations = new Map<string, ReservationRec>();
  private reservationList: ReservationRec[] = [];
  private activeReservations = new Map<string, ReservationRec>();
  private activeReservationOrderIds = new Map<string, string>();
  private failedCharges: LedgerFailedCharge[] = [];
  private cancels: LedgerCancel[] = [];
  private webhookEntries: LedgerWebhook[] = [];

  // auth
  private tokens = new Map<string, number>();
  private currentToken: { token: string; issuedAt: number } | null = null;

  // counters
  private counters = { requests: 0, tokens_issued: 0 };

  // faults, clock, webhooks
  private faults: FakeFaults = {};
  private random: () => number;
  private failRandom: () => number;
  private clockOffsetMs = 0;
  private webhookUrl: string | null;
  private generation = 0;
  private pendingWebhooks = new Set<WebhookJob>();
  private idleWaiters: Array<() => void> = [];
  private readonly hangTimers = new Set<NodeJS.Timeout>();
  private readonly latencyTimers = new Set<NodeJS.Timeout>();
  private readonly webhookHttpAgent = new http.Agent({ keepAlive: true, maxSockets: 128 });
  private readonly webhookHttpsAgent = new https.Agent({ keepAlive: true, maxSockets: 128 });

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
    this.webhookUrl = options.webhookUrl ?? null;
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
    this.cancelWebhooks();
    for (const t of this.hangTimers) clearTimeout(t);
    this.hangTimers.clear();
    for (const t of this.latencyTimers) clearTimeout(t);
    this.latencyTimers.clear();
    this.webhookHttpAgent.destroy();
    this.webhookHttpsAgent.destroy();
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
    this.cancelWebhooks();
    this.billingKeys.clear();
    this.billingKeysByReceipt.clear();
    this.billingKeyList = [];
    this.payments.clear();
    this.paymentList = [];
    this.approvedOrderIds.clear();
    this.reservations.clear();
    this.reservationList = [];
    this.activeReservations.clear();
    this.activeReservationOrderIds.clear();
    this.failedCharges = [];
    this.cancels = [];
    this.webhookEntries = [];
    this.faults = {};
    this.random = prng(this.opts.seed ?? 1);
    this.failRandom = prng(failRateSeed(this.opts.seed ?? 1));
    this.clockOffsetMs = 0;
    this.webhookUrl = this.opts.webhookUrl ?? null;
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
    this.webhookUrl = url;
  }

  /** Sets the clock offset and/or moves it by `advanceMs` (PUT /__fake/clock). */
  moveClock(change: { offsetMs?: number; advanceMs?: number }): { now: Date; offsetMs: number } {
    if (change.offsetMs !== undefined) this.clockOffsetMs = change.offsetMs;
    if (change.advanceMs !== undefined) this.clockOffsetMs += change.advanceMs;
    return { now: this.now(), offsetMs: this.clockOffsetMs };
  }

  /** The receipt page of an approved payment (its receipt_url). */
  receiptPage(receiptId: string): Json {
    return this.receiptLookup(receiptId, false);
  }

  /** Moves the fake's clock forward (or back, with a negative value) relative to its time source. */
  advanceClock(ms: number): Date {
    this.clockOffsetMs += ms;
    return this.now();
  }

  /** `decline`: a test-card scenario name, `'approve'` (always approve), or null (back to the card's own behaviour). */
  setKeyBehavior(receiptId: string, decline: string | null): void {
    const bk = this.billingKeysByReceipt.get(receiptId);
    if (!bk) throw new Error(`no billing key issued with receipt ${receiptId}`);
    if (decline !== null && decline !== 'approve' && !isDeclineScenario(decline)) {
      throw new Error(`unknown scenario ${decline}; one of ${TEST_CARDS.map((c) => c.scenario).join(', ')}, approve`);
    }
    bk.behavior = decline;
  }

  /**
   * Seeding for benchmarks and soak tests: issues `count` working billing keys at once, as `POST request/subscribe`
   * would one by one (same records, same lookups, same charge behaviour), without an HTTP round trip per key.
   * `cardNo` picks the card (a test card makes the keys behave like it); any well-formed number approves.
   */
  issueBillingKeysBulk(count: number, opts: { cardNo?: string; pg?: string } = {}): Array<{ billing_key: string; receipt_id: string }> {
    if (!Number.isInteger(count) || count < 1 || count > 100_000) throw new Error('count must be an integer from 1 to 100000');
    const cardNo = opts.cardNo ?? '4242424242424242';
    if (!/^\d{14,16}$/.test(cardNo)) throw new Error('card_no must be 14 to 16 digits');
    const testCard = TEST_CARD_BY_NUMBER.get(cardNo);
    if (testCard?.failsAt.issue) throw new Error(`card ${cardNo} is refused at key issue`);
    const company = cardCompanyFor(cardNo);
    const now = this.now();
    // Valid through the end of the month three years ahead (KST), like a freshly issued card.
    const expireAt = new Date(Date.UTC(now.getUTCFullYear() + 3, now.getUTCMonth() + 1, 1) - KST_OFFSET_MS - 1000);
    const keyBytes = randomBytes(33 * count);
    const out: Array<{ billing_key: string; receipt_id: string }> = new Array(count);
    for (let i = 0; i < count; i++) {
      const rec: BillingKeyRec = {
        billingKey: keyBytes.subarray(i * 33, (i + 1) * 33).toString('base64url'),
        receiptId: hexId(),
        subscriptionId: `bulk_${i}`,
        orderName: 'Bulk billing key',
        pg: opts.pg ?? 'nicepay',
        cardNoMasked: maskCardNo(cardNo),
        cardCompany: company.name,
        cardCompanyCode: company.code,
        cardScenario: testCard?.scenario ?? null,
        behavior: null,
        chargeAttempts: 0,
        activeReservations: 0,
        requestedAt: now,
        publishedAt: now,
        expireAt,
        destroyedAt: null,
        metadata: {},
        user: {},
      };
      this.billingKeys.set(rec.billingKey, rec);
      this.billingKeysByReceipt.set(rec.receiptId, rec);
      this.billingKeyList.push(rec);
      out[i] = { billing_key: rec.billingKey, receipt_id: rec.receiptId };
    }
    return out;
  }

  ledger(): FakeLedger {
    return {
      charges: this.paymentList
        .filter((p) => p.failure === null)
        .map((p) => ({
          receipt_id: p.receiptId,
          order_id: p.orderId,
          billing_key_suffix: p.bkSuffix,
          price: p.price,
          tax_free: p.taxFree,
          cancelled_price: p.cancelledPrice,
          status: p.status,
          purchased_at: iso(p.purchasedAt) as string,
          source: p.source,
        })),
      failed_charges: this.failedCharges.map((f) => ({ ...f })),
      cancels: this.cancels.map((c) => ({ ...c })),
      reservations: this.reservationList.map((r) => ({
        reserve_id: r.reserveId,
        order_id: r.orderId,
        status: r.status,
        price: r.price,
        reserve_execute_at: r.executeAt.toISOString(),
        ...(r.receiptId ? { receipt_id: r.receiptId } : {}),
        ...(r.revokedAt ? { revoked_at: r.revokedAt.toISOString() } : {}),
        billing_key_suffix: suffix(r.bk.billingKey),
      })),
      billing_keys: this.billingKeyList.map((b) => ({
        receipt_id: b.receiptId,
        billing_key_suffix: suffix(b.billingKey),
        card_no_masked: b.cardNoMasked,
        card_company: b.cardCompany,
        status: b.destroyedAt ? ('destroyed' as const) : ('active' as const),
        behavior: b.behavior,
        published_at: b.publishedAt.toISOString(),
        ...(b.destroyedAt ? { destroyed_at: b.destroyedAt.toISOString() } : {}),
      })),
      webhooks: this.webhookEntries.map((w) => ({ ...w, history: w.history.map((h) => ({ ...h })) })),
    };
  }

  /** Executes every active reservation due at `now` (default: the fake's clock), in due-time order. */
  async executeDueReservations(now?: Date): Promise<ReservationExecution[]> {
    const at = now ?? this.now();
    const due = [...this.activeReservations.values()]
      .filter((r) => r.executeAt.getTime() <= at.getTime())
      .sort((a, b) => a.executeAt.getTime() - b.executeAt.getTime() || a.requestedAt.getTime() - b.requestedAt.getTime());
    const executions: ReservationExecution[] = [];
    for (const r of due) executions.push(this.executeReservation(r));
    return executions;
  }

  /** Request counters: /v2 requests received, access tokens issued (new tokens only). Not cleared by reset(). */
  stats(): { requests: number; tokens_issued: number; pending_webhooks: number } {
    return { ...this.counters, pending_webhooks: this.pendingWebhooks.size };
  }

  /** Resolves when no webhook delivery is pending (delivered or given up). */
  webhooksIdle(): Promise<void> {
    if (this.pendingWebhooks.size === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  // ---------------------------------------------------------------------------------------------------- HTTP plumbing

  /** The fake's time: its time source moved by the clock offset. */
  now(): Date {
    const base = this.opts.now ? this.opts.now() : new Date();
    return this.clockOffsetMs === 0 ? base : new Date(base.getTime() + this.clockOffsetMs);
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
      if (match.route.key !== 'request/token') this.authenticate(req.headers.authorization);
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

  private authenticate(header: string | undefined): void {
    if (header?.startsWith('Basic ')) {
      const decoded = Buffer.from(header.slice(6), 'base64').toString('utf8');
      const i = decoded.indexOf(':');
      const ck = i === -1 ? decoded : decoded.slice(0, i);
      const sk = i === -1 ? '' : decoded.slice(i + 1);
      if (ck !== this.credentials.clientKey) throw new FakeHttpError(401, 'APP_KEY_NOT_FOUND', '존재하지 않는 client_key 입니다');
      if (sk !== this.credentials.secretKey) throw new FakeHttpError(401, 'APP_SK_NOT_MATCHED', 'secret_key 값이 일치하지 않습니다');
      return;
    }
    if (header?.startsWith('Bearer ')) {
      const token = header.slice(7);
      const issuedAt = this.tokens.get(token);
      if (issuedAt !== undefined && this.now().getTime() - issuedAt < TOKEN_VALID_FOR_MS) return;
    }
    throw new FakeHttpError(401, 'TOKEN_KEY_INVALID', 'ACCESS TOKEN 값을 확인해주세요');
  }

  // ---------------------------------------------------------------------------------------------------- /v2 routes

  private handleV2(method: string, key: string, id: string | null, body: Json, query: URLSearchParams): unknown {
    switch (`${method} ${key}`) {
      case 'POST request/token':
        return this.issueToken(body);
      case 'POST request/subscribe':
        return this.issueBillingKey(body);
      case 'GET subscribe/billing_key':
        return this.billingKeyJson(this.activeKeyByReceipt(id as string));
      case 'DELETE subscribe/billing_key':
        return this.destroyBillingKey(id as string);
      case 'GET billing_key':
        return this.billingKeyJson(this.activeKey(id as string));
      case 'POST subscribe/payment':
        return this.charge(body);
      case 'POST subscribe/payment/reserve':
        return this.reserve(body);
      case 'GET subscribe/payment/reserve':
        return this.reservationJson(this.reservationById(id as string));
      case 'DELETE subscribe/payment/reserve':
        return this.revokeReservation(id as string);
      case 'GET receipt':
        return this.receiptLookup(id as string, query.get('lookup_user_data') === 'true');
      case 'POST cancel':
        return this.cancel(body);
      case 'POST confirm':
        return this.confirm(body);
      default:
        throw new FakeHttpError(404, 'ROUTE_NOT_FOUND', 'no such route');
    }
  }

  private issueToken(body: Json): Json {
    if (body.application_id !== this.credentials.applicationId) {
      throw new FakeHttpError(401, 'APP_KEY_NOT_FOUND', '존재하지 않는 application_id 입니다');
    }
    if (body.private_key !== this.credentials.privateKey) {
      throw new FakeHttpError(401, 'APP_SK_NOT_MATCHED', 'private_key 값이 일치하지 않습니다');
    }
    const now = this.now().getTime();
    if (!this.currentToken || now - this.currentToken.issuedAt >= TOKEN_SAME_FOR_MS || now < this.currentToken.issuedAt) {
      for (const [t, at] of this.tokens) if (now - at >= TOKEN_VALID_FOR_MS) this.tokens.delete(t);
      this.currentToken = { token: randomBytes(32).toString('hex'), issuedAt: now };
      this.tokens.set(this.currentToken.token, now);
      this.counters.tokens_issued += 1;
    }
    return { access_token: this.currentToken.token, expire_in: TOKEN_EXPIRE_IN_S };
  }

  private issueBillingKey(body: Json): Json {
    const pg = reqString(body, 'pg');
    const orderName = reqString(body, 'order_name');
    const subscriptionId = reqString(body, 'subscription_id');
    if (body.price !== undefined && body.price !== null && body.price !== 0) {
      throw invalid('fake: 빌링키 발급과 동시 결제(price > 0)는 지원하지 않습니다');
    }
    const publishFailed = (pgCode: string, message: string) => new FakeHttpError(400, 'SUBSCRIBE_PUBLISH_FAILED', message, pgCode);
    const cardNo = typeof body.card_no === 'string' ? body.card_no : '';
    if (!/^\d{14,16}$/.test(cardNo)) throw publishFailed('F014', '유효하지 않은 카드번호입니다');
    if (typeof body.card_pw !== 'string' || !/^\d{2}$/.test(body.card_pw)) {
      throw publishFailed('F055', '카드 비밀번호 앞 2자리를 확인해주세요');
    }
    const year = body.card_expire_year;
    const month = body.card_expire_month;
    if (typeof year !== 'string' || !/^\d{2}$/.test(year)) throw publishFailed('F057', '카드 유효기간(년)을 확인해주세요');
    if (typeof month !== 'string' || !/^(0[1-9]|1[0-2])$/.test(month)) {
      throw new FakeHttpError(400, 'RC_INVALID_EXP_MONTH', '카드 유효기간(월)을 확인해주세요');
    }
    const identity = body.card_identity_no;
    if (typeof identity !== 'string' || !/^(\d{6}|\d{10})$/.test(identity) || (identity.length === 6 && !validBirth(identity))) {
      throw publishFailed('F056', '생년월일(6자리) 또는 사업자번호(10자리)를 확인해주세요');
    }
    const now = this.now();
    // The card is valid through the last day of its expiry month (KST).
    const expireAt = new Date(Date.UTC(2000 + Number(year), Number(month), 1) - KST_OFFSET_MS - 1000);
    if (now.getTime() > expireAt.getTime()) throw publishFailed('F054', '유효기간이 만료된 카드입니다');
    const testCard = TEST_CARD_BY_NUMBER.get(cardNo);
    if (testCard?.failsAt.issue) {
      throw new FakeHttpError(400, testCard.issueErrorCode ?? 'SUBSCRIBE_PUBLISH_FAILED', testCard.message, testCard.pgErrorCode);
    }
    const company = cardCompanyFor(cardNo);
    const rec: BillingKeyRec = {
      billingKey: randomBytes(33).toString('base64url'),
      receiptId: hexId(),
      subscriptionId,
      orderName,
      pg,
      cardNoMasked: maskCardNo(cardNo),
      cardCompany: company.name,
      cardCompanyCode: company.code,
      cardScenario: testCard?.scenario ?? null,
      behavior: null,
      chargeAttempts: 0,
      activeReservations: 0,
      requestedAt: now,
      publishedAt: now,
      expireAt,
      destroyedAt: null,
      metadata: isObject(body.metadata) ? body.metadata : {},
      user: isObject(body.user) ? body.user : {},
    };
    this.billingKeys.set(rec.billingKey, rec);
    this.billingKeysByReceipt.set(rec.receiptId, rec);
    this.billingKeyList.push(rec);
    return this.billingKeyJson(rec);
  }

  private billingKeyJson(b: BillingKeyRec): Json {
    return {
      billing_key: b.billingKey,
      billing_data: {
        card_no: b.cardNoMasked,
        card_company: b.cardCompany,
        card_company_code: b.cardCompanyCode,
        card_type: 0,
        card_hash: null,
      },
      receipt_id: b.receiptId,
      subscription_id: b.subscriptionId,
      gateway_url: this.baseUrl,
      metadata: b.metadata,
      pg: b.pg,
      method: '카드자동',
      method_symbol: 'card_rebill',
      method_origin: '카드자동',
      method_origin_symbol: 'card_rebill',
      published_at: b.publishedAt.toISOString(),
      requested_at: b.requestedAt.toISOString(),
      receipt_data: null,
      billing_expire_at: b.expireAt.toISOString(),
      status: 11,
      status_locale: STATUS_LOCALE[11],
    };
  }

  private activeKey(billingKey: string): BillingKeyRec {
    const bk = this.billingKeys.get(billingKey);
    if (!bk) throw new FakeHttpError(404, 'RC_NOT_FOUND', '빌링키 정보를 찾을 수 없습니다');
    if (bk.destroyedAt) throw new FakeHttpError(400, 'SUBSCRIBE_BK_EXPIRED', '만료되었거나 삭제된 빌링키입니다');
    return bk;
  }

  private activeKeyByReceipt(receiptId: string): BillingKeyRec {
    const bk = this.billingKeysByReceipt.get(receiptId);
    if (!bk) {
      if (this.payments.has(receiptId)) throw new FakeHttpError(400, 'RC_NOT_SUBSCRIBE', '정기결제 빌링키 발급 건이 아닙니다');
      throw new FakeHttpError(404, 'RC_NOT_FOUND', '결제 정보를 찾을 수 없습니다');
    }
    if (bk.destroyedAt) throw new FakeHttpError(400, 'SUBSCRIBE_BK_EXPIRED', '만료되었거나 삭제된 빌링키입니다');
    return bk;
  }

  private destroyBillingKey(billingKey: string): Json {
    const bk = this.activeKey(billingKey);
    bk.destroyedAt = this.now();
    return { billing_key: bk.billingKey };
  }

  private chargeFields(body: Json): { billingKey: string; orderName: string; price: number; taxFree: number; orderId: string } {
    const billingKey = reqString(body, 'billing_key');
    const orderName = reqString(body, 'order_name');
    const orderId = reqString(body, 'order_id');
    const price = amount(body, 'price', { required: true, min: 1 }) as number;
    const taxFree = amount(body, 'tax_free', { required: false, min: 0 }) ?? 0;
    if (taxFree > price) throw invalid('tax_free 는 price 보다 클 수 없습니다');
    return { billingKey, orderName, price, taxFree, orderId };
  }

  private duplicateOrder(orderId: string, alsoReservations: boolean): void {
    if (this.approvedOrderIds.has(orderId) || (alsoReservations && this.activeReservationOrderIds.has(orderId))) {
      throw new FakeHttpError(400, 'RC_DUPLICATE_ORDER_ID', '이미 결제된 주문번호(order_id)입니다');
    }
  }

  /** The decline that applies to this charge attempt, if any. `attempt` is the key's charge attempt count, 1-based. */
  private declineFor(bk: BillingKeyRec, attempt: number, now: Date): TestCard | null {
    if (bk.behavior === 'approve') return null;
    const scenario = bk.behavior ?? bk.cardScenario;
    if (scenario) {
      const card = TEST_CARD_BY_SCENARIO.get(scenario) as TestCard;
      if (scenario === 'insufficient_funds_from_second_charge') return attempt >= 2 ? card : null;
      return card;
    }
    if (now.getTime() > bk.expireAt.getTime()) return TEST_CARD_BY_SCENARIO.get('expired_card') as TestCard;
    return null;
  }

  private newPayment(
    bk: BillingKeyRec,
    f: { orderId: string; orderName: string; price: number; taxFree: number },
    extra: {
      metadata: unknown;
      user: unknown;
      feedbackUrl: string | null;
      source: 'charge' | 'reservation';
      now: Date;
    },
  ): PaymentRec {
    return {
      receiptId: hexId(),
      orderId: f.orderId,
      orderName: f.orderName,
      price: f.price,
      taxFree: f.taxFree,
      cancelledPrice: 0,
      cancelledTaxFree: 0,
      status: 1,
      pg: bk.pg,
      requestedAt: extra.now,
      purchasedAt: extra.now,
      cancelledAt: null,
      metadata: extra.metadata ?? {},
      user: extra.user ?? {},
      feedbackUrl: extra.feedbackUrl,
      bkSuffix: suffix(bk.billingKey),
      cardNoMasked: bk.cardNoMasked,
      cardCompany: bk.cardCompany,
      cardCompanyCode: bk.cardCompanyCode,
      tid: `fake${pooledRandom(10).toString('hex')}`,
      approveNo: String(pooledRandom(4).readUInt32BE(0) % 100_000_000).padStart(8, '0'),
      source: extra.source,
      failure: null,
      cancelIds: new Set(),
    };
  }

  private charge(body: Json): Json {
    const f = this.chargeFields(body);
    const feedbackUrl = optString(body, 'feedback_url');
    this.duplicateOrder(f.orderId, false);
    const bk = this.activeKey(f.billingKey);
    const now = this.now();
    bk.chargeAttempts += 1;
    const decline = this.declineFor(bk, bk.chargeAttempts, now);
    if (decline) {
      this.failedCharges.push({
        receipt_id: null,
        order_id: f.orderId,
        billing_key_suffix: suffix(bk.billingKey),
        price: f.price,
        error_code: decline.chargeErrorCode,
        pg_error_code: decline.pgErrorCode,
        message: decline.message,
        at: now.toISOString(),
        source: 'charge',
      });
      throw new FakeHttpError(400, decline.chargeErrorCode, decline.message, decline.pgErrorCode);
    }
    const p = this.newPayment(bk, f, { metadata: body.metadata, user: body.user, feedbackUrl, source: 'charge', now });
    this.recordPayment(p);
    this.queueWebhook(p, 'PAYMENT_COMPLETED');
    return this.receiptJson(p, false);
  }

  private recordPayment(p: PaymentRec): void {
    this.payments.set(p.receiptId, p);
    this.paymentList.push(p);
    if (p.failure === null) this.approvedOrderIds.set(p.orderId, p.receiptId);
  }

  private receiptJson(p: PaymentRec, withUser: boolean): Json {
    const json: Json = {
      receipt_id: p.receiptId,
      order_id: p.orderId,
      price: p.price,
      tax_free: p.taxFree,
      cancelled_price: p.cancelledPrice,
      cancelled_tax_free: p.cancelledTaxFree,
      order_name: p.orderName,
      company_name: 'Fake Bootpay 상점',
      gateway_url: this.baseUrl,
      metadata: p.metadata,
      sandbox: true,
      pg: p.pg,
      method: '카드자동',
      method_symbol: 'card_rebill',
      method_origin: '카드자동',
      method_origin_symbol: 'card_rebill',
      currency: 'KRW',
      purchased_at: iso(p.purchasedAt),
      requested_at: p.requestedAt.toISOString(),
      cancelled_at: iso(p.cancelledAt),
      status: p.status,
      status_locale: STATUS_LOCALE[p.status] ?? '',
    };
    if (p.failure) {
      json.error_message = p.failure.message;
      json.pg_error_code = p.failure.pgErrorCode;
      json.error_code_detail = p.failure.errorCode;
    } else {
      json.receipt_url = `${this.baseUrl}/__fake/receipts/${p.receiptId}`;
      json.card_data = {
        tid: p.tid,
        card_approve_no: p.approveNo,
        card_no: p.cardNoMasked,
        card_quota: '00',
        card_company: p.cardCompany,
        card_company_code: p.cardCompanyCode,
        card_interest: '0',
        card_type: '신용',
        card_owner_type: '개인',
      };
    }
    if (withUser) json.user = p.user;
    return json;
  }

  private billingReceiptJson(b: BillingKeyRec): Json {
    const status = b.destroyedAt ? -11 : 11;
    return {
      receipt_id: b.receiptId,
      order_id: b.subscriptionId,
      price: 0,
      tax_free: 0,
      cancelled_price: 0,
      cancelled_tax_free: 0,
      order_name: b.orderName,
      company_name: 'Fake Bootpay 상점',
      gateway_url: this.baseUrl,
      metadata: b.metadata,
      sandbox: true,
      pg: b.pg,
      method: '카드자동',
      method_symbol: 'card_rebill',
      method_origin: '카드자동',
      method_origin_symbol: 'card_rebill',
      currency: 'KRW',
      requested_at: b.requestedAt.toISOString(),
      status,
      status_locale: STATUS_LOCALE[status],
    };
  }

  private receiptLookup(receiptId: string, withUser: boolean): Json {
    const p = this.payments.get(receiptId);
    if (p) return this.receiptJson(p, withUser);
    const b = this.billingKeysByReceipt.get(receiptId);
    if (b) return this.billingReceiptJson(b);
    throw new FakeHttpError(404, 'RC_NOT_FOUND', '결제 정보를 찾을 수 없습니다');
  }

  private reserve(body: Json): Json {
    const f = this.chargeFields(body);
    const executeAt = parseIso(body.reserve_execute_at);
    if (!executeAt) throw invalid('reserve_execute_at 은 ISO-8601 형식이어야 합니다');
    const feedbackUrl = optString(body, 'feedback_url');
    const now = this.now();
    if (executeAt.getTime() <= now.getTime()) throw invalid('reserve_execute_at 은 현재 시각 이후여야 합니다');
    this.duplicateOrder(f.orderId, true);
    const bk = this.activeKey(f.billingKey);
    if (bk.activeReservations >= MAX_ACTIVE_RESERVATIONS_PER_KEY) {
      throw new FakeHttpError(400, 'RC_RESERVE_LIMIT_EXCEEDED', '빌링키당 최대 10건까지 예약할 수 있습니다');
    }
    const r: ReservationRec = {
      reserveId: hexId(),
      bk,
      orderId: f.orderId,
      orderName: f.orderName,
      price: f.price,
      taxFree: f.taxFree,
      metadata: body.metadata ?? {},
      user: body.user ?? {},
      feedbackUrl,
      contentType: typeof body.content_type === 'string' ? body.content_type : 'application/json',
      requestedAt: now,
      executeAt,
      startedAt: null,
      finishedAt: null,
      revokedAt: null,
      status: RESERVATION_STATUS.RESERVED,
      receiptId: null,
    };
    bk.activeReservations += 1;
    this.reservations.set(r.reserveId, r);
    this.reservationList.push(r);
    this.activeReservations.set(r.reserveId, r);
    this.activeReservationOrderIds.set(r.orderId, r.reserveId);
    return { reserve_id: r.reserveId, reserve_execute_at: executeAt.toISOString() };
  }

  private reservationById(reserveId: string): ReservationRec {
    const r = this.reservations.get(reserveId);
    if (!r) throw new FakeHttpError(404, 'RC_NOT_FOUND', '예약 정보를 찾을 수 없습니다');
    return r;
  }

  private reservationJson(r: ReservationRec): Json {
    return {
      reserve_id: r.reserveId,
      ...(r.receiptId ? { receipt_id: r.receiptId } : {}),
      order_id: r.orderId,
      price: r.price,
      tax_free: r.taxFree,
      order_name: r.orderName,
      user: r.user,
      feedback_url: r.feedbackUrl,
      metadata: r.metadata,
      content_type: r.contentType,
      version: 1,
      extra: { subscribe_test_payment: false },
      reserve_requested_at: r.requestedAt.toISOString(),
      reserve_execute_at: r.executeAt.toISOString(),
      reserve_started_at: iso(r.startedAt),
      reserve_finished_at: iso(r.finishedAt),
      reserve_revoked_at: iso(r.revokedAt),
      status: r.status,
    };
  }

  private deactivate(r: ReservationRec): void {
    if (this.activeReservations.delete(r.reserveId)) {
      r.bk.activeReservations -= 1;
      if (this.activeReservationOrderIds.get(r.orderId) === r.reserveId) this.activeReservationOrderIds.delete(r.orderId);
    }
  }

  private revokeReservation(reserveId: string): Json {
    const r = this.reservationById(reserveId);
    if (r.bk.destroyedAt) throw new FakeHttpError(400, 'SUBSCRIBE_BK_EXPIRED', '만료되었거나 삭제된 빌링키입니다');
    if (r.status !== RESERVATION_STATUS.RESERVED) {
      throw new FakeHttpError(400, 'RC_RESERVE_ALREADY_DONE', '이미 실행되었거나 취소된 예약입니다');
    }
    r.status = RESERVATION_STATUS.REVOKED;
    r.revokedAt = this.now();
    this.deactivate(r);
    return { reserve_id: r.reserveId, success: true };
  }

  private executeReservation(r: ReservationRec): ReservationExecution {
    const now = this.now();
    r.status = RESERVATION_STATUS.EXECUTING;
    r.startedAt = now;
    this.deactivate(r);
    const bk = r.bk;
    let failure: { errorCode: string; pgErrorCode: string | null; message: string } | null = null;
    if (this.approvedOrderIds.has(r.orderId)) {
      failure = { errorCode: 'RC_DUPLICATE_ORDER_ID', pgErrorCode: null, message: '이미 결제된 주문번호(order_id)입니다' };
    } else if (bk.destroyedAt) {
      failure = { errorCode: 'SUBSCRIBE_BK_EXPIRED', pgErrorCode: null, message: '만료되었거나 삭제된 빌링키입니다' };
    } else {
      bk.chargeAttempts += 1;
      const decline = this.declineFor(bk, bk.chargeAttempts, now);
      if (decline) failure = { errorCode: decline.chargeErrorCode, pgErrorCode: decline.pgErrorCode, message: decline.message };
    }
    const p = this.newPayment(bk, r, { metadata: r.metadata, user: r.user, feedbackUrl: r.feedbackUrl, source: 'reservation', now });
    if (failure) {
      p.status = -2;
      p.purchasedAt = null;
      p.approveNo = null;
      p.failure = failure;
      this.failedCharges.push({
        receipt_id: p.receiptId,
        order_id: r.orderId,
        billing_key_suffix: suffix(bk.billingKey),
        price: r.price,
        error_code: failure.errorCode,
        pg_error_code: failure.pgErrorCode,
        message: failure.message,
        at: now.toISOString(),
        source: 'reservation',
      });
    }
    this.recordPayment(p);
    r.receiptId = p.receiptId;
    r.finishedAt = now;
    r.status = failure ? RESERVATION_STATUS.EXECUTION_FAILED : RESERVATION_STATUS.EXECUTED;
    this.queueWebhook(p, failure ? 'PAYMENT_REQUEST_FAILED' : 'PAYMENT_COMPLETED');
    return {
      reserve_id: r.reserveId,
      order_id: r.orderId,
      receipt_id: p.receiptId,
      result: failure ? 'failed' : 'success',
      reservation_status: r.status,
      ...(failure ? { error_code: failure.errorCode, pg_error_code: failure.pgErrorCode, message: failure.message } : {}),
      executed_at: now.toISOString(),
    };
  }

  private cancel(body: Json): Json {
    const receiptId = reqString(body, 'receipt_id');
    const cancelPrice = amount(body, 'cancel_price', { required: false, min: 1 });
    const cancelTaxFreeIn = amount(body, 'cancel_tax_free', { required: false, min: 0 });
    const cancelId = optString(body, 'cancel_id');
    const p = this.payments.get(receiptId);
    if (!p) {
      if (this.billingKeysByReceipt.has(receiptId)) throw invalid('빌링키 발급 건은 취소할 수 없습니다. 빌링키 삭제를 이용하세요');
      throw new FakeHttpError(404, 'RC_NOT_FOUND', '결제 정보를 찾을 수 없습니다');
    }
    if (p.failure) throw invalid('승인되지 않은 결제는 취소할 수 없습니다');
    if (cancelId !== null && p.cancelIds.has(cancelId)) {
      throw new FakeHttpError(400, 'RC_CANCEL_ID_DUPLICATED', '이미 처리된 취소 요청(cancel_id)입니다');
    }
    const remaining = p.price - p.cancelledPrice;
    const remainingTaxFree = p.taxFree - p.cancelledTaxFree;
    if (remaining <= 0) throw new FakeHttpError(400, 'RC_ALREADY_CANCELLED', '이미 취소된 결제입니다');
    const price = cancelPrice ?? remaining;
    if (price > remaining) {
      throw new FakeHttpError(400, 'RC_CANCEL_PRICE_EXCEEDED', `취소 가능 금액(${remaining}원)을 초과했습니다`);
    }
    const full = price === remaining;
    const taxFree = cancelTaxFreeIn ?? (full ? remainingTaxFree : 0);
    if (taxFree > price) throw invalid('cancel_tax_free 는 cancel_price 보다 클 수 없습니다');
    if (taxFree > remainingTaxFree) {
      throw new FakeHttpError(400, 'RC_CANCEL_PRICE_EXCEEDED', `취소 가능 면세 금액(${remainingTaxFree}원)을 초과했습니다`);
    }
    const now = this.now();
    p.cancelledPrice += price;
    p.cancelledTaxFree += taxFree;
    p.cancelledAt = now;
    if (cancelId !== null) p.cancelIds.add(cancelId);
    if (full) p.status = 20;
    this.cancels.push({ receipt_id: p.receiptId, cancel_id: cancelId, cancel_price: price, cancel_tax_free: taxFree, cancelled_at: now.toISOString() });
    this.queueWebhook(p, full ? 'PAYMENT_CANCELLED' : 'PAYMENT_PARTIAL_CANCELLED');
    return this.receiptJson(p, false);
  }

  private confirm(body: Json): Json {
    const receiptId = reqString(body, 'receipt_id');
    if (!this.payments.has(receiptId) && !this.billingKeysByReceipt.has(receiptId)) {
      throw new FakeHttpError(404, 'RC_NOT_FOUND', '결제 정보를 찾을 수 없습니다');
    }
    throw new FakeHttpError(400, 'RC_NOT_CONFIRM_READY', '승인 대기 상태의 결제가 아닙니다');
  }

  // ---------------------------------------------------------------------------------------------------- webhooks

  private queueWebhook(p: PaymentRec, webhookType: string): void {
    const url = p.feedbackUrl ?? this.webhookUrl;
    if (!url) return;
    const entry: LedgerWebhook = { url, webhook_type: webhookType, receipt_id: p.receiptId, attempts: 0, delivered: false, done: false, history: [] };
    this.webhookEntries.push(entry);
    const job: WebhookJob = {
      entry,
      url,
      payload: JSON.stringify({ ...this.receiptJson(p, false), webhook_type: webhookType }),
      timer: null,
      generation: this.generation,
    };
    this.pendingWebhooks.add(job);
    this.deliver(job);
  }

  private deliver(job: WebhookJob): void {
    job.timer = null;
    let target: URL;
    try {
      target = new URL(job.url);
    } catch {
      this.webhookAttemptDone(job, null, 'invalid webhook url');
      return;
    }
    const isHttps = target.protocol === 'https:';
    let settled = false;
    const finish = (status: number | null, error?: string, responseBody?: string) => {
      if (settled) return;
      settled = true;
      let ok = false;
      if (status === 200 && responseBody !== undefined) {
        try {
          const parsed: unknown = JSON.parse(responseBody);
          ok = isObject(parsed) && parsed.success === true;
        } catch {
          ok = false;
        }
      }
      this.webhookAttemptDone(job, status, ok ? undefined : (error ?? (status === 200 ? 'body is not {"success":true}' : `HTTP ${status}`)), ok);
    };
    const req = (isHttps ? https : http).request(
      target,
      {
        method: 'POST',
        agent: isHttps ? this.webhookHttpsAgent : this.webhookHttpAgent,
        headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(job.payload) },
        timeout: this.opts.webhookTimeoutMs ?? 5000,
      },
      (res) => {
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (c: Buffer) => {
          size += c.length;
          if (size <= 65536) chunks.push(c);
        });
        res.on('end', () => finish(res.statusCode ?? null, undefined, Buffer.concat(chunks).toString('utf8')));
        res.on('error', (e) => finish(res.statusCode ?? null, e.message));
      },
    );
    req.on('timeout', () => req.destroy(new Error('webhook timed out')));
    req.on('error', (e) => finish(null, e.message));
    req.end(job.payload);
  }

  private webhookAttemptDone(job: WebhookJob, status: number | null, error: string | undefined, ok = false): void {
    if (job.generation !== this.generation || !this.pendingWebhooks.has(job)) return;
    const entry = job.entry;
    entry.attempts += 1;
    entry.history.push({ at: this.now().toISOString(), status_code: status, ok, ...(error && !ok ? { error } : {}) });
    const maxAttempts = 1 + (this.opts.webhookMaxRetries ?? 10);
    if (ok || entry.attempts >= maxAttempts || this.stopped) {
      entry.delivered = ok;
      entry.done = true;
      this.pendingWebhooks.delete(job);
      this.notifyIdle();
      return;
    }
    const base = this.opts.webhookBaseDelayMs ?? 20;
    const delay = Math.min(base * 2 ** (entry.attempts - 1), this.opts.webhookMaxDelayMs ?? 2000);
    job.timer = setTimeout(() => this.deliver(job), delay);
  }

  private cancelWebhooks(): void {
    this.generation += 1;
    for (const job of this.pendingWebhooks) {
      if (job.timer) clearTimeout(job.timer);
      job.entry.done = true;
    }
    this.pendingWebhooks.clear();
    this.notifyIdle();
  }

  private notifyIdle(): void {
    if (this.pendingWebhooks.size !== 0) return;
    const waiters = this.idleWaiters;
    this.idleWaiters = [];
    for (const w of waiters) w();
  }
}
