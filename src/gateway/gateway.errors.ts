/**
 * Typed errors of the Bootpay gateway, and the one function that turns whatever the SDK rejected with into them.
 *
 * The SDK rejects with plain objects (the raw error body, HTTP status lost), bare strings (non-JSON bodies),
 * `{error_code:-100}` (no response: network failure or time-out) and `{error_code:-101}` (configuration). A 2xx body
 * carrying `error_code` resolves; the gateway feeds it through here as well.
 *
 * No error built here carries a billing key, card data, a token or a request body: messages are built from the error
 * code plus the server's message with known secrets and secret-looking strings redacted, and the raw rejection is
 * not kept.
 */
import type { GatewayOperation } from './gateway.types';

export interface GatewayErrorInit {
  code: string;
  message: string;
  operation: GatewayOperation;
  retryable: boolean;
  pgCode?: string;
}

export class GatewayError extends Error {
  /** Bootpay's error_code, as a string (`'RC_NOT_FOUND'`, `'-100'`, ...), or the gateway's own (`'INVALID_ARGUMENT'`). */
  readonly code: string;
  readonly pgCode?: string;
  /** Whether the same request may simply be sent again later. */
  readonly retryable: boolean;
  readonly operation: GatewayOperation;

  constructor(init: GatewayErrorInit) {
    super(redactSecrets(init.message));
    this.name = new.target.name;
    this.code = init.code;
    if (init.pgCode !== undefined) this.pgCode = init.pgCode;
    this.retryable = init.retryable;
    this.operation = init.operation;
  }
}

/** The card company / PG refused. `hard`: do not retry this card (lost, stolen, expired, suspended, invalid). */
export class GatewayDeclinedError extends GatewayError {
  readonly hard: boolean;

  constructor(init: Omit<GatewayErrorInit, 'retryable'> & { hard: boolean }) {
    super({ ...init, retryable: !init.hard });
    this.hard = init.hard;
  }
}

/** The billing key is destroyed, expired or unknown: a new one must be issued. */
export class GatewayInvalidBillingKeyError extends GatewayError {}

export type UnknownOutcomeReason = 'timeout' | 'connection_lost' | 'server_error' | 'unexpected_response';

/**
 * A state-changing call (issue, charge, reserve, cancel, destroy, reservation revoke) may have reached Bootpay but no
 * usable answer came back. The caller must resolve the outcome (webhook, receipt lookup, or a re-send with the SAME
 * order_id / cancel_id, which Bootpay refuses as a duplicate if the first one went through) before any retry.
 */
export class GatewayUnknownOutcomeError extends GatewayError {
  readonly reason: UnknownOutcomeReason;

  constructor(init: Omit<GatewayErrorInit, 'retryable'> & { reason: UnknownOutcomeReason }) {
    super({ ...init, retryable: false });
    this.reason = init.reason;
  }
}

/** Nothing was sent (connection refused, DNS failure), or a read-only call failed: safe to retry. */
export class GatewayUnavailableError extends GatewayError {}

/** RC_DUPLICATE_ORDER_ID or RC_CANCEL_ID_DUPLICATED: the order / cancel was already processed. */
export class GatewayDuplicateError extends GatewayError {}

/** The billing key already has 10 active reservations. */
export class GatewayReservationLimitError extends GatewayError {}

/** No such receipt / reservation (RC_NOT_FOUND). */
export class GatewayNotFoundError extends GatewayError {}

/** RC_ALREADY_CANCELLED: nothing is left to cancel. */
export class GatewayAlreadyCancelledError extends GatewayError {}

/** Missing or wrong credentials, wrong base URL (-101, TOKEN_KEY_INVALID, APP_*). */
export class GatewayConfigError extends GatewayError {}

/** Any other refusal (4xx): the request was not processed. */
export class GatewayRequestError extends GatewayError {}

/** The reservation was already executed or revoked (RC_RESERVE_ALREADY_DONE). */
export class GatewayReservationAlreadyDoneError extends GatewayRequestError {}

// ------------------------------------------------------------------------------------------------------------ mapping

/**
 * Hard/soft decline table by pg_error_code. The codes are the fake server's (ISO 8583 response codes with an `F0`
 * prefix, see src/fake-bootpay/test-cards.ts); real PG codes are matched by message keywords below, and an unknown
 * decline is soft (the dunning schedule retries it a bounded number of times).
 */
