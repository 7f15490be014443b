/**
 * The fake's control API under /__fake (see README.md): what tests and benchmarks use to read the fake's ledger, set
 * faults, move its clock, steer a card, seed keys, execute due reservations and wait for its webhooks.
 */
import type * as http from 'node:http';
import { FakeHttpError, Json, parseIso, parseJsonBody, sendJson } from './fake-bootpay.http';
import type { FakeFaults, FakeLedger, ReservationExecution } from './fake-bootpay.types';
import { TEST_CARDS } from './test-cards';

/** What the control API needs of the fake (FakeBootpayServer). */
export interface FakeControl {
  readonly url: string;
  now(): Date;
  stats(): Record<string, number>;
  ledger(): FakeLedger;
  getFaults(): FakeFaults;
  setFaults(faults: FakeFaults): void;
  setWebhookUrl(url: string | null): void;
  moveClock(change: { offsetMs?: number; advanceMs?: number }): { now: Date; offsetMs: number };
  setKeyBehavior(receiptId: string, decline: string | null): void;
  issueBillingKeysBulk(count: number, opts: { cardNo?: string; pg?: string }): Array<{ billing_key: string; receipt_id: string }>;
  executeDueReservations(now?: Date): Promise<ReservationExecution[]>;
  webhooksIdle(): Promise<void>;
  reset(): void;
  /** The receipt page of a payment (Bootpay's receipt_url); a FakeHttpError when there is none. */
  receiptPage(receiptId: string): Json;
}

/** Answers one control request. */
export async function dispatchControl(fake: FakeControl, method: string, pathname: string, raw: string, res: http.ServerResponse): Promise<void> {
  const path = pathname.replace(/\/+$/, '');
  let body: Json;
  try {
    body = parseJsonBody(raw);
  } catch (e) {
    const err = e as FakeHttpError;
    sendJson(res, err.status, err.body());
    return;
  }
  const bad = (message: string) => sendJson(res, 400, { error_code: 'FAKE_BAD_REQUEST', message });
  const behaviorMatch = /^\/__fake\/billing-keys\/([^/]+)\/behavior$/.exec(path);
  const receiptMatch = /^\/__fake\/receipts\/([^/]+)$/.exec(path);
  if (method === 'GET' && receiptMatch) {
    // The receipt_url of approved payments (a stand-in for Bootpay's receipt page).
    try {
      sendJson(res, 200, fake.receiptPage(decodeURIComponent(receiptMatch[1])));
    } catch (e) {
      if (!(e instanceof FakeHttpError)) throw e;
      sendJson(res, e.status, e.body());
    }
    return;
  }
  switch (`${method} ${behaviorMatch ? '/__fake/billing-keys/:id/behavior' : path}`) {
    case 'GET /__fake/health':
      sendJson(res, 200, { ok: true, url: fake.url, now: fake.now().toISOString(), ...fake.stats() });
      return;
    case 'GET /__fake/ledger':
      sendJson(res, 200, fake.ledger());
      return;
    case 'GET /__fake/cards':
      sendJson(res, 200, { cards: TEST_CARDS });
      return;
    case 'GET /__fake/faults':
      sendJson(res, 200, fake.getFaults());
      return;
    case 'PUT /__fake/faults':
      try {
        fake.setFaults(body as FakeFaults);
      } catch (e) {
        bad((e as Error).message);
        return;
      }
      sendJson(res, 200, fake.getFaults());
      return;
    case 'PUT /__fake/webhook-url': {
      const url = body.url ?? null;
      if (url !== null && typeof url !== 'string') return bad('url must be a string or null');
      try {
        fake.setWebhookUrl(url);
      } catch {
        return bad('url is not a valid URL');
      }
      sendJson(res, 200, { url });
      return;
    }
    case 'PUT /__fake/clock': {
      if (body.advance_ms !== undefined && typeof body.advance_ms !== 'number') return bad('advance_ms must be a number');
      if (body.offset_ms !== undefined && typeof body.offset_ms !== 'number') return bad('offset_ms must be a number');
      const clock = fake.moveClock({ offsetMs: body.offset_ms as number | undefined, advanceMs: body.advance_ms as number | undefined });
      sendJson(res, 200, { now: clock.now.toISOString(), offset_ms: clock.offsetMs });
      return;
    }
    case 'POST /__fake/billing-keys/:id/behavior': {
      const decline = body.decline ?? null;
      if (decline !== null && typeof decline !== 'string') return bad('decline must be a scenario name or null');
      try {
        fake.setKeyBehavior(decodeURIComponent((behaviorMatch as RegExpExecArray)[1]), decline);
      } catch (e) {
        sendJson(res, (e as Error).message.startsWith('no billing key') ? 404 : 400, {
          error_code: 'FAKE_BAD_REQUEST',
          message: (e as Error).message,
        });
        return;
      }
      sendJson(res, 200, { receipt_id: (behaviorMatch as RegExpExecArray)[1], decline });
      return;
    }
    case 'POST /__fake/billing-keys/bulk': {
      const count = body.count;
      if (typeof count !== 'number' || !Number.isInteger(count) || count < 1 || count > 100_000) return bad('count must be an integer from 1 to 100000');
      if (body.card_no !== undefined && typeof body.card_no !== 'string') return bad('card_no must be a string');
      if (body.pg !== undefined && typeof body.pg !== 'string') return bad('pg must be a string');
      try {
        sendJson(res, 200, { keys: fake.issueBillingKeysBulk(count, { cardNo: body.card_no as string | undefined, pg: body.pg as string | undefined }) });
      } catch (e) {
        bad((e as Error).message);
      }
      return;
    }
    case 'POST /__fake/reservations/execute': {
      let now: Date | undefined;
      if (body.now !== undefined && body.now !== null) {
        const parsed = parseIso(body.now);
        if (!parsed) return bad('now must be an ISO-8601 date-time');
        now = parsed;
      }
      const executions = await fake.executeDueReservations(now);
      sendJson(res, 200, { executions });
      return;
    }
    case 'GET /__fake/webhooks/idle':
      await fake.webhooksIdle();
      sendJson(res, 200, { idle: true });
      return;
    case 'POST /__fake/reset':
      fake.reset();
      sendJson(res, 200, { ok: true });
      return;
    default:
      sendJson(res, 404, { error_code: 'ROUTE_NOT_FOUND', message: `no control route ${method} ${path}` });
  }
}
