/**
 * Shared plumbing of the benchmarks (bench/charge.ts, bench/api.ts, bench/chaos.ts, bench/scale.ts, bench/load.ts,
 * bench/bigtable.ts): settings from the environment, cleanup at exit, the fake Bootpay's HTTP API, set-based seeding,
 * the exactly-once check, a pg query counter, an RSS sampler, CPU readings from /proc, API load with autocannon and
 * the report's tables and results file. The processes they start (the fake Bootpay, service processes, PostgreSQL)
 * are in bench/processes.ts. Nothing here changes the service.
 */
import 'reflect-metadata';
import type autocannon from 'autocannon';
import { randomBytes, randomUUID } from 'node:crypto';
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { cpus, totalmem } from 'node:os';
import { join, resolve } from 'node:path';
import { Client } from 'pg';
import { SecretBox } from '../src/common/secret-box';
import { nextPeriod, PlanTerms } from '../src/ledger/transitions';

/** dist/bench/<file>.js → the repository root. */
export const ROOT = resolve(__dirname, '..', '..');
export const DIST = join(ROOT, 'dist');

// ------------------------------------------------------------------------------------------------ settings

export function intEnv(name: string, def: number, min = 0, max = Number.MAX_SAFE_INTEGER): number {
  const raw = process.env[name];
  if (raw === undefined || raw.trim() === '') return def;
  const n = Number(raw.replace(/_/g, ''));
  if (!Number.isInteger(n) || n < min || n > max) {
    throw new Error(`${name} must be a whole number from ${min} to ${max}, got "${raw}"`);
  }
  return n;
}

export function numEnv(name: string, def: number, min: number, max: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw.trim() === '') return def;
  const n = Number(raw);
  if (!Number.isFinite(n) || n < min || n > max) throw new Error(`${name} must be a number from ${min} to ${max}, got "${raw}"`);
  return n;
}

export function listEnv(name: string, def: number[]): number[] {
  const raw = process.env[name];
  if (raw === undefined || raw.trim() === '') return def;
  const out = raw.split(',').map((s) => Number(s.trim().replace(/_/g, '')));
  if (!out.length || out.some((n) => !Number.isInteger(n) || n < 1 || n > 1_000_000)) {
    throw new Error(`${name} must be a comma-separated list of whole numbers from 1 to 1000000, got "${raw}"`);
  }
  return out;
}

export function boolEnv(name: string, def: boolean): boolean {
  const raw = process.env[name];
  if (raw === undefined || raw.trim() === '') return def;
  if (/^(1|true|yes|on)$/i.test(raw)) return true;
  if (/^(0|false|no|off)$/i.test(raw)) return false;
  throw new Error(`${name} must be true or false, got "${raw}"`);
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

export function freePort(): Promise<number> {
  return new Promise((res, rej) => {
    const s = createServer();
    s.once('error', rej);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => res(port));
    });
  });
}

export function log(msg: string): void {
  process.stderr.write(`[${new Date().toISOString().slice(11, 19)}] ${msg}\n`);
}

// ------------------------------------------------------------------------------------------------ cleanup

const cleanups: (() => Promise<void> | void)[] = [];
let cleaning: Promise<void> | null = null;

/** Registers work to do at exit (children to stop, the embedded database, temp dirs); last registered runs first. */
export function onCleanup(fn: () => Promise<void> | void): void {
  cleanups.push(fn);
}

export function cleanup(): Promise<void> {
  if (!cleaning) {
    cleaning = (async () => {
      for (const fn of cleanups.reverse()) {
        try {
          await fn();
        } catch {
          /* best effort */
        }
      }
    })();
  }
  return cleaning;
}

/**
 * Runs an orchestrator: bounded by `deadlineSeconds` (then everything started is stopped and the exit is 3), stops
 * what it started on SIGINT/SIGTERM, and exits with the code `main` answers.
 */
