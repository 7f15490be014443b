import { TestApp, bearer } from './test-app';

export const GOOD_CARD = {
  pg: 'nicepay',
  card_no: '4242424242424242',
  card_pw: '12',
  card_expire_year: '30',
  card_expire_month: '12',
  card_identity_no: '900101',
};

let seq = 0;

export async function createCustomer(t: TestApp, overrides: Record<string, unknown> = {}) {
  seq += 1;
  const res = await t.http
    .post('/v1/customers')
    .set(bearer(t.serviceKey))
    .send({ external_id: `user_${Date.now()}_${seq}`, name: '홍길동', email: 'gildong@example.com', phone: '010-1234-5678', ...overrides });
  if (res.status !== 201) throw new Error(`createCustomer: ${res.status} ${JSON.stringify(res.body)}`);
  return res.body as { id: string; external_id: string };
}

export async function createBillingKey(t: TestApp, customerId: string, card: Record<string, string> = {}) {
  const res = await t.http
    .post(`/v1/customers/${customerId}/billing-keys`)
    .set(bearer(t.serviceKey))
    .send({ ...GOOD_CARD, ...card });
  if (res.status !== 201) throw new Error(`createBillingKey: ${res.status} ${JSON.stringify(res.body)}`);
  return res.body as { id: string; bootpay_receipt_id: string; status: string };
}

export async function createPlan(t: TestApp, overrides: Record<string, unknown> = {}) {
  const res = await t.http
    .post('/v1/plans')
    .set(bearer(t.adminKey))
    .send({ name: 'Pro monthly', amount: 11000, interval: 'month', ...overrides });
  if (res.status !== 201) throw new Error(`createPlan: ${res.status} ${JSON.stringify(res.body)}`);
  return res.body as { id: string; amount: number; vat: number };
}

export async function createSubscription(t: TestApp, body: Record<string, unknown>, expectStatus = 201) {
  const res = await t.http.post('/v1/subscriptions').set(bearer(t.serviceKey)).send(body);
  if (res.status !== expectStatus) throw new Error(`createSubscription: ${res.status} ${JSON.stringify(res.body)}`);
  return res.body;
}

/** A customer with one working billing key. */
export async function customerWithKey(t: TestApp, card: Record<string, string> = {}) {
  const customer = await createCustomer(t);
  const key = await createBillingKey(t, customer.id, card);
  return { customer, key };
}

/** Runs a charge run to its end through the API (as the admin would) and returns it. */
export async function runCharges(t: TestApp) {
  const res = await t.http.post('/v1/charge-runs').set(bearer(t.adminKey)).send({ wait: true });
  if (res.status !== 202) throw new Error(`runCharges: ${res.status} ${JSON.stringify(res.body)}`);
  return res.body as { id: string; status: string; counts: Record<string, number> };
}

export async function getSubscription(t: TestApp, id: string) {
  const res = await t.http.get(`/v1/subscriptions/${id}`).set(bearer(t.serviceKey));
  if (res.status !== 200) throw new Error(`getSubscription: ${res.status}`);
  return res.body;
}

// ------------------------------------------------------------------ plans and subscription lifecycle helpers

/** The fake Bootpay's approved charges for one subscription (its order_ids start with `s<id without dashes>-`). */
export function ledgerChargesOf(t: TestApp, subscriptionId: string) {
  const prefix = `s${subscriptionId.replace(/-/g, '')}-`;
  return t.fake.ledger().charges.filter((c) => c.order_id.startsWith(prefix));
}

/** The fake Bootpay's declined charges for one subscription. */
export function ledgerFailedChargesOf(t: TestApp, subscriptionId: string) {
  const prefix = `s${subscriptionId.replace(/-/g, '')}-`;
  return t.fake.ledger().failed_charges.filter((c) => c.order_id.startsWith(prefix));
}