export const DECLINE_PG_CODES: Readonly<Record<string, { hard: boolean; reason: string }>> = Object.freeze({
  F014: { hard: true, reason: 'invalid card number' },
  F041: { hard: true, reason: 'lost card' },
  F043: { hard: true, reason: 'lost or stolen card' },
  F054: { hard: true, reason: 'expired card' },
  F055: { hard: true, reason: 'wrong card password' },
  F056: { hard: true, reason: 'identity number mismatch' },
  F057: { hard: true, reason: 'invalid expiry' },
  F062: { hard: true, reason: 'card suspended / transaction not permitted' },
  F051: { hard: false, reason: 'insufficient funds' },
  F061: { hard: false, reason: 'limit exceeded' },
  F096: { hard: false, reason: 'PG temporary error' },
});

/** Error codes that are a decline by the PG / card company (hardness then comes from the pg code or message). */
const DECLINE_CODES = new Set(['RC_CONFIRM_FAILED', 'RC_REQUEST_FAILED', 'SUBSCRIBE_PUBLISH_FAILED', 'SUBSCRIBE_REQUEST_FAILED', 'RC_INVALID_EXP_MONTH']);
const HARD_DECLINE_MESSAGE =
  /분실|도난|유효\s*기간|만료|거래\s*정지|정지\s*카드|해지|카드\s*번호|사용\s*불가|비밀번호|생년월일|사업자\s*번호|lost|stolen|expired|suspended|invalid card/i;
const SOFT_DECLINE_MESSAGE = /잔액|한도|일시|잠시|시스템|통신|insufficient|limit|temporar/i;

const CONFIG_CODES = new Set([
  'TOKEN_KEY_INVALID',
  'APP_KEY_NOT_FOUND',
  'APP_KEY_NOT_REST',
  'APP_SK_NOT_MATCHED',
  'APP_CLIENT_KEY_NOT_FOUND',
  'ROUTE_NOT_FOUND',
]);
/** PG time-outs during confirm/cancel: Bootpay itself does not know the outcome. */
const CRITICAL_CODES = new Set(['RC_CONFIRM_CRITICAL_FAILED', 'RC_CANCEL_CRITICAL_ERROR']);
const SERVER_ERROR_CODES = new Set(['SERVER_ERROR', 'INTERNAL_SERVER_ERROR', 'BAD_GATEWAY', 'SERVICE_UNAVAILABLE', 'GATEWAY_TIMEOUT']);
/** Known refusals: the request was not processed. */
const REQUEST_CODES = new Set([
  'RC_INVALID_PARAMETER',
  'RC_NOT_SUBSCRIBE',
  'RC_NOT_CONFIRM_READY',
  'RC_CANCEL_PRICE_EXCEEDED',
  'RC_CANCEL_SERVER_ERROR',
  'RC_NOT_ESCROW',
  'RC_CASH_RECEIPT_FAILED',
  'SUBSCRIBE_PUBLISH_NOT_READY',
  'AUTH_EXPIRED',
  'AUTH_NOT_READY',
  'AUTH_CONFIRM_READY_FAILED',
  'AUTH_ALREADY_AUTHENTICATED',
  'AUTH_NOT_CONFIRMED',
]);
/** A -100 whose message shows the connection was never established: nothing was sent. */
const NOT_SENT_MESSAGE = /ECONNREFUSED|ENOTFOUND|EAI_AGAIN|EHOSTUNREACH|ENETUNREACH|EADDRNOTAVAIL|ERR_INVALID_URL|Invalid URL|Unsupported protocol/i;
const TIMEOUT_MESSAGE = /timeout|timed out|ETIMEDOUT|ECONNABORTED|canceled|aborted/i;