export function runMain(main: () => Promise<number>, deadlineSeconds: number): void {
  const deadline = setTimeout(() => {
    log(`deadline of ${deadlineSeconds} s reached: stopping`);
    void cleanup().then(() => process.exit(3));
  }, deadlineSeconds * 1000);
  deadline.unref();
  for (const sig of ['SIGINT', 'SIGTERM'] as const) {
    process.once(sig, () => {
      log(`${sig}: stopping`);
      void cleanup().then(() => process.exit(130));
    });
  }
  main().then(
    async (code) => {
      await cleanup();
      process.exit(code);
    },
    async (err: unknown) => {
      log(`failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
      await cleanup();
      process.exit(1);
    },
  );
}

// ------------------------------------------------------------------------------------------------ fake Bootpay

export const FAKE_CREDENTIALS = { clientKey: 'ck_test_fake', secretKey: 'sk_test_fake' };

export async function fakeJson<T>(fakeUrl: string, method: string, path: string, body?: unknown): Promise<T> {
  const res = await fetch(`${fakeUrl}${path}`, {
    method,
    headers: body === undefined ? undefined : { 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  if (!res.ok) throw new Error(`fake ${method} ${path}: HTTP ${res.status} ${text.slice(0, 200)}`);
  return JSON.parse(text) as T;
}

export interface FakeLedgerLite {
  charges: { receipt_id: string; order_id: string; status: number; price: number }[];
  failed_charges: { order_id: string; error_code: string }[];
}

export function fakeLedger(fakeUrl: string): Promise<FakeLedgerLite> {
  return fakeJson<FakeLedgerLite>(fakeUrl, 'GET', '/__fake/ledger');
}

/** Billing keys issued at the fake in bulk (POST /__fake/billing-keys/bulk), 10,000 per request. */
export async function bulkKeys(fakeUrl: string, count: number): Promise<{ billing_key: string; receipt_id: string }[]> {
  const out: { billing_key: string; receipt_id: string }[] = [];
  while (out.length < count) {
    const n = Math.min(10_000, count - out.length);
    const r = await fakeJson<{ keys: { billing_key: string; receipt_id: string }[] }>(fakeUrl, 'POST', '/__fake/billing-keys/bulk', { count: n });
    out.push(...r.keys);
  }
  return out;
}

// ------------------------------------------------------------------------------------------------ seeding

export interface SeedResult {
  planId: string;
  subscriptionIds: string[];
  customerIds: string[];
  billingKeyIds: string[];
  periodStart: Date;
  seconds: number;
}

const PLAN_TERMS = { name: 'Bench Pro', amount: 11_000, taxFree: 0, interval: 'month' as const, intervalCount: 1 };
const TZ = 'Asia/Seoul';

/**
 * Seeds `n` due subscriptions straight into the database with set-based SQL: one monthly plan, `n` customers, `n`
 * billing keys (issued at the fake in bulk, stored encrypted with the service's SecretBox, the row id as associated
 * data, exactly as BillingKeysService.create stores them) and `n` active subscriptions whose paid period ended in
 * the past, so each is due for exactly one charge (period index 1).
 */
export async function seedDueSubscriptions(
  databaseUrl: string,
  fakeUrl: string,
  encryptionKey: Buffer,
  n: number,
  opts: { trialDays?: number; withSubscriptions?: boolean } = {},
): Promise<SeedResult> {
  const started = performance.now();
  const keys = await bulkKeys(fakeUrl, n);
  const box = new SecretBox(encryptionKey);
  const now = new Date();
  // Anchored 40 days ago: period 0 is over, period 1 (starting at its end) is due now.
  const anchor = new Date(now.getTime() - 40 * 86_400_000);
  anchor.setUTCMilliseconds(0);
  const planTerms: PlanTerms = { interval: PLAN_TERMS.interval, intervalCount: PLAN_TERMS.intervalCount };
  const p0 = nextPeriod({ anchorAt: anchor, periodIndex: -1 }, planTerms, TZ);
  const p1 = nextPeriod({ anchorAt: anchor, periodIndex: 0 }, planTerms, TZ);
  if (p1.start.getTime() > now.getTime()) throw new Error('seeding: period 1 is not due yet');

  const c = new Client({ connectionString: databaseUrl });
  await c.connect();
  try {
    const [{ id: planId }] = (
      await c.query(
        `INSERT INTO plans (name, amount, tax_free_amount, currency, interval, interval_count, trial_days, charge_mode, active, created_at, updated_at)
         VALUES ($1, $2, $3, 'KRW', $4, $5, $6, 'scheduler', true, $7, $7) RETURNING id`,
        [PLAN_TERMS.name, PLAN_TERMS.amount, PLAN_TERMS.taxFree, PLAN_TERMS.interval, PLAN_TERMS.intervalCount, opts.trialDays ?? 0, now],
      )
    ).rows;
    const subscriptionIds: string[] = [];
    const allCustomerIds: string[] = [];
    const allKeyIds: string[] = [];
    const CHUNK = 20_000;
    for (let off = 0; off < n; off += CHUNK) {
      const part = keys.slice(off, off + CHUNK);
      const customerIds = part.map(() => randomUUID());
      const keyIds = part.map(() => randomUUID());
      const cipher = part.map((k, i) => box.encrypt(k.billing_key, keyIds[i]));
      const fingerprints = part.map((k) => box.fingerprint(k.billing_key));
      const receipts = part.map((k) => k.receipt_id);
      const subIds = part.map(() => randomUUID());
      await c.query('BEGIN');
      await c.query(
        `INSERT INTO customers (id, external_id, name, email, metadata, created_at, updated_at)
         SELECT id, 'bench_' || ($2::int + ord), 'Bench customer ' || ($2::int + ord), 'bench' || ($2::int + ord) || '@example.com', '{}'::jsonb, $3, $3
         FROM unnest($1::uuid[]) WITH ORDINALITY AS t(id, ord)`,
        [customerIds, off, now],
      );
      await c.query(
        `INSERT INTO billing_keys (id, customer_id, billing_key_ciphertext, billing_key_fingerprint, bootpay_receipt_id, pg, method,
           card_company, card_company_code, card_no_masked, card_type, status, issued_at, expires_at, created_at, updated_at)
         SELECT id, customer_id, ct, fp, receipt, 'nicepay', '카드자동', '신한', '01', '424242******4242', '0', 'active', $6::timestamptz, $6::timestamptz + interval '3 years', $6::timestamptz, $6::timestamptz
         FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::text[], $5::text[]) AS t(id, customer_id, ct, fp, receipt)`,
        [keyIds, customerIds, cipher, fingerprints, receipts, now],
      );
      if (opts.withSubscriptions !== false)
        await c.query(
          `INSERT INTO subscriptions (id, customer_id, plan_id, billing_key_id, status, anchor_at, period_index, current_period_start,
           current_period_end, next_charge_at, cancel_at_period_end, dunning_attempts, metadata, event_seq, created_at, updated_at)
         SELECT id, customer_id, $4, key_id, 'active', $5, 0, $6, $7, $7, false, 0, '{}'::jsonb, 0, $8, $8
         FROM unnest($1::uuid[], $2::uuid[], $3::uuid[]) AS t(id, customer_id, key_id)`,
          [subIds, customerIds, keyIds, planId, anchor, p0.start, p0.end, now],
        );
      await c.query('COMMIT');
      if (opts.withSubscriptions !== false) subscriptionIds.push(...subIds);
      allCustomerIds.push(...customerIds);
      allKeyIds.push(...keyIds);
    }
    await c.query('ANALYZE');
    return {
      planId,
      subscriptionIds,
      customerIds: allCustomerIds,
      billingKeyIds: allKeyIds,
      periodStart: p1.start,
      seconds: (performance.now() - started) / 1000,
    };
  } finally {
    await c.end();
  }
}

/** The subscription id inside an order id made by orderIdFor (`s<uuid without dashes>-<period start s>-p<attempt>`). */
export function subscriptionOfOrderId(orderId: string): { subscriptionId: string; periodStart: number } | null {
  const m = /^s([0-9a-f]{32})-(\d+)-[px]\d+$/.exec(orderId);
  if (!m) return null;
  const h = m[1];
  return { subscriptionId: `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`, periodStart: Number(m[2]) };
}

export interface ChargeCheck {
  subscriptions: number;
  fakeCharges: number;
  chargedOnce: number;
  doubles: number;
  lost: number;
  localDone: number;
  doneWithoutFakeCharge: number;
  fakeChargeWithoutDone: number;
  openAttempts: number;
  ok: boolean;
}

/**
 * Every subscription charged exactly once at the fake for its due period, and the local DONE payments equal the
 * fake's charges one to one (by order_id).
 */
export async function checkChargedOnce(databaseUrl: string, fakeUrl: string, subscriptionIds: string[], periodStart: Date): Promise<ChargeCheck> {
  const ledger = await fakeLedger(fakeUrl);
  const periodSec = Math.floor(periodStart.getTime() / 1000);
  const perSub = new Map<string, number>();
  const fakeOrders = new Set<string>();
  for (const ch of ledger.charges) {
    fakeOrders.add(ch.order_id);
    const o = subscriptionOfOrderId(ch.order_id);
    if (!o || o.periodStart !== periodSec) continue;
    perSub.set(o.subscriptionId, (perSub.get(o.subscriptionId) ?? 0) + 1);
  }
  const c = new Client({ connectionString: databaseUrl });
  await c.connect();
  let done: { order_id: string }[];
  let open: number;
  try {
    done = (await c.query(`SELECT order_id FROM payments WHERE status = 'DONE'`)).rows;
    open = Number((await c.query(`SELECT count(*)::int AS n FROM payments WHERE status IN ('IN_PROGRESS', 'UNKNOWN', 'READY')`)).rows[0].n);
  } finally {
    await c.end();
  }
  const doneOrders = new Set(done.map((r) => r.order_id));
  let chargedOnce = 0;
  let doubles = 0;
  let lost = 0;
  for (const id of subscriptionIds) {
    const k = perSub.get(id) ?? 0;
    if (k === 1) chargedOnce++;
    else if (k > 1) doubles++;
    else lost++;
  }
  let doneWithoutFakeCharge = 0;
  for (const o of doneOrders) if (!fakeOrders.has(o)) doneWithoutFakeCharge++;
  let fakeChargeWithoutDone = 0;
  for (const o of fakeOrders) if (!doneOrders.has(o)) fakeChargeWithoutDone++;
  return {
    subscriptions: subscriptionIds.length,
    fakeCharges: ledger.charges.length,
    chargedOnce,
    doubles,
    lost,
    localDone: done.length,
    doneWithoutFakeCharge,
    fakeChargeWithoutDone,
    openAttempts: open,
    ok: doubles === 0 && lost === 0 && doneWithoutFakeCharge === 0 && fakeChargeWithoutDone === 0 && ledger.charges.length === subscriptionIds.length,
  };
}

// ------------------------------------------------------------------------------------------------ measuring

export interface QueryStats {
  roundTrips: number;
  statements: number;
  byKind: Record<string, number>;
  byText: Map<string, number>;
}

function statementCount(text: string, hasValues: boolean): number {
  if (hasValues) return 1; // the extended protocol carries exactly one statement
  // The simple protocol may carry several; count the non-empty parts outside quotes.
  let n = 0;
  let inStr = false;
  let seen = false;
  for (let i = 0; i < text.length; i++) {
    const ch = text[i];
    if (ch === "'") inStr = !inStr;
    else if (ch === ';' && !inStr) {
      if (seen) n++;
      seen = false;
    } else if (!inStr && !/\s/.test(ch)) seen = true;
  }
  return n + (seen ? 1 : 0) || 1;
}

function normalise(text: string): string {
  return text.replace(/\s+/g, ' ').trim().slice(0, 110);
}

/**
 * Wraps `Client.prototype.query` of every copy of `pg` it is given, counting calls (each call is one round trip: pg
 * sends one query and waits for its answer before the next on that connection) and statements, only while `on`.
 */
export class QueryCounter {
  on = false;
  /** Called with each counted statement's text (for timelines). */
  onQuery?: (text: string) => void;
  stats: QueryStats = { roundTrips: 0, statements: 0, byKind: {}, byText: new Map() };

  install(pgModules: { Client: { prototype: { query: (...args: unknown[]) => unknown } } }[]): void {
    for (const mod of pgModules) {
      const proto = mod.Client.prototype as { query: (...args: unknown[]) => unknown; __benchCounted?: boolean };
      if (proto.__benchCounted) continue;
      proto.__benchCounted = true;
      const original = proto.query;
      // eslint-disable-next-line @typescript-eslint/no-this-alias
      const counter = this;
      proto.query = function (this: unknown, ...args: unknown[]) {
        if (counter.on) {
          const cfg = args[0] as string | { text?: string; values?: unknown[] } | undefined;
          const text = typeof cfg === 'string' ? cfg : (cfg?.text ?? '');
          const values = typeof cfg === 'object' && cfg?.values ? cfg.values : Array.isArray(args[1]) ? args[1] : undefined;
          const st = statementCount(text, !!values && values.length > 0);
          counter.stats.roundTrips++;
          counter.stats.statements += st;
          const kind = (/^\s*(\w+)/.exec(text)?.[1] ?? '?').toUpperCase();
          counter.stats.byKind[kind] = (counter.stats.byKind[kind] ?? 0) + st;
          const key = normalise(text);
          counter.stats.byText.set(key, (counter.stats.byText.get(key) ?? 0) + 1);
          counter.onQuery?.(text);
        }
        return original.apply(this, args);
      };
    }
  }

  reset(): void {
    this.stats = { roundTrips: 0, statements: 0, byKind: {}, byText: new Map() };
  }
}

/** Samples the process's RSS (and heap) every `everyMs` while running. */
export class RssSampler {
  peakRss = 0;
  peakHeapUsed = 0;
  samples = 0;
  /** [seconds since start, RSS MiB, heap used MiB] every 10 s, to see whether memory levels off. */
  timeline: [number, number, number][] = [];
  private timer: NodeJS.Timeout | null = null;
  private slow: NodeJS.Timeout | null = null;
  private heapTick = 0;

  start(everyMs = 20): void {
    this.sample();
    this.timer = setInterval(() => this.sample(), everyMs);
    const t0 = performance.now();
    const mark = () => {
      const m = process.memoryUsage();
      this.timeline.push([Math.round((performance.now() - t0) / 1000), mib(m.rss), mib(m.heapUsed)]);
    };
    mark();
    this.slow = setInterval(mark, 10_000);
  }

  private sample(): void {
    const rss = process.memoryUsage.rss();
    if (rss > this.peakRss) this.peakRss = rss;
    if (this.heapTick++ % 10 === 0) {
      const h = process.memoryUsage().heapUsed;
      if (h > this.peakHeapUsed) this.peakHeapUsed = h;
    }
    this.samples++;
  }

  stop(): void {
    this.sample();
    if (this.timer) clearInterval(this.timer);
    if (this.slow) clearInterval(this.slow);
    this.timer = null;
    this.slow = null;
  }
}

export const mib = (bytes: number) => Math.round((bytes / 1048576) * 10) / 10;

export const newEncryptionKey = () => randomBytes(32);

/** Machine-wide CPU time from /proc/stat (Linux), to tell how busy the machine was, also with others' work. */
export function machineCpu(): { busy: number; total: number } | null {
  try {
    const line = readFileSync('/proc/stat', 'utf8').split('\n')[0];
    const f = line.trim().split(/\s+/).slice(1).map(Number);
    const idle = f[3] + (f[4] ?? 0);
    const total = f.reduce((a, b) => a + b, 0);
    return { busy: total - idle, total };
  } catch {
    return null;
  }
}

/** Share of all cores busy between two machineCpu() readings (0..1). */
export function busyShare(a: ReturnType<typeof machineCpu>, b: ReturnType<typeof machineCpu>): number | null {
  if (!a || !b || b.total === a.total) return null;
  return (b.busy - a.busy) / (b.total - a.total);
}

/** CPU seconds used so far by one process (Linux only; 0 elsewhere). */
export function cpuSecondsOfPid(pid: number | undefined): number {
  if (!pid) return 0;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(rest[11]) + Number(rest[12])) / 100;
  } catch {
    return 0;
  }
}

/** CPU seconds used so far by each process whose command line matches `re` (from /proc/<pid>/stat; Linux only). */
export function cpuSecondsByPid(re: RegExp): Map<number, number> {
  const out = new Map<number, number>();
  try {
    for (const pid of readdirSync('/proc')) {
      if (!/^\d+$/.test(pid)) continue;
      try {
        const cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0/g, ' ');
        if (!re.test(cmd)) continue;
        const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
        const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
        out.set(Number(pid), (Number(rest[11]) + Number(rest[12])) / 100); // utime + stime
      } catch {
        /* gone */
      }
    }
  } catch {
    /* no /proc */
  }
  return out;
}

/** CPU seconds used so far by the processes whose command line matches `re` (Linux only). */
export function cpuSecondsOf(re: RegExp): number {
  let seconds = 0;
  for (const s of cpuSecondsByPid(re).values()) seconds += s;
  return seconds;
}

/**
 * CPU seconds used from now on by the processes whose command line matches `re` (PostgreSQL's backends of one
 * database): read every `everyMs`, each process compared with itself (one started later counts from zero), so a
 * backend that exits keeps what it used up to its last reading. A plain difference of two sums over the live
 * backends loses all of an exited backend's CPU, and went below zero when a pool closed idle connections.
 */
export function cpuMeter(re: RegExp, everyMs = 500): { finish: () => number } {
  const first = cpuSecondsByPid(re);
  const last = new Map(first);
  const read = () => {
    for (const [pid, s] of cpuSecondsByPid(re)) {
      if (!first.has(pid)) first.set(pid, 0);
      last.set(pid, s);
    }
  };
  const timer = setInterval(read, everyMs);
  timer.unref();
  return {
    /** The seconds used since the meter started; it stops reading. */
    finish: () => {
      clearInterval(timer);
      read();
      let total = 0;
      for (const [pid, s] of last) total += s - (first.get(pid) ?? 0);
      return total;
    },
  };
}

/**
 * CPU seconds (utime + stime) of `rootPid` and of each of its direct children, with their command lines (Linux
 * /proc; empty elsewhere). For an embedded PostgreSQL, the postmaster's pid gives every backend and auxiliary process
 * (WAL writer, checkpointer, I/O workers, autovacuum), so a server's CPU can be split by what each process does.
 */
export function cpuOfProcessTree(rootPid: number): Map<number, { cmd: string; seconds: number }> {
  const out = new Map<number, { cmd: string; seconds: number }>();
  try {
    for (const pid of readdirSync('/proc')) {
      if (!/^\d+$/.test(pid)) continue;
      try {
        const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
        const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
        const n = Number(pid);
        if (n !== rootPid && Number(rest[1]) !== rootPid) continue;
        const cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0/g, ' ').trim();
        out.set(n, { cmd, seconds: (Number(rest[11]) + Number(rest[12])) / 100 });
      } catch {
        /* gone */
      }
    }
  } catch {
    /* no /proc */
  }
  return out;
}

// ------------------------------------------------------------------------------------------------ API load

/** What autocannon measured of one phase: latency percentiles and the largest (ms), answers by kind. */
export interface LatencyFigures {
  p50: number;
  p90: number;
  p99: number;
  max: number;
  status2xx: number;
  non2xx: number;
  errors: number;
  timeouts: number;
}

/** The latency percentiles and the answers of an autocannon result. */
export function latencyFigures(r: autocannon.Result): LatencyFigures {
  return {
    p50: r.latency.p50,
    p90: r.latency.p90,
    p99: r.latency.p99,
    max: r.latency.max,
    status2xx: r['2xx'],
    non2xx: r.non2xx,
    errors: r.errors,
    timeouts: r.timeouts,
  };
}

/**
 * `POST /v1/subscriptions` requests for autocannon, each with the next of the `count` customers and billing keys
 * pre-created in `seed` (cycled when more requests come: `wrapped()` then says true).
 */
export function subscriptionRequests(seed: SeedResult, count: number, serviceKey: string) {
  let next = 0;
  let wrapped = false;
  return {
    wrapped: () => wrapped,
    request: (onResponse?: autocannon.Request['onResponse']): autocannon.Request => ({
      method: 'POST',
      path: '/v1/subscriptions',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${serviceKey}` },
      setupRequest: (req) => {
        const i = next++ % count;
        if (next > count) wrapped = true;
        return { ...req, body: JSON.stringify({ customer_id: seed.customerIds[i], plan_id: seed.planId, billing_key_id: seed.billingKeyIds[i] }) };
      },
      ...(onResponse ? { onResponse } : {}),
    }),
  };
}