/** The fake Bootpay's record of a billing key, by its receipt_id. */
export function ledgerBillingKey(t: TestApp, receiptId: string) {
  return t.fake.ledger().billing_keys.find((k) => k.receipt_id === receiptId);
}

/** Every payment of a subscription, oldest first (at most 100). */
export async function paymentsOf(t: TestApp, subscriptionId: string) {
  const res = await t.http.get(`/v1/payments?subscription_id=${subscriptionId}&limit=100`).set(bearer(t.adminKey));
  if (res.status !== 200) throw new Error(`paymentsOf: ${res.status} ${JSON.stringify(res.body)}`);
  return res.body.data as Array<{
    id: string;
    kind: 'period' | 'proration';
    status: string;
    amount: number;
    tax_free_amount: number;
    plan_id: string;
    billing_key_id: string;
    attempt: number;
    period: { index: number; start: string; end: string };
    failure: { code: string; pg_code: string | null; message: string; hard: boolean } | null;
  }>;
}

/** The audit trail of a subscription, oldest first (at most 100 events). */
export async function eventsOf(t: TestApp, subscriptionId: string) {
  const res = await t.http.get(`/v1/subscriptions/${subscriptionId}/events?limit=100`).set(bearer(t.serviceKey));
  if (res.status !== 200) throw new Error(`eventsOf: ${res.status} ${JSON.stringify(res.body)}`);
  return res.body.data as Array<{
    type: string;
    sequence: number;
    actor: { type: 'api_key' | 'system'; id: string | null; name: string | null };
    reason: string | null;
    before: Record<string, unknown> | null;
    after: Record<string, unknown> | null;
    data: Record<string, unknown> | null;
    created_at: string;
  }>;
}

/** The audit actors of the harness's two API keys. */
export async function apiKeyActors(t: TestApp) {
  const rows: { id: string; name: string }[] = (await t.db.query(`SELECT id, name FROM api_keys WHERE name IN ('test admin', 'test service')`)).rows;
  const byName = new Map(rows.map((r) => [r.name, r.id]));
  return {
    admin: { type: 'api_key' as const, id: byName.get('test admin')!, name: 'test admin' },
    service: { type: 'api_key' as const, id: byName.get('test service')!, name: 'test service' },
    system: { type: 'system' as const, id: null, name: 'system' },
  };
}

/** POST /v1/subscriptions/:id/<action> with the given key (the service key by default); answers the raw response. */
export function subscriptionAction(t: TestApp, subscriptionId: string, action: string, body: Record<string, unknown> = {}, key = t.serviceKey) {
  return t.http.post(`/v1/subscriptions/${subscriptionId}/${action}`).set(bearer(key)).send(body);
}

/** Local wall time of an instant in Asia/Seoul (UTC+9, no DST since 1988) as 'YYYY-MM-DD HH:mm'. */
export function seoulTime(iso: string | Date): string {
  const ms = (typeof iso === 'string' ? Date.parse(iso) : iso.getTime()) + 9 * 3600_000;
  return new Date(ms).toISOString().slice(0, 16).replace('T', ' ');
}

// ------------------------------------------------------------------ charging helpers (test/charging.e2e-spec.ts)
// Import declarations are hoisted, so these work here at the end of the module.
import type { INestApplication } from '@nestjs/common';
import request from 'supertest';
import type TestAgent from 'supertest/lib/agent';
import { createApp } from '../../src/app.factory';
import { JsonLogger } from '../../src/common/json-logger';
import type { Runtime } from '../../src/config/runtime';

/**
 * A second instance of the service on the SAME database, talking to the SAME fake Bootpay with the SAME clock as `t`
 * (startTestApp({databaseUrl}) would give it a fake of its own). Not listening: `http` drives it in-process.
 */
