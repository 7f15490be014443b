/**
 * The Bootpay gateway, framework-free. `bootpay.gateway.ts` wraps it in a Nest injectable; this file is the only one
 * in the project that imports `@bootpay/backend-js`.
 *
 * - One isolated SDK instance per gateway (the package's default export is a process-wide singleton).
 * - Per-call time-outs through an AsyncLocalStorage context read by an axios request interceptor (the SDK's axios
 *   instance is shared by concurrent calls, so its defaults are never mutated per call). Each call also gets a hard
 *   deadline (AbortSignal), since axios' `timeout` is a socket idle time-out.
 * - Legacy application_id/private_key: one token, renewed (single-flight) once 25 minutes have passed on the injected
 *   Clock; on TOKEN_KEY_INVALID renewed once, and only idempotent calls (lookups) are retried.
 * - Every failure becomes a typed GatewayError (gateway.errors.ts). Nothing logged or thrown carries a billing key,
 *   card data, a token or a request body.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import * as http from 'node:http';
import * as https from 'node:https';
import { performance } from 'node:perf_hooks';
import { Bootpay } from '@bootpay/backend-js';
import type { Clock } from '../common/clock';
import {
  ErrorContext,
  GatewayConfigError,
  GatewayDeclinedError,
  GatewayDuplicateError,
  GatewayError,
  GatewayInvalidBillingKeyError,
  GatewayNotFoundError,
  GatewayRequestError,
  GatewayUnavailableError,
  GatewayUnknownOutcomeError,
  isDeclineHard,
  toGatewayError,
} from './gateway.errors';
import type {
  BillingKeyInfo,
  CancelPaymentParams,
  ChargeParams,
  GatewayConfig,
  GatewayMetadata,
  GatewayOperation,
  GatewayPing,
  GatewayReceipt,
  GatewayReservation,
  GatewayUser,
  IssueBillingKeyParams,
  ReserveParams,
  ReserveResult,
} from './gateway.types';

type BootpaySdk = typeof Bootpay;
type Json = Record<string, unknown>;

/** Minimal logger (Nest's Logger fits). Only ids and codes are ever passed to it. */
export interface GatewayLogger {
  log(message: string): void;
  warn(message: string): void;
}

const SILENT_LOGGER: GatewayLogger = { log: () => undefined, warn: () => undefined };
const TOKEN_REFRESH_AFTER_MS = 25 * 60_000;
const TOKEN_LIFETIME_MS = 30 * 60_000;
/** A receipt id that cannot exist: the health ping looks it up and expects RC_NOT_FOUND. */
const PING_RECEIPT_ID = '000000000000000000000000';

interface CallContext {
  timeoutMs: number;
  signal: AbortSignal;
  deadlineExceeded: boolean;
}

interface CallSpec {
  operation: GatewayOperation;
  stateChanging: boolean;
  /** May be re-sent once after a token renewal (lookups only). */
  idempotent: boolean;
  billingKeyCall?: boolean;
  secrets: readonly string[];
}

/** Thrown by the response parsers when a 2xx body lacks what it must have. */
class MalformedResponse extends Error {}

// --------------------------------------------------------------------------------------------------- parse helpers