// ------------------------------------------------------------------------------------------------ report

/** A fixed-width text table. */
export function table(headers: string[], rows: (string | number)[][]): string {
  const cells = [headers, ...rows.map((r) => r.map(String))];
  const widths = headers.map((_, i) => Math.max(...cells.map((r) => (r[i] ?? '').length)));
  const line = (r: string[]) => r.map((c, i) => c.padEnd(widths[i])).join('  ');
  return [line(headers), widths.map((w) => '-'.repeat(w)).join('  '), ...cells.slice(1).map(line)].join('\n');
}

/** `x` rounded to hundredths (CPU seconds and ratios as the reports give them). */
export const round2 = (x: number) => Math.round(x * 100) / 100;

/** A share from 0 to 1 as a whole percentage, or `?` when it is unknown (machineCpu could not read /proc). */
export const percent = (x: number | null) => (x === null ? '?' : `${Math.round(x * 100)}%`);

/** A run's columns in a result table: charges, seconds, charges per second and that as a ratio of `ideal`. */
export function throughputCells(charged: number, seconds: number, throughput: number, ideal: number): (string | number)[] {
  return [charged, seconds.toFixed(1), throughput.toFixed(0), (throughput / ideal).toFixed(2)];
}

/** A ChargeCheck for a log line: ok or FAILED, and how many subscriptions were charged once, twice or never. */
export function describeCheck(c: ChargeCheck): string {
  return `check ${c.ok ? 'ok' : 'FAILED'} (once ${c.chargedOnce}, doubles ${c.doubles}, lost ${c.lost})`;
}