export async function startSiblingApp(
  t: TestApp,
  config: Partial<Runtime['config']> = {},
): Promise<{ app: INestApplication; http: TestAgent; logs: string[]; close(): Promise<void> }> {
  const logs: string[] = [];
  const runtime: Runtime = {
    ...t.runtime,
    config: { ...t.runtime.config, ...config },
    gateway: { ...t.runtime.gateway, apiBaseUrl: t.fake.apiBaseUrl },
    clock: t.clock,
    logger: new JsonLogger(
      'debug',
      (line) => logs.push(line),
      () => t.clock.now(),
    ),
  };
  const app = await createApp(runtime);
  return { app, http: request(app.getHttpServer()), logs, close: () => app.close() };
}

/** A subscription's payments (period order, then attempt), as the API lists them. */
export async function listPayments(t: TestApp, subscriptionId: string) {
  const res = await t.http.get(`/v1/payments?subscription_id=${subscriptionId}&limit=100`).set(bearer(t.serviceKey));
  if (res.status !== 200) throw new Error(`listPayments: ${res.status} ${JSON.stringify(res.body)}`);
  const data = res.body.data as {
    id: string;
    order_id: string;
    status: string;
    attempt: number;
    amount: number;
    tax_free_amount: number;
    receipt_id: string | null;
    charge_run_id: string | null;
    period: { index: number; start: string; end: string };
    failure: { code: string; pg_code: string | null; message: string | null; hard: boolean | null } | null;
  }[];
  return data.sort((a, b) => a.period.start.localeCompare(b.period.start) || a.attempt - b.attempt);
}

// ------------------------------------------------------------------ reservation and Bootpay webhook helpers
// (test/reservations.e2e-spec.ts, test/webhooks.e2e-spec.ts)
import * as nodeHttp from 'node:http';
import type { AddressInfo } from 'node:net';
import { SecretBox } from '../../src/common/secret-box';

export interface KeyReservationsView {
  billing_key_id: string;
  budget: { limit: number; used: number; available: number };
  reservations: Array<{
    payment_id: string;
    subscription_id: string;
    reserve_id: string | null;
    confirmed: boolean;
    order_id: string;
    amount: number;
    tax_free_amount: number;
    execute_at: string | null;
    period: { start: string; end: string };
  }>;
}

/** GET /v1/billing-keys/:id/reservations: the key's budget of reservations at Bootpay and its outstanding ones. */
export async function keyReservations(t: TestApp, billingKeyId: string): Promise<KeyReservationsView> {
  const res = await t.http.get(`/v1/billing-keys/${billingKeyId}/reservations`).set(bearer(t.serviceKey));
  if (res.status !== 200) throw new Error(`keyReservations: ${res.status} ${JSON.stringify(res.body)}`);
  return res.body as KeyReservationsView;
}

/** The fake Bootpay's reservations for one subscription (order_ids `s<id without dashes>-…`), in the order they were made. */
export function ledgerReservationsOf(t: TestApp, subscriptionId: string) {
  const prefix = `s${subscriptionId.replace(/-/g, '')}-`;
  return t.fake.ledger().reservations.filter((r) => r.order_id.startsWith(prefix));
}

/** The last 4 characters of a billing key as the fake's ledger shows them (decrypted from the service's row). */
export async function billingKeySuffix(t: TestApp, billingKeyId: string): Promise<string> {
  const row = (await t.db.query('SELECT billing_key_ciphertext FROM billing_keys WHERE id = $1', [billingKeyId])).rows[0];
  if (!row?.billing_key_ciphertext) throw new Error(`billingKeySuffix: no stored key ${billingKeyId}`);
  return new SecretBox(t.encryptionKey).decrypt(row.billing_key_ciphertext, billingKeyId).slice(-4);
}

/** Reservations the fake holds as active (status 1: not executed, not revoked) on a billing key, by its suffix. */
export function activeReservationsAtFake(t: TestApp, keySuffix: string) {
  return t.fake.ledger().reservations.filter((r) => r.billing_key_suffix === keySuffix && r.status === 1);
}

