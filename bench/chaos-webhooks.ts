/**
 * For `npm run chaos`: the webhooks around the service.
 * - startOutboundReceiver: the SaaS backend's end of the outbound webhooks. It checks no signature; it records every
 *   event it gets (id, type, subscription, sequence, created_at) and answers 200, so the bench can compare what
 *   arrived with the service's outbox.
 * - startInboundBalancer: what sits in front of the instances for Bootpay's webhooks (a load balancer): each call goes
 *   to a random instance that is up; with none up, or when the instance does not answer, Bootpay gets a 502 and
 *   retries, as it would.
 */
import { randomInt } from 'node:crypto';
import * as http from 'node:http';
import { freePort, onCleanup } from './lib';

export interface ReceivedEvent {
  id: string;
  type: string;
  subscriptionId: string | null;
  sequence: number | null;
  createdAt: string;
  /** When it arrived (ms since the epoch). */
  at: number;
  signed: boolean;
}

export interface OutboundReceiver {
  url: string;
  events: ReceivedEvent[];
  /** Requests whose body was not an event (not JSON, no id). */
  malformed: number;
  close(): Promise<void>;
}

function listen(server: http.Server): Promise<{ url: string; close(): Promise<void> }> {
  return freePort().then(
    (port) =>
      new Promise((resolve) => {
        server.keepAliveTimeout = 65_000;
        server.listen(port, '127.0.0.1', () => {
          const close = () =>
            new Promise<void>((r) => {
              server.closeAllConnections();
              server.close(() => r());
            });
          onCleanup(close);
          resolve({ url: `http://127.0.0.1:${port}`, close });
        });
      }),
  );
}

function readBody(req: http.IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

export async function startOutboundReceiver(): Promise<OutboundReceiver> {
  const receiver = { events: [] as ReceivedEvent[], malformed: 0 };
  const server = http.createServer((req, res) => {
    void readBody(req).then(
      (raw) => {
        try {
          const e = JSON.parse(raw.toString('utf8')) as { id?: unknown; type?: unknown; subscription_id?: unknown; sequence?: unknown; created_at?: unknown };
          if (typeof e.id !== 'string' || typeof e.type !== 'string') throw new Error('not an event');
          receiver.events.push({
            id: e.id,
            type: e.type,
            subscriptionId: typeof e.subscription_id === 'string' ? e.subscription_id : null,
            sequence: typeof e.sequence === 'number' ? e.sequence : null,
            createdAt: typeof e.created_at === 'string' ? e.created_at : '',
            at: Date.now(),
            signed: typeof req.headers['x-billing-signature'] === 'string',
          });
          res.writeHead(200, { 'content-type': 'application/json' }).end('{"received":true}');
        } catch {
          receiver.malformed++;
          res.writeHead(400).end();
        }
      },
      () => res.destroy(),
    );
  });
  const { url, close } = await listen(server);
  return Object.assign(receiver, { url: `${url}/hooks/billing`, close });
}

export interface InboundBalancerStats {
  calls: number;
  /** Answers of the instances by status (e.g. {"200": 950, "503": 120}). */
  byStatus: Record<string, number>;
  /** Calls answered 502 by the balancer because no instance was up. */
  noneUp: number;
  /** Calls answered 502 by the balancer because the instance did not answer (killed, or not listening yet). */
  noAnswer: number;
}

/** Forwards each request to a random instance among `upstreams()` (their base URLs); 502 when none answers. */
export async function startInboundBalancer(upstreams: () => string[]): Promise<{ url: string; stats: InboundBalancerStats; close(): Promise<void> }> {
  const stats: InboundBalancerStats = { calls: 0, byStatus: {}, noneUp: 0, noAnswer: 0 };
  const server = http.createServer((req, res) => {
    stats.calls++;
    void readBody(req).then(
      async (raw) => {
        const ups = upstreams();
        if (!ups.length) {
          stats.noneUp++;
          res.writeHead(502, { 'content-type': 'application/json' }).end('{"error":"no instance up"}');
          return;
        }
        const target = ups[randomInt(0, ups.length)];
        try {
          const headers: Record<string, string> = { 'content-type': req.headers['content-type'] ?? 'application/json' };
          const up = await fetch(`${target}${req.url ?? '/'}`, {
            method: req.method,
            headers,
            body: raw.length ? raw : undefined,
            signal: AbortSignal.timeout(10_000),
          });
          const body = Buffer.from(await up.arrayBuffer());
          stats.byStatus[up.status] = (stats.byStatus[up.status] ?? 0) + 1;
          res.writeHead(up.status, { 'content-type': up.headers.get('content-type') ?? 'application/json' }).end(body);
        } catch {
          stats.noAnswer++;
          if (!res.headersSent) res.writeHead(502, { 'content-type': 'application/json' }).end('{"error":"the instance did not answer"}');
          else res.destroy();
        }
      },
      () => res.destroy(),
    );
  });
  const { url, close } = await listen(server);
  return { url, stats, close };
}
