import { Inject, Injectable, Logger, OnApplicationBootstrap, OnModuleDestroy } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { createHash } from 'node:crypto';
import { DataSource } from 'typeorm';
import { Clock } from '../common/clock';
import { returnedRows } from '../common/db-errors';
import { SecretBox } from '../common/secret-box';
import { Runtime, RUNTIME } from '../config/runtime';
import { PrivateAddressError } from './address-guard';
import { postWebhook } from './webhook-http';
import { sign, SIGNATURE_HEADER } from './webhook-signature';

/** Attempts before a delivery is given up (then an admin may re-send it). */
export const MAX_DELIVERY_ATTEMPTS = 12;
/** Deliveries of one endpoint claimed at once by one instance. */
export const ENDPOINT_CLAIM_LIMIT = 10;
/**
 * What the delivery list shows of any failure: the same words whether the port was closed, the host refused, the
 * answer was late or not 2xx, so the list cannot be used to map a network. The detail goes to the service's log.
 */
export const DELIVERY_FAILED = 'not delivered: no 2xx answer within the time-out';

/** Delay before attempt n+1 after n failed attempts: 30 s doubling, at most 6 hours. */
export function backoffMs(failedAttempts: number): number {
  return Math.min(30_000 * 2 ** Math.max(0, failedAttempts - 1), 6 * 60 * 60 * 1000);
}

/**
 * How long a claim holds its deliveries: longer than the longest wait of any of them. One endpoint's claimed
 * deliveries (at most ENDPOINT_CLAIM_LIMIT) go through its lanes; in the worst case all in one lane, one after
 * another, each up to the time-out.
 */
export function leaseMs(timeoutMs: number): number {
  return ENDPOINT_CLAIM_LIMIT * timeoutMs + 10_000;
}

interface Claimed {
  id: string;
  endpoint_id: string;
  event_id: string;
  attempts: number;
}

/**
 * Delivers the outbox. Every instance polls; a delivery is claimed with SKIP LOCKED and leased for longer than it can
 * take, so each is sent by one instance at a time. A 2xx answer delivers it; anything else is retried with backoff.
 *
 * Endpoints do not wait for each other: each has its own lanes (OUTBOUND_WEBHOOK_ENDPOINT_CONCURRENCY requests in
 * flight at most), an endpoint still busy from an earlier poll is not claimed for again, and a poll does not wait for
 * the deliveries it started. One subscription's events to one endpoint go through the same lane, in event order.
 * Inactive endpoints are skipped: their deliveries wait, unsent, until the endpoint is active again.
 */
@Injectable()
export class WebhookDispatcher implements OnApplicationBootstrap, OnModuleDestroy {
  private readonly logger = new Logger(WebhookDispatcher.name);
  private timer?: NodeJS.Timeout;
  private claiming = false;
  /** Claims of this instance go one at a time (a poll and a processDue() call may meet). */
  private claimLock: Promise<void> = Promise.resolve();
  /** Endpoints with deliveries in flight from this instance. */
  private readonly busy = new Map<string, number>();
  private readonly inFlight = new Set<Promise<void>>();

  constructor(
    @InjectDataSource() private readonly db: DataSource,
    private readonly clock: Clock,
    private readonly box: SecretBox,
    @Inject(RUNTIME) private readonly runtime: Runtime,
  ) {}

  onApplicationBootstrap(): void {
    const every = this.runtime.config.outboundWebhookPollMs;
    if (every > 0) this.timer = setInterval(() => void this.tick(), every);
  }

  async onModuleDestroy(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    await Promise.allSettled([...this.inFlight]);
  }

  private async tick(): Promise<void> {
    if (this.claiming) return;
    try {
      await this.start();
    } catch (err) {
      this.logger.warn({ message: 'webhook dispatch failed', error: err instanceof Error ? err.message : String(err) });
    }
  }

  /** Sends every delivery that is due now and waits for them. Returns how many were attempted. */
  async processDue(limit = 100): Promise<number> {
    const { count, done } = await this.start(limit);
    await done;
    return count;
  }