export interface ErrorContext {
  operation: GatewayOperation;
  /** The call may change state at Bootpay (issue, charge, reserve, cancel, destroy, revoke). */
  stateChanging: boolean;
  /** RC_NOT_FOUND means "no such billing key" for this call. */
  billingKeyCall?: boolean;
  /** The gateway's own per-call deadline fired. */
  deadlineExceeded?: boolean;
  /** Values to redact from any message (billing key, card data, credentials, token). */
  secrets?: readonly string[];
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function textOf(v: unknown): string {
  return typeof v === 'string' ? v : typeof v === 'number' ? String(v) : '';
}

/** Redacts digit runs that look like card numbers and long token-like strings (billing keys, access tokens). */
export function redactSecrets(text: string, secrets: readonly string[] = []): string {
  let out = text;
  for (const s of secrets) {
    if (s && s.length >= 2) out = out.split(s).join('[REDACTED]');
  }
  return out.replace(/\d(?:[ -]?\d){11,18}/g, '[REDACTED]').replace(/[A-Za-z0-9+/_=-]{32,}/g, '[REDACTED]');
}

export function isDeclineHard(errorCode: string, pgCode: string | undefined, message: string): boolean {
  if (pgCode && DECLINE_PG_CODES[pgCode]) return DECLINE_PG_CODES[pgCode].hard;
  if (errorCode === 'RC_INVALID_EXP_MONTH') return true;
  if (errorCode === 'RC_REQUEST_FAILED') return false;
  if (HARD_DECLINE_MESSAGE.test(message)) return true;
  if (SOFT_DECLINE_MESSAGE.test(message)) return false;
  return false;
}

/** Turns any SDK rejection (or a 2xx body carrying error_code) into a typed {@link GatewayError}. */
export function toGatewayError(raw: unknown, ctx: ErrorContext): GatewayError {
  if (raw instanceof GatewayError) return raw;
  const op = ctx.operation;
  const secrets = ctx.secrets ?? [];
  const clean = (text: string): string => redactSecrets(text, secrets).slice(0, 300);
  const unknownOrUnavailable = (code: string, reason: UnknownOutcomeReason, detail: string): GatewayError =>
    ctx.stateChanging
      ? new GatewayUnknownOutcomeError({ code, operation: op, reason, message: `${op}: outcome unknown (${reason}): ${detail}` })
      : new GatewayUnavailableError({ code, operation: op, retryable: true, message: `${op}: Bootpay unavailable: ${detail}` });

  if (typeof raw === 'string') {
    // A non-JSON error body (typically a proxy's 5xx page).
    return unknownOrUnavailable('NON_JSON_RESPONSE', 'server_error', `non-JSON error response: ${clean(raw.slice(0, 100))}`);
  }
  if (!isRecord(raw)) {
    const detail = raw instanceof Error ? clean(raw.message) : typeof raw;
    return unknownOrUnavailable('UNEXPECTED_REJECTION', 'unexpected_response', detail);
  }

  const code = textOf(raw.error_code);
  const message = clean(textOf(raw.message));
  const pgRaw = textOf(raw.pg_error_code);
  const pgCode = pgRaw === '' ? undefined : pgRaw;
  const httpStatus = typeof raw.http_status === 'number' ? raw.http_status : null;
  const describe = `${code || 'NO_CODE'}${pgCode ? ` (pg ${pgCode})` : ''}${message ? `: ${message}` : ''}`;
  const base = { code, operation: op, message: `${op} failed: ${describe}`, ...(pgCode ? { pgCode } : {}) };

  if (code === '') return unknownOrUnavailable('UNEXPECTED_RESPONSE', 'unexpected_response', 'error without error_code');

  if (code === '-100') {
    if (!ctx.deadlineExceeded && NOT_SENT_MESSAGE.test(message)) {
      return new GatewayUnavailableError({ ...base, retryable: true, message: `${op}: Bootpay unreachable, nothing sent: ${message}` });
    }
    const reason: UnknownOutcomeReason = ctx.deadlineExceeded || TIMEOUT_MESSAGE.test(message) ? 'timeout' : 'connection_lost';
    return unknownOrUnavailable(code, reason, message);
  }
  if (code === '-101') return new GatewayConfigError({ ...base, retryable: false });

  if (code === 'RC_DUPLICATE_ORDER_ID' || code === 'RC_CANCEL_ID_DUPLICATED') return new GatewayDuplicateError({ ...base, retryable: false });
  if (code === 'RC_RESERVE_LIMIT_EXCEEDED') return new GatewayReservationLimitError({ ...base, retryable: false });
  if (code === 'RC_RESERVE_ALREADY_DONE') return new GatewayReservationAlreadyDoneError({ ...base, retryable: false });
  if (code === 'SUBSCRIBE_BK_EXPIRED') return new GatewayInvalidBillingKeyError({ ...base, retryable: false });
  if (code === 'RC_NOT_FOUND') {
    return ctx.billingKeyCall ? new GatewayInvalidBillingKeyError({ ...base, retryable: false }) : new GatewayNotFoundError({ ...base, retryable: false });
  }
  if (code === 'RC_ALREADY_CANCELLED') return new GatewayAlreadyCancelledError({ ...base, retryable: false });
  if (CONFIG_CODES.has(code)) return new GatewayConfigError({ ...base, retryable: false });
  if (DECLINE_CODES.has(code)) return new GatewayDeclinedError({ ...base, hard: isDeclineHard(code, pgCode, message) });
  if (CRITICAL_CODES.has(code)) return unknownOrUnavailable(code, 'server_error', describe);
  if (SERVER_ERROR_CODES.has(code) || (httpStatus !== null && httpStatus >= 500)) return unknownOrUnavailable(code, 'server_error', describe);
  if (REQUEST_CODES.has(code) || /^(RC|SUBSCRIBE)_INVALID_/.test(code)) return new GatewayRequestError({ ...base, retryable: false });
  // An error code this adapter does not know. For a state-changing call we cannot be sure nothing happened.
  if (ctx.stateChanging) return unknownOrUnavailable(code, 'unexpected_response', describe);
  return new GatewayRequestError({ ...base, retryable: false });
}
