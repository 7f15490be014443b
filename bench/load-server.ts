/**
 * bench/server.ts (the service as one process, like main.ts) with two gauges for bench:load, read over the IPC
 * channel so nothing is added to the service's HTTP surface or its SQL:
 * - the event loop's delay (perf_hooks monitorEventLoopDelay, 10 ms resolution): how long work waited for the one
 *   thread that both the API and a charge run share;
 * - the database pool: how long each `pool.connect` waited for a connection (pg-pool, as TypeORM uses it) and how
 *   many were waiting, sampled every 20 ms.
 * - HTTP requests received, and those not answered yet (`{ type: 'in-flight' }`, without resetting anything);
 * - SQL round trips (pg's Client.prototype.query calls, bench/lib.ts QueryCounter) and the most frequent statements.
 * The orchestrator sends `{ type: 'stats' }`; the answer holds the figures since the previous request.
 */
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { QueryCounter } from './lib';

interface PoolLike {
  connect: (...args: unknown[]) => unknown;
  waitingCount?: number;
  totalCount?: number;
  idleCount?: number;
}

const loop = monitorEventLoopDelay({ resolution: 10 });
loop.enable();

const counter = new QueryCounter();
counter.install([require('pg')]);
counter.on = true;

// HTTP requests the service received (its own count: autocannon leaves out those in flight when a phase ends).
let requests = 0;
const http = require('node:http') as { Server: { prototype: { emit: (event: string, ...args: unknown[]) => boolean } } };
const emit = http.Server.prototype.emit;
// Requests not answered yet (the orchestrator waits for none before the next phase).
let inFlight = 0;
http.Server.prototype.emit = function (this: unknown, event: string, ...args: unknown[]) {
  if (event === 'request') {
    requests++;
    inFlight++;
    (args[1] as { once(ev: string, fn: () => void): void }).once('close', () => inFlight--);
  }
  return emit.call(this, event, ...args);
};

const pools = new Set<PoolLike>();
let waits: number[] = [];
let waitingSamples = 0;
let waitingSum = 0;
let waitingMax = 0;
let busySum = 0;

const pg = require('pg') as { Pool: { prototype: PoolLike } };
const proto = pg.Pool.prototype;
const original = proto.connect;
proto.connect = function (this: PoolLike, ...args: unknown[]) {
  pools.add(this);
  const t0 = performance.now();
  const cb = args[0];
  if (typeof cb === 'function') {
    return original.call(this, (err: unknown, client: unknown, release: unknown) => {
      waits.push(performance.now() - t0);
      (cb as (...a: unknown[]) => void)(err, client, release);
    });
  }
  return (original.apply(this, args) as Promise<unknown>).then((client) => {
    waits.push(performance.now() - t0);
    return client;
  });
};

setInterval(() => {
  let waiting = 0;
  let busy = 0;
  for (const p of pools) {
    waiting += p.waitingCount ?? 0;
    busy += (p.totalCount ?? 0) - (p.idleCount ?? 0);
  }
  waitingSamples++;
  waitingSum += waiting;
  busySum += busy;
  if (waiting > waitingMax) waitingMax = waiting;
}, 20).unref();

const ms = (ns: number) => Math.round((ns / 1e6) * 10) / 10;
const pct = (sorted: number[], p: number) => (sorted.length ? sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] : 0);
const r1 = (x: number) => Math.round(x * 10) / 10;

process.on('message', (m: { type?: string }) => {
  if (m?.type === 'in-flight') process.send?.({ type: 'in-flight', inFlight });
  if (m?.type !== 'stats') return;
  const sorted = waits.sort((a, b) => a - b);
  process.send?.({
    type: 'stats',
    requests,
    eventLoopDelayMs: { mean: ms(loop.mean), p50: ms(loop.percentile(50)), p99: ms(loop.percentile(99)), max: ms(loop.max) },
    pool: {
      acquires: sorted.length,
      waitMs: {
        mean: r1(sorted.reduce((a, b) => a + b, 0) / Math.max(1, sorted.length)),
        p50: r1(pct(sorted, 50)),
        p99: r1(pct(sorted, 99)),
        max: r1(sorted[sorted.length - 1] ?? 0),
      },
      waitingAvg: r1(waitingSum / Math.max(1, waitingSamples)),
      waitingMax,
      inUseAvg: r1(busySum / Math.max(1, waitingSamples)),
    },
    sql: {
      roundTrips: counter.stats.roundTrips,
      top: [...counter.stats.byText.entries()]
        .sort((a, b) => b[1] - a[1])
        .slice(0, 12)
        .map(([text, calls]) => ({ calls, sql: text })),
    },
  });
  counter.reset();
  requests = 0;
  loop.reset();
  waits = [];
  waitingSamples = waitingSum = waitingMax = busySum = 0;
});

require('./server');
