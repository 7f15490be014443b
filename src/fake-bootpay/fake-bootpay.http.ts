/**
 * The fake's HTTP layer: Bootpay's error shape, the /v2 route table, reading and answering JSON, and the checks of
 * request fields that every route shares (each with Bootpay's error code and a Korean message, as Bootpay answers).
 */
import type * as http from 'node:http';

export type Json = Record<string, unknown>;

const MAX_BODY_BYTES = 1024 * 1024;

/** A Bootpay-style error answer. */
export class FakeHttpError extends Error {
  constructor(
    readonly status: number,
    readonly errorCode: string,
    message: string,
    readonly pgErrorCode?: string | null,
  ) {
    super(message);
  }

  body(): Json {
    const body: Json = { error_code: this.errorCode, message: this.message };
    if (this.pgErrorCode) body.pg_error_code = this.pgErrorCode;
    return body;
  }
}

export const invalid = (message: string): FakeHttpError => new FakeHttpError(400, 'RC_INVALID_PARAMETER', message);

interface RouteDef {
  method: string;
  parts: string[];
  key: string;
}

const V2_ROUTES: RouteDef[] = [
  { method: 'POST', parts: ['request', 'token'], key: 'request/token' },
  { method: 'POST', parts: ['request', 'subscribe'], key: 'request/subscribe' },
  { method: 'GET', parts: ['subscribe', 'billing_key', ':id'], key: 'subscribe/billing_key' },
  { method: 'DELETE', parts: ['subscribe', 'billing_key', ':id'], key: 'subscribe/billing_key' },
  { method: 'GET', parts: ['billing_key', ':id'], key: 'billing_key' },
  { method: 'POST', parts: ['subscribe', 'payment'], key: 'subscribe/payment' },
  { method: 'POST', parts: ['subscribe', 'payment', 'reserve'], key: 'subscribe/payment/reserve' },
  { method: 'GET', parts: ['subscribe', 'payment', 'reserve', ':id'], key: 'subscribe/payment/reserve' },
  { method: 'DELETE', parts: ['subscribe', 'payment', 'reserve', ':id'], key: 'subscribe/payment/reserve' },
  { method: 'GET', parts: ['receipt', ':id'], key: 'receipt' },
  { method: 'POST', parts: ['cancel'], key: 'cancel' },
  { method: 'POST', parts: ['confirm'], key: 'confirm' },
];

export function matchRoute(method: string, segments: string[]): { route: RouteDef; id: string | null } | null {
  for (const route of V2_ROUTES) {
    if (route.method !== method || route.parts.length !== segments.length) continue;
    let id: string | null = null;
    let ok = true;
    for (let i = 0; i < route.parts.length; i++) {
      const p = route.parts[i];
      if (p === ':id') {
        if (segments[i] === '') {
          ok = false;
          break;
        }
        id = segments[i];
      } else if (p !== segments[i]) {
        ok = false;
        break;
      }
    }
    if (ok) return { route, id };
  }
  return null;
}

export function routeMatches(filter: string | string[] | undefined, method: string, key: string, defaultFilter: string | null): boolean {
  if (Array.isArray(filter)) return filter.some((one) => routeMatches(one, method, key, defaultFilter));
  const f = (filter ?? defaultFilter ?? '*').trim().replace(/^\/?(v2\/)?/, '');
  if (f === '*' || f === '') return true;
  return f === key || f === `${method} ${key}`;
}

/** The error JSON of a 5xx fault: Bootpay's error shape, with its (deprecated) `http_status`. */
export function serverErrorBody(status: 500 | 502 | 503): { error_code: string; message: string; http_status: number } {
  const code = status === 502 ? 'BAD_GATEWAY' : status === 503 ? 'SERVICE_UNAVAILABLE' : 'SERVER_ERROR';
  return { error_code: code, message: `일시적인 서버 오류입니다 (fake fault ${status})`, http_status: status };
}

export function isObject(v: unknown): v is Json {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

export function reqString(body: Json, field: string): string {
  const v = body[field];
  if (typeof v === 'number' && Number.isFinite(v)) return String(v);
  if (typeof v !== 'string' || v.trim() === '') throw invalid(`${field} 값이 필요합니다`);
  return v;
}

export function optString(body: Json, field: string): string | null {
  const v = body[field];
  if (v === undefined || v === null || v === '') return null;
  if (typeof v !== 'string') throw invalid(`${field} 값이 올바르지 않습니다`);
  return v;
}

export function amount(body: Json, field: string, opts: { required: boolean; min: number }): number | null {
  const v = body[field];
  if (v === undefined || v === null) {
    if (opts.required) throw invalid(`${field} 값이 필요합니다`);
    return null;
  }
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < opts.min) {
    throw invalid(`${field} 값은 ${opts.min} 이상의 정수여야 합니다`);
  }
  return v;
}

const ISO_8601 = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:?\d{2})?$/;

export function parseIso(value: unknown): Date | null {
  if (typeof value !== 'string' || !ISO_8601.test(value)) return null;
  const ms = Date.parse(value);
  return Number.isNaN(ms) ? null : new Date(ms);
}

/** Writes a JSON answer (nothing once the response has ended or its socket is gone). */
export function sendJson(res: http.ServerResponse, status: number, body: unknown): void {
  if (res.writableEnded || res.destroyed) return;
  const text = JSON.stringify(body);
  res.writeHead(status, {
    'content-type': 'application/json; charset=utf-8',
    'content-length': Buffer.byteLength(text),
  });
  res.end(text);
}

/** A request's body as a JSON object ({} when empty); Bootpay's 400 otherwise. */
export function parseJsonBody(raw: string): Json {
  if (raw.trim() === '') return {};
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw);
  } catch {
    throw invalid('JSON 형식이 올바르지 않습니다');
  }
  if (!isObject(parsed)) throw invalid('JSON 객체가 필요합니다');
  return parsed;
}

/** Reads a request's body (at most 1 MiB) and hands it on; a larger one is answered 413. */
export function readBody(req: http.IncomingMessage, res: http.ServerResponse, then: (raw: string) => void): void {
  const chunks: Buffer[] = [];
  let size = 0;
  let tooLarge = false;
  req.on('data', (chunk: Buffer) => {
    size += chunk.length;
    if (size > MAX_BODY_BYTES) tooLarge = true;
    else chunks.push(chunk);
  });
  // A client that goes away mid-body: its request simply never ends (nothing to answer).
  req.on('error', () => undefined);
  req.on('end', () => {
    if (tooLarge) {
      sendJson(res, 413, { error_code: 'RC_INVALID_PARAMETER', message: 'request body too large' });
      return;
    }
    then(chunks.length === 0 ? '' : Buffer.concat(chunks).toString('utf8'));
  });
}

/** A birth date YYMMDD that could be one (month 1-12, day 1-31). */
export function validBirth(yymmdd: string): boolean {
  const mm = Number(yymmdd.slice(2, 4));
  const dd = Number(yymmdd.slice(4, 6));
  return mm >= 1 && mm <= 12 && dd >= 1 && dd <= 31;
}
