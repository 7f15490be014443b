/**
 * The connection to Bootpay that every gateway call goes through: the isolated SDK instance and its keep-alive agents,
 * the per-call time-out and deadline, the legacy access token, the mapping of failures to GatewayErrors and the call
 * observers. BootpayGatewayCore (bootpay-gateway.core.ts) builds the calls on it.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import * as http from 'node:http';
import * as https from 'node:https';
import { performance } from 'node:perf_hooks';
import { Bootpay } from '@bootpay/backend-js';
import type { Clock } from '../common/clock';
import { ErrorContext, GatewayConfigError, GatewayError, GatewayUnavailableError, GatewayUnknownOutcomeError, toGatewayError } from './gateway.errors';
import type { GatewayConfig, GatewayOperation } from './gateway.types';
import { callOutcomeOf, GatewayCallObserver, GatewayCallOutcome } from './bootpay-gateway.outcome';
import { isRecord, Json, MalformedResponse, num, str } from './bootpay-gateway.parse';

type BootpaySdk = typeof Bootpay;

/** Minimal logger (Nest's Logger fits). Only ids and codes are ever passed to it. */
export interface GatewayLogger {
  log(message: string): void;
  warn(message: string): void;
}

const SILENT_LOGGER: GatewayLogger = { log: () => undefined, warn: () => undefined };
const TOKEN_REFRESH_AFTER_MS = 25 * 60_000;
const TOKEN_LIFETIME_MS = 30 * 60_000;

interface CallContext {
  timeoutMs: number;
  signal: AbortSignal;
  deadlineExceeded: boolean;
}

/** What a call is: how its failures are mapped, and whether it may be re-sent after a token renewal. */
export interface CallSpec {
  operation: GatewayOperation;
  stateChanging: boolean;
  /** May be re-sent once after a token renewal (lookups only). */
  idempotent: boolean;
  billingKeyCall?: boolean;
  secrets: readonly string[];
}

function isLoopback(url: string): boolean {
  try {
    const host = new URL(url).hostname.replace(/^\[|\]$/g, '');
    return host === 'localhost' || host === '::1' || host.startsWith('127.');
  } catch {
    return false;
  }
}

/** The SDK instance, its HTTP agents and token, and the call plumbing: what each gateway operation is sent through. */
export abstract class BootpaySession {
  private observers: GatewayCallObserver[] = [];
  protected readonly sdk: BootpaySdk;
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
    protected readonly config: GatewayConfig,
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

  protected async call<T>(spec: CallSpec, timeoutMs: number, send: () => Promise<unknown>, parse: (body: Json) => T): Promise<T> {
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
