import { Inject, Injectable, Logger, OnApplicationBootstrap, OnModuleDestroy } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { DataSource } from 'typeorm';
import { Clock } from '../common/clock';
import { returnedRows } from '../common/db-errors';
import { SecretBox } from '../common/secret-box';
import { Runtime, RUNTIME } from '../runtime';
import { sign, SIGNATURE_HEADER } from './webhook-signature';

/** Attempts before a delivery is given up (then an admin may re-send it). */
export const MAX_DELIVERY_ATTEMPTS = 12;
const LEASE_MS = 60_000;
const TIMEOUT_MS = 5_000;

/** Delay before attempt n+1 after n failed attempts: 30 s doubling, at most 6 hours. */
export function backoffMs(failedAttempts: number): number {
  return Math.min(30_000 * 2 ** Math.max(0, failedAttempts - 1), 6 * 60 * 60 * 1000);
}

/**
 * Delivers the outbox. Every instance polls; a delivery is claimed with SKIP LOCKED and leased for a minute, so each
 * is sent by one instance at a time. A 2xx answer delivers it; anything else is retried with backoff.
 */
@Injectable()
export class WebhookDispatcher implements OnApplicationBootstrap, OnModuleDestroy {
  private readonly logger = new Logger(WebhookDispatcher.name);
  private timer?: NodeJS.Timeout;
  private busy = false;

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

  onModuleDestroy(): void {
    if (this.timer) clearInterval(this.timer);
  }

  private async tick(): Promise<void> {
    if (this.busy) return;
    this.busy = true;
    try {
      await this.processDue();
    } catch (err) {
      this.logger.warn({ message: 'webhook dispatch failed', error: err instanceof Error ? err.message : String(err) });
    } finally {
      this.busy = false;
    }
  }

  /** Sends every delivery that is due now, oldest event first. Returns how many were attempted. */
  async processDue(limit = 100): Promise<number> {
    const now = this.clock.now();
    const claimed = returnedRows<{ id: string; endpoint_id: string; event_id: string; attempts: number }>(
      await this.db.query(
        `UPDATE webhook_deliveries d SET next_attempt_at = $2, updated_at = $1
         WHERE d.id IN (
           SELECT w.id FROM webhook_deliveries w JOIN webhook_events e ON e.id = w.event_id
           WHERE w.status = 'pending' AND w.next_attempt_at <= $1
           ORDER BY e.seq LIMIT $3 FOR UPDATE OF w SKIP LOCKED)
         RETURNING d.id, d.endpoint_id, d.event_id, d.attempts`,
        [now, new Date(now.getTime() + LEASE_MS), limit],
      ),
    );
    if (!claimed.length) return 0;
    const events = new Map<string, { payload: unknown; seq: number }>();
    const rows: { id: string; payload: unknown; seq: string }[] = await this.db.query(`SELECT id, payload, seq FROM webhook_events WHERE id = ANY($1)`, [
      [...new Set(claimed.map((c) => c.event_id))],
    ]);
    for (const r of rows) events.set(r.id, { payload: r.payload, seq: Number(r.seq) });
    claimed.sort((a, b) => events.get(a.event_id)!.seq - events.get(b.event_id)!.seq);
    const endpoints = new Map<string, { url: string; secret: string }>();
    const eps: { id: string; url: string; secret_ciphertext: string }[] = await this.db.query(
      `SELECT id, url, secret_ciphertext FROM webhook_endpoints WHERE id = ANY($1)`,
      [[...new Set(claimed.map((c) => c.endpoint_id))]],
    );
    for (const e of eps) endpoints.set(e.id, { url: e.url, secret: this.box.decrypt(e.secret_ciphertext, e.id) });
    // One endpoint's deliveries go one after another, in event order.
    const byEndpoint = new Map<string, typeof claimed>();
    for (const c of claimed) byEndpoint.set(c.endpoint_id, [...(byEndpoint.get(c.endpoint_id) ?? []), c]);
    await Promise.all(
      [...byEndpoint.entries()].map(async ([endpointId, list]) => {
        const ep = endpoints.get(endpointId)!;
        for (const d of list) await this.deliver(d, ep, events.get(d.event_id)!.payload);
      }),
    );
    return claimed.length;
  }

  private async deliver(d: { id: string; attempts: number }, ep: { url: string; secret: string }, payload: unknown): Promise<void> {
    const body = JSON.stringify(payload);
    const timestamp = Math.floor(this.clock.now().getTime() / 1000);
    let status: number | null = null;
    let error: string | null = null;
    try {
      const res = await fetch(ep.url, {
        method: 'POST',
        headers: {
          'Content-Type': 'application/json',
          [SIGNATURE_HEADER]: sign(ep.secret, timestamp, body),
          'X-Billing-Event-Id': (payload as { id: string }).id,
          'X-Billing-Event-Type': (payload as { type: string }).type,
        },
        body,
        redirect: 'manual',
        signal: AbortSignal.timeout(TIMEOUT_MS),
      });
      status = res.status;
      await res.body?.cancel().catch(() => undefined);
    } catch (err) {
      error = err instanceof Error ? err.message.slice(0, 500) : 'request failed';
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
    const giveUp = attempts >= MAX_DELIVERY_ATTEMPTS;
    await this.db.query(
      `UPDATE webhook_deliveries SET status = $2, attempts = $3, last_status_code = $4, last_error = $5, next_attempt_at = $6, updated_at = $7 WHERE id = $1`,
      [d.id, giveUp ? 'failed' : 'pending', attempts, status, error ?? `HTTP ${status}`, giveUp ? null : new Date(now.getTime() + backoffMs(attempts)), now],
    );
  }
}