function isRecord(v: unknown): v is Json {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function str(o: Json, key: string): string | null {
  const v = o[key];
  if (typeof v === 'string') return v;
  if (typeof v === 'number' && Number.isFinite(v)) return String(v);
  return null;
}

function reqStr(o: Json, key: string): string {
  const v = str(o, key);
  if (v === null || v === '') throw new MalformedResponse(`response lacks ${key}`);
  return v;
}

function num(o: Json, key: string): number | null {
  const v = o[key];
  if (typeof v === 'number' && Number.isFinite(v)) return v;
  if (typeof v === 'string' && v.trim() !== '' && Number.isFinite(Number(v))) return Number(v);
  return null;
}

function date(o: Json, key: string): Date | null {
  const v = o[key];
  if (typeof v !== 'string' && !(v instanceof Date)) return null;
  const d = new Date(v);
  return Number.isNaN(d.getTime()) ? null : d;
}

function obj(o: Json, key: string): Json | null {
  const v = o[key];
  return isRecord(v) ? v : null;
}

function metadataOf(o: Json): GatewayMetadata | null {
  const v = o.metadata;
  if (isRecord(v)) return v;
  if (typeof v === 'string' && v.trim().startsWith('{')) {
    try {
      const parsed: unknown = JSON.parse(v);
      return isRecord(parsed) ? parsed : null;
    } catch {
      return null;
    }
  }
  return null;
}

export function parseBillingKey(body: Json): BillingKeyInfo {
  const data = obj(body, 'billing_data') ?? {};
  return {
    billingKey: reqStr(body, 'billing_key'),
    receiptId: reqStr(body, 'receipt_id'),
    pg: str(body, 'pg'),
    method: str(body, 'method'),
    cardCompany: str(data, 'card_company'),
    cardCompanyCode: str(data, 'card_company_code'),
    cardNoMasked: str(data, 'card_no'),
    cardType: num(data, 'card_type'),
    publishedAt: date(body, 'published_at'),
    expiresAt: date(body, 'billing_expire_at'),
  };
}

export function parseReceipt(body: Json): GatewayReceipt {
  const card = obj(body, 'card_data') ?? {};
  const price = num(body, 'price');
  const status = num(body, 'status');
  if (price === null) throw new MalformedResponse('response lacks price');
  if (status === null) throw new MalformedResponse('response lacks status');
  return {
    receiptId: reqStr(body, 'receipt_id'),
    orderId: str(body, 'order_id') ?? '',
    orderName: str(body, 'order_name'),
    price,
    taxFree: num(body, 'tax_free') ?? 0,
    cancelledPrice: num(body, 'cancelled_price') ?? 0,
    cancelledTaxFree: num(body, 'cancelled_tax_free') ?? 0,
    status,
    statusLocale: str(body, 'status_locale') ?? '',
    purchasedAt: date(body, 'purchased_at'),
    requestedAt: date(body, 'requested_at'),
    cancelledAt: date(body, 'cancelled_at'),
    cardApproveNo: str(card, 'card_approve_no'),
    cardNoMasked: str(card, 'card_no'),
    cardCompany: str(card, 'card_company'),
    receiptUrl: str(body, 'receipt_url') ?? str(card, 'receipt_url'),
    metadata: metadataOf(body),
  };
}

export function parseReservation(body: Json): GatewayReservation {
  const status = num(body, 'status');
  if (status === null) throw new MalformedResponse('response lacks status');
  const receiptId = str(body, 'receipt_id');
  return {
    reserveId: reqStr(body, 'reserve_id'),
    orderId: str(body, 'order_id') ?? '',
    receiptId: receiptId === '' ? null : receiptId,
    price: num(body, 'price') ?? 0,
    taxFree: num(body, 'tax_free') ?? 0,
    status,
    executeAt: date(body, 'reserve_execute_at'),
    revokedAt: date(body, 'reserve_revoked_at'),
    finishedAt: date(body, 'reserve_finished_at'),
  };
}

function isLoopback(url: string): boolean {
  try {
    const host = new URL(url).hostname.replace(/^\[|\]$/g, '');
    return host === 'localhost' || host === '::1' || host.startsWith('127.');
  } catch {
    return false;
  }
}

function checkAmounts(op: GatewayOperation, price: number, taxFree: number): void {
  if (!Number.isSafeInteger(price) || price <= 0) throw invalidArgument(op, 'price must be a positive integer (KRW)');
  if (!Number.isSafeInteger(taxFree) || taxFree < 0 || taxFree > price) {
    throw invalidArgument(op, 'taxFree must be an integer between 0 and price');
  }
}

function invalidArgument(op: GatewayOperation, message: string): GatewayRequestError {
  return new GatewayRequestError({ code: 'INVALID_ARGUMENT', operation: op, retryable: false, message: `${op}: ${message} (nothing sent)` });
}

function nonEmpty(op: GatewayOperation, name: string, value: unknown): void {
  if (typeof value !== 'string' || value.trim() === '') throw invalidArgument(op, `${name} is required`);
}

function userOf(user: GatewayUser | undefined): GatewayUser {
  if (!user) return {};
  const out: GatewayUser = {};
  if (user.id !== undefined) out.id = user.id;
  if (user.username !== undefined) out.username = user.username;
  if (user.phone !== undefined) out.phone = user.phone;
  if (user.email !== undefined) out.email = user.email;
  return out;
}

// --------------------------------------------------------------------------------------------------- the gateway

/** How a call to Bootpay ended, as the latency histograms label it. */
export type GatewayCallOutcome = 'ok' | 'declined' | 'unknown' | 'unavailable' | 'duplicate' | 'not_found' | 'refused' | 'config_error' | 'error';
export type GatewayCallObserver = (operation: GatewayOperation, outcome: GatewayCallOutcome, seconds: number) => void;

export function callOutcomeOf(e: unknown): GatewayCallOutcome {
  if (e instanceof GatewayDeclinedError || e instanceof GatewayInvalidBillingKeyError) return 'declined';
  if (e instanceof GatewayUnknownOutcomeError) return 'unknown';
  if (e instanceof GatewayUnavailableError) return 'unavailable';
  if (e instanceof GatewayDuplicateError) return 'duplicate';
  if (e instanceof GatewayNotFoundError) return 'not_found';
  if (e instanceof GatewayConfigError) return 'config_error';
  if (e instanceof GatewayError) return 'refused';
  return 'error';
}

export class BootpayGatewayCore {
  private observers: GatewayCallObserver[] = [];
  private readonly sdk: BootpaySdk;
  private readonly als = new AsyncLocalStorage<CallContext>();
  private readonly legacy: boolean;
  private readonly httpAgent: http.Agent;
  private readonly httpsAgent: https.Agent;
  private readonly logger: GatewayLogger;

  private token: string | null = null;
  private tokenIssuedAtMs: number | null = null;
  private tokenRefreshAfterMs = TOKEN_REFRESH_AFTER_MS;
  /** When a renewal returned the same token (server-side 25-minute rule), do not ask again before this time. */
  private tokenRecheckAtMs = 0;
  private renewal: Promise<void> | null = null;

  constructor(
    private readonly config: GatewayConfig,
    private readonly clock: Clock,
    logger?: GatewayLogger,
  ) {
    this.logger = logger ?? SILENT_LOGGER;
    if (config.mode !== 'development' && config.mode !== 'stage' && config.mode !== 'production') {
      throw new GatewayConfigError({
        code: 'INVALID_CONFIG',
        operation: 'ping',
        retryable: false,
        message: 'Bootpay mode must be development, stage or production',
      });
    }
    for (const [name, v] of [
      ['timeoutMs', config.timeoutMs],
      ['chargeTimeoutMs', config.chargeTimeoutMs],
    ] as const) {
      if (!Number.isFinite(v) || v <= 0) {
        throw new GatewayConfigError({ code: 'INVALID_CONFIG', operation: 'ping', retryable: false, message: `${name} must be a positive number` });
      }
    }

    const SdkClass = Object.getPrototypeOf(Bootpay).constructor as new () => BootpaySdk;
    this.sdk = new SdkClass();
    if (config.apiBaseUrl) this.sdk.API_ENTRYPOINTS[config.mode] = config.apiBaseUrl.replace(/\/+$/, '');

    const hasBasic = Boolean(config.clientKey && config.secretKey);
    this.legacy = !hasBasic && Boolean(config.applicationId && config.privateKey);
    if (hasBasic) {
      this.sdk.setConfiguration({ client_key: config.clientKey, secret_key: config.secretKey, mode: config.mode });
    } else if (this.legacy) {
      this.sdk.setConfiguration({ application_id: config.applicationId, private_key: config.privateKey, mode: config.mode });
    } else {
      // Calls reject with -101 → GatewayConfigError.
      this.sdk.setConfiguration({ mode: config.mode });
    }

    const maxSockets = config.maxSockets ?? 64;
    // `timeout` here only closes idle (free) sockets; request deadlines are set per call.
    this.httpAgent = new http.Agent({ keepAlive: true, maxSockets, maxFreeSockets: maxSockets, timeout: 4000 });
    this.httpsAgent = new https.Agent({ keepAlive: true, maxSockets, maxFreeSockets: maxSockets, timeout: 4000 });
    const defaults = this.sdk.$http.defaults;
    defaults.httpAgent = this.httpAgent;
    defaults.httpsAgent = this.httpsAgent;
    defaults.timeout = config.timeoutMs;
    // Bootpay's API does not redirect; never re-send a charge to another location. (Also skips follow-redirects.)
    defaults.maxRedirects = 0;
    if (isLoopback(this.sdk.API_ENTRYPOINTS[config.mode])) defaults.proxy = false;

    this.sdk.$http.interceptors.request.use((req) => {
      const ctx = this.als.getStore();
      if (ctx) {
        req.timeout = ctx.timeoutMs;
        if (!req.signal) req.signal = ctx.signal;
      }
      return req;
    });
  }

  /** Closes the keep-alive sockets. */
  close(): void {
    this.httpAgent.destroy();
    this.httpsAgent.destroy();
  }

  // ------------------------------------------------------------------------------------------------- billing keys

  async issueBillingKey(p: IssueBillingKeyParams): Promise<BillingKeyInfo> {
    const op: GatewayOperation = 'issueBillingKey';
    nonEmpty(op, 'pg', p.pg);
    nonEmpty(op, 'orderName', p.orderName);
    nonEmpty(op, 'subscriptionId', p.subscriptionId);
    return this.call(
      { operation: op, stateChanging: true, idempotent: false, secrets: [p.cardNo, p.cardPw, p.cardIdentityNo] },
      this.config.chargeTimeoutMs,
      () =>
        this.sdk.requestSubscribeBillingKey({
          pg: p.pg,
          order_name: p.orderName,
          subscription_id: p.subscriptionId,
          card_no: p.cardNo,
          card_pw: p.cardPw,
          card_expire_year: p.cardExpireYear,
          card_expire_month: p.cardExpireMonth,
          card_identity_no: p.cardIdentityNo,
          extra: { subscribe_test_payment: false },
          user: userOf(p.user),
          ...(p.metadata ? { metadata: p.metadata } : {}),
        }),
      parseBillingKey,
    );
  }

  async lookupBillingKeyByReceipt(receiptId: string): Promise<BillingKeyInfo> {
    const op: GatewayOperation = 'lookupBillingKeyByReceipt';
    nonEmpty(op, 'receiptId', receiptId);
    return this.call(
      { operation: op, stateChanging: false, idempotent: true, secrets: [] },
      this.config.timeoutMs,
      () => this.sdk.lookupSubscribeBillingKey(encodeURIComponent(receiptId)),
      parseBillingKey,
    );
  }

  async lookupBillingKey(billingKey: string): Promise<BillingKeyInfo> {
    const op: GatewayOperation = 'lookupBillingKey';
    nonEmpty(op, 'billingKey', billingKey);
    return this.call(
      { operation: op, stateChanging: false, idempotent: true, billingKeyCall: true, secrets: [billingKey] },
      this.config.timeoutMs,
      () => this.sdk.lookupBillingKey(encodeURIComponent(billingKey)),
      parseBillingKey,
    );
  }

  /** Destroying a key does NOT revoke its reservations: revoke them first. A key already gone counts as success. */
  async destroyBillingKey(billingKey: string): Promise<{ alreadyDestroyed: boolean }> {
    const op: GatewayOperation = 'destroyBillingKey';
    nonEmpty(op, 'billingKey', billingKey);
    try {
      return await this.call(
        { operation: op, stateChanging: true, idempotent: false, billingKeyCall: true, secrets: [billingKey] },
        this.config.chargeTimeoutMs,
        () => this.sdk.destroyBillingKey(encodeURIComponent(billingKey)),
        () => ({ alreadyDestroyed: false }),
      );
    } catch (e) {
      if (e instanceof GatewayInvalidBillingKeyError && e.code === 'SUBSCRIBE_BK_EXPIRED') return { alreadyDestroyed: true };
      throw e;
    }
  }

  // ------------------------------------------------------------------------------------------------- payments

  /** One attempt, never retried here. On GatewayUnknownOutcomeError re-send only with the SAME orderId. */
  async charge(p: ChargeParams): Promise<GatewayReceipt> {
    const op: GatewayOperation = 'charge';
    nonEmpty(op, 'billingKey', p.billingKey);
    nonEmpty(op, 'orderId', p.orderId);
    nonEmpty(op, 'orderName', p.orderName);
    checkAmounts(op, p.price, p.taxFree);
    const spec: CallSpec = { operation: op, stateChanging: true, idempotent: false, billingKeyCall: true, secrets: [p.billingKey] };
    return this.call(
      spec,
      this.config.chargeTimeoutMs,
      () =>
        this.sdk.requestSubscribePayment({
          billing_key: p.billingKey,
          order_id: p.orderId,
          order_name: p.orderName,
          price: p.price,
          tax_free: p.taxFree,
          ...(p.feedbackUrl ? { feedback_url: p.feedbackUrl, content_type: 'application/json' } : {}),
          ...(p.metadata ? { metadata: p.metadata } : {}),
          ...(p.user ? { user: userOf(p.user) } : {}),
        }),
      (body) => {
        const receipt = parseReceipt(body);
        if (receipt.orderId !== p.orderId || receipt.price !== p.price) {
          throw new GatewayUnknownOutcomeError({
            code: 'UNEXPECTED_RESPONSE',
            operation: op,
            reason: 'unexpected_response',
            message: `charge order_id=${p.orderId}: the answer is for another order or amount`,
          });
        }
        if (receipt.status === 1) return receipt;
        if (receipt.status === -1 || receipt.status === -2) {
          const code = str(body, 'error_code') ?? 'RC_CONFIRM_FAILED';
          const pgCode = str(body, 'pg_error_code') ?? undefined;
          const message = str(body, 'error_message') ?? str(body, 'message') ?? '';
          throw new GatewayDeclinedError({
            code,
            operation: op,
            ...(pgCode ? { pgCode } : {}),
            hard: isDeclineHard(code, pgCode, message),
            message: `charge failed: ${code}${pgCode ? ` (pg ${pgCode})` : ''}`,
          });
        }
        throw new GatewayUnknownOutcomeError({
          code: 'UNEXPECTED_STATUS',
          operation: op,
          reason: 'unexpected_response',
          message: `charge order_id=${p.orderId}: receipt status ${receipt.status}`,
        });
      },
    );
  }

  async getReceipt(receiptId: string): Promise<GatewayReceipt> {
    const op: GatewayOperation = 'getReceipt';
    nonEmpty(op, 'receiptId', receiptId);
    return this.call(
      { operation: op, stateChanging: false, idempotent: true, secrets: [] },
      this.config.timeoutMs,
      () => this.sdk.receiptPayment(encodeURIComponent(receiptId), false),
      parseReceipt,
    );
  }

  /** Full cancel when cancelPrice is omitted. A repeated cancelId is refused (GatewayDuplicateError), never applied twice. */
  async cancelPayment(p: CancelPaymentParams): Promise<GatewayReceipt> {
    const op: GatewayOperation = 'cancelPayment';
    nonEmpty(op, 'receiptId', p.receiptId);
    nonEmpty(op, 'cancelId', p.cancelId);
    if (p.cancelPrice !== undefined && (!Number.isSafeInteger(p.cancelPrice) || p.cancelPrice <= 0)) {
      throw invalidArgument(op, 'cancelPrice must be a positive integer');
    }
    if (p.cancelTaxFree !== undefined && (!Number.isSafeInteger(p.cancelTaxFree) || p.cancelTaxFree < 0)) {
      throw invalidArgument(op, 'cancelTaxFree must be a non-negative integer');
    }
    return this.call(
      { operation: op, stateChanging: true, idempotent: false, secrets: [] },
      this.config.chargeTimeoutMs,
      () =>
        this.sdk.cancelPayment({
          receipt_id: p.receiptId,
          cancel_id: p.cancelId,
          ...(p.cancelPrice !== undefined ? { cancel_price: p.cancelPrice } : {}),
          ...(p.cancelTaxFree !== undefined ? { cancel_tax_free: p.cancelTaxFree } : {}),
          ...(p.username !== undefined ? { cancel_username: p.username } : {}),
          ...(p.message !== undefined ? { cancel_message: p.message } : {}),
        }),
      (body) => {
        const receipt = parseReceipt(body);
        if (receipt.receiptId !== p.receiptId) throw new MalformedResponse('answer is for another receipt');
        return receipt;
      },
    );
  }

  // ------------------------------------------------------------------------------------------------- reservations

  async reserve(p: ReserveParams): Promise<ReserveResult> {
    const op: GatewayOperation = 'reserve';
    nonEmpty(op, 'billingKey', p.billingKey);
    nonEmpty(op, 'orderId', p.orderId);
    nonEmpty(op, 'orderName', p.orderName);
    checkAmounts(op, p.price, p.taxFree);
    if (!(p.executeAt instanceof Date) || Number.isNaN(p.executeAt.getTime())) throw invalidArgument(op, 'executeAt must be a valid Date');
    return this.call(
      { operation: op, stateChanging: true, idempotent: false, billingKeyCall: true, secrets: [p.billingKey] },
      this.config.chargeTimeoutMs,
      () =>
        this.sdk.subscribePaymentReserve({
          billing_key: p.billingKey,
          order_id: p.orderId,
          order_name: p.orderName,
          price: p.price,
          tax_free: p.taxFree,
          reserve_execute_at: p.executeAt,
          ...(p.feedbackUrl ? { feedback_url: p.feedbackUrl, content_type: 'application/json' as const } : {}),
          ...(p.metadata ? { metadata: p.metadata } : {}),
        }),
      (body) => ({ reserveId: reqStr(body, 'reserve_id'), executeAt: date(body, 'reserve_execute_at') ?? p.executeAt }),
    );
  }

  async lookupReservation(reserveId: string): Promise<GatewayReservation> {
    const op: GatewayOperation = 'lookupReservation';
    nonEmpty(op, 'reserveId', reserveId);
    return this.call(
      { operation: op, stateChanging: false, idempotent: true, secrets: [] },
      this.config.timeoutMs,
      () => this.sdk.subscribePaymentReserveLookup(encodeURIComponent(reserveId)),
      parseReservation,
    );
  }

  /**
   * Revokes a pending reservation. Already executed/revoked → GatewayReservationAlreadyDoneError; key destroyed →
   * GatewayInvalidBillingKeyError (Bootpay then refuses to revoke: the reservation will fail when it executes).
   */
  async cancelReservation(reserveId: string): Promise<void> {
    const op: GatewayOperation = 'cancelReservation';
    nonEmpty(op, 'reserveId', reserveId);
    await this.call(
      { operation: op, stateChanging: true, idempotent: false, secrets: [] },
      this.config.chargeTimeoutMs,
      () => this.sdk.cancelSubscribeReserve(encodeURIComponent(reserveId)),
      (body) => {
        if (body.success !== true) throw new MalformedResponse('revoke not confirmed');
      },
    );
  }

  // ------------------------------------------------------------------------------------------------- health

  /** Looks up a receipt that cannot exist: RC_NOT_FOUND proves reachability and valid credentials. */
  async ping(): Promise<GatewayPing> {
    const started = performance.now();
    const latency = (): number => Math.round(performance.now() - started);
    try {
      await this.call(
        { operation: 'ping', stateChanging: false, idempotent: true, secrets: [] },
        this.config.timeoutMs,
        () => this.sdk.receiptPayment(PING_RECEIPT_ID, false),
        () => undefined,
      );
      return { ok: true, latencyMs: latency() };
    } catch (e) {
      const code = e instanceof GatewayError ? e.code : 'UNKNOWN';
      if (code === 'RC_NOT_FOUND') return { ok: true, latencyMs: latency() };
      return { ok: false, latencyMs: latency(), error: code };
    }
  }

  // ------------------------------------------------------------------------------------------------- plumbing

  /**
   * Calls `fn` after every call to Bootpay with its operation, outcome and duration (token renewal included): the
   * metrics' latency histograms. The gateway knows nothing of the metrics library. Returns a function that removes it.
   */
  observeCalls(fn: GatewayCallObserver): () => void {
    this.observers.push(fn);
    return () => {
      this.observers = this.observers.filter((o) => o !== fn);
    };
  }

  private async call<T>(spec: CallSpec, timeoutMs: number, send: () => Promise<unknown>, parse: (body: Json) => T): Promise<T> {
    if (!this.observers.length) return this.callOnce(spec, timeoutMs, send, parse);
    const started = performance.now();
    let outcome: GatewayCallOutcome = 'ok';
    try {
      return await this.callOnce(spec, timeoutMs, send, parse);
    } catch (e) {
      outcome = callOutcomeOf(e);
      throw e;
    } finally {
      const seconds = (performance.now() - started) / 1000;
      for (const o of this.observers) {
        try {
          o(spec.operation, outcome, seconds);
        } catch (err) {
          this.logger.warn(`Bootpay ${spec.operation}: a call observer failed: ${err instanceof Error ? err.message : String(err)}`);
        }
      }
    }
  }

  private async callOnce<T>(spec: CallSpec, timeoutMs: number, send: () => Promise<unknown>, parse: (body: Json) => T): Promise<T> {
    await this.ensureToken();
    const tokenUsed = this.token;
    let body: unknown;
    try {
      body = await this.sendOnce(spec, timeoutMs, send);
    } catch (e) {
      const err = e as GatewayError;
      if (!(this.legacy && err.code === 'TOKEN_KEY_INVALID')) throw this.logged(err);
      await this.renewAfterRejection(tokenUsed);
      if (!spec.idempotent) {
        // Refused at authentication, so nothing was processed; but never re-send a state-changing call here.
        throw new GatewayConfigError({
          code: 'TOKEN_KEY_INVALID',
          operation: spec.operation,
          retryable: true,
          message: `${spec.operation}: access token rejected and renewed; the request was not processed`,
        });
      }
      body = await this.sendOnce(spec, timeoutMs, send).catch((e2: unknown) => {
        throw this.logged(e2 as GatewayError);
      });
    }
    const errorCtx: ErrorContext = {
      operation: spec.operation,
      stateChanging: spec.stateChanging,
      billingKeyCall: spec.billingKeyCall,
      secrets: this.secretsOf(spec),
    };
    if (isRecord(body) && body.error_code !== undefined && body.error_code !== null) {
      // A 2xx answer that carries an error.
      throw this.logged(toGatewayError(body, errorCtx));
    }
    if (!isRecord(body)) throw this.logged(this.malformed(spec, 'response is not a JSON object'));
    try {
      return parse(body);
    } catch (e) {
      if (e instanceof GatewayError) throw this.logged(e);
      if (e instanceof MalformedResponse) throw this.logged(this.malformed(spec, e.message));
      throw e;
    }
  }

  /** One HTTP exchange inside a call context (per-call time-out + hard deadline). Rejects with a GatewayError. */
  private async sendOnce(spec: CallSpec, timeoutMs: number, send: () => Promise<unknown>): Promise<unknown> {
    const controller = new AbortController();
    const ctx: CallContext = { timeoutMs, signal: controller.signal, deadlineExceeded: false };
    const timer = setTimeout(() => {
      ctx.deadlineExceeded = true;
      controller.abort();
    }, timeoutMs);
    try {
      return await this.als.run(ctx, send);
    } catch (e) {
      throw toGatewayError(e, {
        operation: spec.operation,
        stateChanging: spec.stateChanging,
        billingKeyCall: spec.billingKeyCall,
        deadlineExceeded: ctx.deadlineExceeded,
        secrets: this.secretsOf(spec),
      });
    } finally {
      clearTimeout(timer);
    }
  }

  private malformed(spec: CallSpec, detail: string): GatewayError {
    return spec.stateChanging
      ? new GatewayUnknownOutcomeError({
          code: 'UNEXPECTED_RESPONSE',
          operation: spec.operation,
          reason: 'unexpected_response',
          message: `${spec.operation}: outcome unknown: ${detail}`,
        })
      : new GatewayUnavailableError({ code: 'UNEXPECTED_RESPONSE', operation: spec.operation, retryable: true, message: `${spec.operation}: ${detail}` });
  }

  private secretsOf(spec: CallSpec): string[] {
    const s = [...spec.secrets];
    if (this.token) s.push(this.token);
    if (this.config.secretKey) s.push(this.config.secretKey);
    if (this.config.privateKey) s.push(this.config.privateKey);
    return s;
  }

  private logged(err: GatewayError): GatewayError {
    if (err instanceof GatewayUnknownOutcomeError) {
      this.logger.warn(`Bootpay ${err.operation}: outcome unknown (${err.reason}, code ${err.code})`);
    } else if (err instanceof GatewayConfigError) {
      this.logger.warn(`Bootpay ${err.operation}: configuration/auth error ${err.code}`);
    }
    return err;
  }

  // ------------------------------------------------------------------------------------------------- token

  private async ensureToken(): Promise<void> {
    if (!this.legacy) return;
    const now = this.clock.now().getTime();
    if (this.token !== null && this.tokenIssuedAtMs !== null && now >= this.tokenIssuedAtMs) {
      const age = now - this.tokenIssuedAtMs;
      if (age < this.tokenRefreshAfterMs) return;
      if (now < this.tokenRecheckAtMs && age < TOKEN_LIFETIME_MS - 60_000) return;
    }
    await this.renewToken();
  }

  /** Single-flight: concurrent callers share one renewal. */
  private renewToken(): Promise<void> {
    if (!this.renewal) {
      this.renewal = this.fetchToken().finally(() => {
        this.renewal = null;
      });
    }
    return this.renewal;
  }

  /** After TOKEN_KEY_INVALID: renew unless another caller already replaced the token that was rejected. */
  private async renewAfterRejection(tokenUsed: string | null): Promise<void> {
    if (this.renewal) return this.renewal;
    if (this.token !== tokenUsed) return;
    this.tokenIssuedAtMs = null;
    this.tokenRecheckAtMs = 0;
    return this.renewToken();
  }

  private async fetchToken(): Promise<void> {
    const spec: CallSpec = { operation: 'getAccessToken', stateChanging: false, idempotent: true, secrets: [] };
    const previous = this.token;
    let body: unknown;
    try {
      body = await this.sendOnce(spec, this.config.timeoutMs, () => this.sdk.getAccessToken());
    } catch (e) {
      throw this.logged(e as GatewayError);
    }
    if (isRecord(body) && body.error_code !== undefined && body.error_code !== null) {
      throw this.logged(toGatewayError(body, { operation: 'getAccessToken', stateChanging: false, secrets: this.secretsOf(spec) }));
    }
    const token = isRecord(body) ? str(body, 'access_token') : null;
    if (!token) throw this.logged(this.malformed(spec, 'token response lacks access_token'));
    const now = this.clock.now().getTime();
    const expireIn = isRecord(body) ? num(body, 'expire_in') : null;
    this.tokenRefreshAfterMs =
      expireIn && expireIn > 0 ? Math.max(60_000, Math.min(TOKEN_REFRESH_AFTER_MS, expireIn * 1000 - 5 * 60_000)) : TOKEN_REFRESH_AFTER_MS;
    if (token !== previous || this.tokenIssuedAtMs === null) {
      this.tokenIssuedAtMs = now;
      this.tokenRecheckAtMs = 0;
      this.logger.log('Bootpay access token renewed');
    } else {
      // Same token again: it keeps its original issue time; ask again in a minute.
      this.tokenRecheckAtMs = now + 60_000;
    }
    this.token = token;
    this.sdk.setToken(token);
  }
}