/** Every payment of a subscription as the API shows it, by period start, then attempt, then creation. */
export async function paymentDetails(t: TestApp, subscriptionId: string) {
  const res = await t.http.get(`/v1/payments?subscription_id=${subscriptionId}&limit=100`).set(bearer(t.adminKey));
  if (res.status !== 200) throw new Error(`paymentDetails: ${res.status} ${JSON.stringify(res.body)}`);
  const data = res.body.data as Array<{
    id: string;
    kind: 'period' | 'proration';
    order_id: string;
    receipt_id: string | null;
    reserve_id: string | null;
    status: string;
    amount: number;
    tax_free_amount: number;
    balance_amount: number;
    plan_id: string;
    billing_key_id: string;
    attempt: number;
    period: { index: number; start: string; end: string };
    failure: { code: string; pg_code: string | null; message: string | null; hard: boolean | null } | null;
    charge_run_id: string | null;
    approved_at: string | null;
    canceled_at: string | null;
    created_at: string;
  }>;
  return data.sort((a, b) => a.period.start.localeCompare(b.period.start) || a.attempt - b.attempt || a.created_at.localeCompare(b.created_at));
}

/** A call to the fake Bootpay's REST API (/v2), authenticated like the merchant (Basic client key : secret key). */
export async function callFakeBootpay(t: TestApp, method: string, path: string, body?: Record<string, unknown>) {
  const res = await fetch(`${t.fake.apiBaseUrl}/${path.replace(/^\//, '')}`, {
    method,
    headers: {
      'Content-Type': 'application/json',
      Authorization: `Basic ${Buffer.from(`${t.fake.credentials.clientKey}:${t.fake.credentials.secretKey}`).toString('base64')}`,
    },
    ...(body ? { body: JSON.stringify(body) } : {}),
  });
  return { status: res.status, body: (await res.json()) as Record<string, any> };
}

/** The body Bootpay posts to feedback_url for a receipt: the receipt as it stands now, plus webhook_type. */
export async function bootpayWebhookBody(t: TestApp, receiptId: string, webhookType: string): Promise<Record<string, unknown>> {
  const res = await fetch(`${t.fake.url}/__fake/receipts/${receiptId}`);
  if (res.status !== 200) throw new Error(`bootpayWebhookBody: ${res.status}`);
  return { ...((await res.json()) as Record<string, unknown>), webhook_type: webhookType };
}

/** POST /v1/webhooks/bootpay as Bootpay does: no API key. */
export function postBootpayWebhook(t: TestApp, body: unknown) {
  return t.http.post('/v1/webhooks/bootpay').send(body as object);
}

export interface WebhookSink {
  /** Give it as PUBLIC_BASE_URL: Bootpay's webhooks then go to `<url>/v1/webhooks/bootpay` here, not to the app. */
  url: string;
  /** Every body received, in arrival order. */
  received: Array<Record<string, unknown>>;
  close(): Promise<void>;
}

/**
 * A stand-in for the service's public address that answers Bootpay like the service would (200 {"success": true})
 * but keeps the webhooks to itself: the service misses them, and a test can replay them in any order.
 */
export async function startWebhookSink(): Promise<WebhookSink> {
  const received: Array<Record<string, unknown>> = [];
  const server = nodeHttp.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      try {
        received.push(JSON.parse(Buffer.concat(chunks).toString('utf8')) as Record<string, unknown>);
      } catch {
        received.push({ unparsable: true });
      }
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ success: true }));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    received,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

/** A charge run's counts, all zero: tests compare whole count objects against it. */
export const ZERO_COUNTS = { due: 0, charged: 0, failed: 0, unknown: 0, skipped: 0, resolved: 0, canceled: 0, resumed: 0, local_faults: 0, task_failures: 0 };
/** A charge run's counts with these set and the rest zero. */
export const runCounts = (c: Partial<typeof ZERO_COUNTS>) => ({ ...ZERO_COUNTS, ...c });
