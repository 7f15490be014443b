/**
 * Reading Bootpay's answers: the field readers and the mapping of a billing key, a receipt and a reservation body to
 * the gateway's types. A 2xx body that lacks what it must have throws MalformedResponse.
 */
import type { BillingKeyInfo, GatewayMetadata, GatewayReceipt, GatewayReservation } from './gateway.types';

export type Json = Record<string, unknown>;

/** Thrown by the response parsers when a 2xx body lacks what it must have. */
export class MalformedResponse extends Error {}

// --------------------------------------------------------------------------------------------------- parse helpers

export function isRecord(v: unknown): v is Json {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

export function str(o: Json, key: string): string | null {
  const v = o[key];
  if (typeof v === 'string') return v;
  if (typeof v === 'number' && Number.isFinite(v)) return String(v);
  return null;
}

export function reqStr(o: Json, key: string): string {
  const v = str(o, key);
  if (v === null || v === '') throw new MalformedResponse(`response lacks ${key}`);
  return v;
}

export function num(o: Json, key: string): number | null {
  const v = o[key];
  if (typeof v === 'number' && Number.isFinite(v)) return v;
  if (typeof v === 'string' && v.trim() !== '' && Number.isFinite(Number(v))) return Number(v);
  return null;
}

export function date(o: Json, key: string): Date | null {
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