/** The headers of a ChargeCheck's columns in a result table (see checkCells). */
export const CHECK_HEADERS = ['charged once', 'doubles', 'lost'];

/** A ChargeCheck's columns in a result table: charged once (of `n`), doubles, lost. */
export function checkCells(c: ChargeCheck, n: number): (string | number)[] {
  return [`${c.chargedOnce}/${n}`, c.doubles, c.lost];
}

/** A benchmark's target: what it requires, what was measured and whether that meets it (null: not measured). */
export interface Target {
  target: string;
  required: string;
  measured: string;
  met: boolean | null;
}

/** The target that every subscription was charged exactly once (`check.ok`); the whole check is shown when not. */
export function chargedOnceTarget(target: string, check: ChargeCheck, required = 'every subscription once, DONE = fake charges'): Target {
  return { target, required, measured: check.ok ? 'yes' : JSON.stringify(check), met: check.ok };
}

/** The report's Targets section: a table of the targets, each met, MISSED or n/a. */
export function targetsTable(targets: Target[]): string {
  return `\nTargets\n${table(
    ['target', 'required', 'measured', ''],
    targets.map((t) => [t.target, t.required, t.measured, t.met === null ? 'n/a' : t.met ? 'met' : 'MISSED']),
  )}`;
}

/** Writes `data` to bench/results/<kind>-<timestamp>.json; answers the file's path. */
export function writeResults(kind: string, data: unknown): string {
  const dir = join(ROOT, 'bench', 'results');
  mkdirSync(dir, { recursive: true });
  const file = join(dir, `${kind}-${new Date().toISOString().replace(/[:.]/g, '-')}.json`);
  writeFileSync(file, JSON.stringify(data, null, 2) + '\n');
  return file;
}

/**
 * Ends an orchestrator's report: the errors, the total time since `t0` (a performance.now() reading) and the results
 * file (with the machine's cores, memory and Node version); then writes the report's lines to stdout.
 */
export function finishReport(
  kind: string,
  lines: string[],
  t0: number,
  data: { settings: unknown; results: unknown; targets: Target[]; errors: string[] },
): void {
  if (data.errors.length) lines.push(`\nErrors:\n  ${data.errors.join('\n  ')}`);
  const totalS = (performance.now() - t0) / 1000;
  lines.push(`\ntotal time ${totalS.toFixed(0)} s`);
  const file = writeResults(kind, {
    at: new Date().toISOString(),
    settings: data.settings,
    machine: { cpus: cpus().length, totalMemMiB: mib(totalmem()), node: process.version },
    results: data.results,
    targets: data.targets,
    errors: data.errors,
    totalSeconds: totalS,
  });
  lines.push(`results: ${file}`);
  process.stdout.write(lines.join('\n') + '\n');
}