  /** Claims due deliveries of endpoints not busy in this instance and starts sending them; does not wait for them. */
  private async start(limit = 100): Promise<{ count: number; done: Promise<void> }> {
    const previous = this.claimLock;
    let release!: () => void;
    this.claimLock = new Promise<void>((r) => (release = r));
    this.claiming = true;
    let claimed: Claimed[];
    try {
      await previous;
      claimed = await this.claim(limit);
    } finally {
      this.claiming = false;
      release();
    }
    if (!claimed.length) return { count: 0, done: Promise.resolve() };
    const events = new Map<string, { payload: { id: string; type: string; subscription_id: string | null }; seq: number }>();
    const rows: { id: string; payload: { id: string; type: string; subscription_id: string | null }; seq: string }[] = await this.db.query(
      `SELECT id, payload, seq FROM webhook_events WHERE id = ANY($1)`,
      [[...new Set(claimed.map((c) => c.event_id))]],
    );
    for (const r of rows) events.set(r.id, { payload: r.payload, seq: Number(r.seq) });
    claimed.sort((a, b) => events.get(a.event_id)!.seq - events.get(b.event_id)!.seq);
    const endpoints = new Map<string, { url: string; secret: string }>();
    const eps: { id: string; url: string; secret_ciphertext: string }[] = await this.db.query(
      `SELECT id, url, secret_ciphertext FROM webhook_endpoints WHERE id = ANY($1)`,
      [[...new Set(claimed.map((c) => c.endpoint_id))]],
    );
    for (const e of eps) endpoints.set(e.id, { url: e.url, secret: this.box.decrypt(e.secret_ciphertext, e.id) });

    const lanesPerEndpoint = this.runtime.config.outboundWebhooks.endpointConcurrency;
    const lanes = new Map<string, Claimed[]>();
    for (const c of claimed) {
      const subscription = events.get(c.event_id)!.payload.subscription_id ?? c.event_id;
      const lane = `${c.endpoint_id}/${laneOf(subscription, lanesPerEndpoint)}`;
      lanes.set(lane, [...(lanes.get(lane) ?? []), c]);
    }
    for (const c of claimed) this.busy.set(c.endpoint_id, (this.busy.get(c.endpoint_id) ?? 0) + 1);
    const work = [...lanes.values()].map(async (list) => {
      for (const d of list) {
        try {
          await this.deliver(d, endpoints.get(d.endpoint_id)!, events.get(d.event_id)!.payload);
        } catch (err) {
          // The lease runs out and the delivery is claimed again.
          this.logger.warn({ message: 'webhook delivery not recorded', delivery_id: d.id, error: err instanceof Error ? err.message : String(err) });
        } finally {
          const left = (this.busy.get(d.endpoint_id) ?? 1) - 1;
          if (left > 0) this.busy.set(d.endpoint_id, left);
          else this.busy.delete(d.endpoint_id);
        }
      }
    });
    const done = Promise.all(work).then(() => undefined);
    this.inFlight.add(done);
    void done.finally(() => this.inFlight.delete(done));
    return { count: claimed.length, done };
  }

  /**
   * Leases due deliveries, oldest event first: at most ENDPOINT_CLAIM_LIMIT per endpoint, none of an inactive
   * endpoint or of one this instance is still sending to.
   */
  private async claim(limit: number): Promise<Claimed[]> {
    const now = this.clock.now();
    return returnedRows<Claimed>(
      await this.db.query(
        `UPDATE webhook_deliveries d SET next_attempt_at = $2, updated_at = $1
         FROM (
           SELECT r.id FROM (
             SELECT c.id, c.seq, row_number() OVER (PARTITION BY c.endpoint_id ORDER BY c.seq) AS n
             FROM (
               SELECT w.id, w.endpoint_id, e.seq FROM webhook_deliveries w
               JOIN webhook_events e ON e.id = w.event_id
               JOIN webhook_endpoints ep ON ep.id = w.endpoint_id AND ep.active
               WHERE w.status = 'pending' AND w.next_attempt_at <= $1 AND NOT (w.endpoint_id = ANY($4::uuid[]))
               ORDER BY e.seq LIMIT $3 FOR UPDATE OF w SKIP LOCKED
             ) c
           ) r WHERE r.n <= $5 ORDER BY r.seq
         ) pick
         WHERE d.id = pick.id
         RETURNING d.id, d.endpoint_id, d.event_id, d.attempts`,
        [now, new Date(now.getTime() + leaseMs(this.runtime.config.outboundWebhooks.timeoutMs)), limit, [...this.busy.keys()], ENDPOINT_CLAIM_LIMIT],
      ),
    );
  }

  private async deliver(d: Claimed, ep: { url: string; secret: string }, payload: { id: string; type: string }): Promise<void> {
    const body = JSON.stringify(payload);
    // Receivers check the timestamp against their own (real) clock: never the test clock.
    const timestamp = Math.floor(Date.now() / 1000);
    const { timeoutMs, allowPrivate } = this.runtime.config.outboundWebhooks;
    let status: number | null = null;
    let error: string | null = null;
    try {
      status = await postWebhook(
        ep.url,
        {
          'Content-Type': 'application/json',
          [SIGNATURE_HEADER]: sign(ep.secret, timestamp, body),
          'X-Billing-Event-Id': payload.id,
          'X-Billing-Event-Type': payload.type,
        },
        body,
        { timeoutMs, allowPrivate },
      );
    } catch (err) {
      error =
        err instanceof PrivateAddressError
          ? err.message
          : err instanceof Error
            ? `${err.name}: ${(err as NodeJS.ErrnoException).code ?? err.message}`
            : 'request failed';
    }
    const now = this.clock.now();
    const attempts = d.attempts + 1;
    if (status !== null && status >= 200 && status < 300) {
      await this.db.query(
        `UPDATE webhook_deliveries SET status = 'delivered', attempts = $2, last_status_code = $3, last_error = NULL, delivered_at = $4, next_attempt_at = NULL, updated_at = $4 WHERE id = $1`,
        [d.id, attempts, status, now],
      );
      return;
    }
    this.logger.warn({
      message: 'webhook not delivered',
      delivery_id: d.id,
      endpoint_id: d.endpoint_id,
      attempt: attempts,
      status_code: status,
      error: error?.slice(0, 300),
    });
    const giveUp = attempts >= MAX_DELIVERY_ATTEMPTS;
    await this.db.query(
      `UPDATE webhook_deliveries SET status = $2, attempts = $3, last_status_code = NULL, last_error = $4, next_attempt_at = $5, updated_at = $6 WHERE id = $1`,
      [d.id, giveUp ? 'failed' : 'pending', attempts, DELIVERY_FAILED, giveUp ? null : new Date(now.getTime() + backoffMs(attempts)), now],
    );
  }
}

/** The lane (0 … lanes-1) of a subscription's events: the same one every time, so they go in order. */
function laneOf(key: string, lanes: number): number {
  return createHash('sha1').update(key).digest().readUInt32BE(0) % lanes;
}
