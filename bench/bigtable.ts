/**
 * `npm run bench:bigtable`: does a big subscriptions table slow the charge run? The same DUE subscriptions are charged
 * once in a table of TOTAL subscriptions (the others active but not due, trialing, past due with a retry ahead,
 * paused or canceled) and once with no other rows; target: throughput(big) >= 0.9 x throughput(small).
 *
 * For each scenario (`small`: DUE rows only; `big`: TOTAL rows of which DUE are due), in BENCH_BIGTABLE_ORDER, on a
 * fresh database (embedded PostgreSQL in a temp dir, or a server at BENCH_DATABASE_URL) with a fresh fake Bootpay
 * (latency L) in its own process:
 *   1. seeds with set-based SQL (generate_series; no per-row inserts): one monthly plan; DUE customers and billing
 *      keys issued at the fake in bulk and stored encrypted exactly as the service stores them (bench/lib.ts
 *      seedDueSubscriptions, without its subscriptions); for the others, one customer each and
 *      BENCH_BIGTABLE_SHARED_KEYS billing-key rows they share (never charged); then all subscriptions in ONE insert,
 *      the due ones spread evenly among the others in the heap (row g is due when floor(g·DUE/TOTAL) steps up). The
 *      others, by o % 100 (o = the row's rank among the others): 93% active with the next charge 2 to 30 days ahead,
 *      2% trialing (trial ends 2 to 16 days ahead), 1% past due with a retry 2 to 7 days ahead, 1% paused (half with
 *      a resume date 10 to 30 days ahead), 3% canceled (no next charge). The due ones are active with a period that
 *      ended 10 days ago (each due for exactly one charge). Then VACUUM ANALYZE (so autovacuum does not start during
 *      the run) and CHECKPOINT; the spread by status and the table and index sizes are printed;
 *   2. copies the database (CREATE DATABASE ... TEMPLATE) for the query plan, before anything is charged;
 *   3. runs ONE charge run in a child process, in-process like bench:charge (createApp, ChargeRunsService.create +
 *      execute; CHARGE_RUN_CONCURRENCY=C, rate 100000/s, batch, pool, outbound-webhook loop off); pg's
 *      Client.prototype.query is wrapped to time every statement and to keep the claim statement (the query of
 *      ClaimDueBatch.claimBatch in src/charging/claim-due.ts: `FROM "subscriptions" "s" ... FOR UPDATE ... SKIP LOCKED`) with its parameters,
 *      as sent: the first claim and the first one that goes on from a cursor;
 *   4. checks at the fake's ledger that every due subscription was charged exactly once and that the local DONE
 *      payments equal the fake's charges (checkChargedOnce), and that nothing else was charged;
 *   5. on the copy, runs EXPLAIN (ANALYZE, BUFFERS) of those claim statements with the same parameters, in a
 *      transaction rolled back, twice (the second, with a warm cache, is printed), and tells which index it uses on
 *      subscriptions and whether it scans the table (subscriptions_due_idx is the due index).
 * Printed: throughput of each, big as a ratio of small (target >= 0.9 x) and of C/L, the exactly-once check of both,
 * the claim's plan in the big table, and the statements that took the most time in the big run next to the small
 * one's. Results: bench/results/bigtable-<timestamp>.json. Exit 1 when a check fails or the claim does not use the
 * due index (a target missed on speed alone exits 0).
 *
 * Settings (environment):
 *   BENCH_BIGTABLE_TOTAL        subscriptions in the big table, due ones included (1000000)
 *   BENCH_BIGTABLE_DUE          due subscriptions, in both scenarios (20000)
 *   BENCH_BIGTABLE_LATENCY_MS   L, the fake Bootpay's latency per request (50)
 *   BENCH_BIGTABLE_CONCURRENCY  C, CHARGE_RUN_CONCURRENCY (64)
 *   BENCH_BIGTABLE_BATCH_SIZE   CHARGE_RUN_BATCH_SIZE (200, the service's default)
 *   BENCH_BIGTABLE_POOL_SIZE    DATABASE_POOL_SIZE (20, the service's default)
 *   BENCH_BIGTABLE_SHARED_KEYS  billing-key rows the non-due subscriptions share (100)
 *   BENCH_BIGTABLE_ORDER        the order of the scenarios (small,big)
 *   BENCH_BIGTABLE_TIMEOUT_S    the whole bench stops (exit 3) after this many seconds (3600)
 *   BENCH_DATABASE_URL          a PostgreSQL server to use instead of the embedded one (role needs CREATEDB)
 */
import 'reflect-metadata';
import { randomBytes, randomUUID } from 'node:crypto';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { Client } from 'pg';
import { createApp } from '../src/app.factory';
import { ChargeRunsService } from '../src/charging/charge-runs.service';
import { SecretBox } from '../src/common/secret-box';
import { dueBefore, nextPeriod, PlanTerms } from '../src/ledger/transitions';
import {
  busyShare,
  ChargeCheck,
  CHECK_HEADERS,
  checkCells,
  chargedOnceTarget,
  checkChargedOnce,
  cpuMeter,
  cpuSecondsOfPid,
  describeCheck,
  DIST,
  finishReport,
  intEnv,
  log,
  machineCpu,
  newEncryptionKey,
  percent,
  round2,
  runMain,
  seedDueSubscriptions,
  table,
  Target,
  targetsTable,
  throughputCells,
} from './lib';
import {
  adminQuery,
  childResult,
  DatabaseServer,
  dropAtCleanup,
  killAtExit,
  runChild,
  spawnNode,
  startDatabaseServer,
  startFake,
  withDatabase,
} from './processes';
import { ChargeRunChildOptions, chargeRunRuntime } from './runtime';

const TZ = 'Asia/Seoul';
const DUE_INDEX = 'subscriptions_due_idx';

// ================================================================================================ child

interface CapturedStatement {
  text: string;
  values: unknown[];
}

interface StatementTime {
  sql: string;
  calls: number;
  totalMs: number;
}

interface ChildResult {
  status: string;
  durationS: number;
  counts: Record<string, number>;
  roundTrips: number;
  /** The first claim, and the first one going on from a cursor (more parameters). */
  claims: CapturedStatement[];
  claimCalls: number;
  claimMs: number;
  slow: (CapturedStatement & { ms: number })[];
  topByTime: StatementTime[];
  cpuSeconds: number;
}

const SLOW_MS = 100;
const CLAIM_RE = /FROM "subscriptions" "s"[\s\S]*FOR UPDATE[\s\S]*SKIP LOCKED/;

/**
 * Wraps pg's Client.prototype.query while `on`: the time of each statement (from the call to its answer, as the
 * caller waits for it) by its text, and the claim statements with their parameters.
 */
function instrumentPg(pg: { Client: { prototype: { query: (...args: unknown[]) => unknown } } }) {
  const state = {
    on: false,
    roundTrips: 0,
    claims: [] as CapturedStatement[],
    claimCalls: 0,
    claimMs: 0,
    /** Other reads of subscriptions that took more than SLOW_MS in one call (the first of each text, at most 5). */
    slow: new Map<string, CapturedStatement & { ms: number }>(),
    byText: new Map<string, { calls: number; totalMs: number }>(),
  };
  const proto = pg.Client.prototype;
  const original = proto.query;
  proto.query = function (this: unknown, ...args: unknown[]) {
    if (!state.on) return original.apply(this, args);
    const cfg = args[0] as string | { text?: string; values?: unknown[] } | undefined;
    const text = typeof cfg === 'string' ? cfg : (cfg?.text ?? '');
    const values = (typeof cfg === 'object' && cfg?.values ? cfg.values : Array.isArray(args[1]) ? args[1] : []) as unknown[];
    const isClaim = CLAIM_RE.test(text);
    if (isClaim) {
      state.claimCalls++;
      const wanted = state.claims.length === 0 || (state.claims.length === 1 && values.length > state.claims[0].values.length);
      if (wanted) state.claims.push({ text, values: [...values] });
    }
    state.roundTrips++;
    const key = text.replace(/\s+/g, ' ').trim().slice(0, 120);
    const t0 = performance.now();
    const done = () => {
      const ms = performance.now() - t0;
      const e = state.byText.get(key) ?? { calls: 0, totalMs: 0 };
      e.calls++;
      e.totalMs += ms;
      state.byText.set(key, e);
      if (isClaim) state.claimMs += ms;
      else if (ms > SLOW_MS && state.slow.size < 5 && !state.slow.has(key) && /^\s*SELECT/i.test(text) && /\bsubscriptions\b/.test(text)) {
        state.slow.set(key, { text, values: [...values], ms: Math.round(ms) });
      }
    };
    const last = args[args.length - 1];
    if (typeof last === 'function') {
      args[args.length - 1] = function (this: unknown, ...a: unknown[]) {
        done();
        return (last as (...x: unknown[]) => unknown).apply(this, a);
      };
      return original.apply(this, args);
    }
    const r = original.apply(this, args) as { then?: (a: () => void, b: () => void) => unknown } | undefined;
    if (r && typeof r.then === 'function') r.then(done, done);
    return r;
  };
  return state;
}

async function child(o: ChargeRunChildOptions): Promise<ChildResult> {
  const pg = instrumentPg(require('pg'));
  const runtime = chargeRunRuntime(o);
  const app = await createApp(runtime);
  try {
    const runs = app.get(ChargeRunsService);
    const run = (await runs.create('cli', { requestedBy: 'bench:bigtable' }))!;
    process.send!({ phase: 'started' });
    pg.on = true;
    const cpu0 = process.cpuUsage();
    const t0 = performance.now();
    const done = await runs.execute(run);
    const durationS = (performance.now() - t0) / 1000;
    const cpu = process.cpuUsage(cpu0);
    pg.on = false;
    process.send!({ phase: 'ran' });
    const topByTime = [...pg.byText.entries()]
      .map(([sql, e]) => ({ sql, calls: e.calls, totalMs: Math.round(e.totalMs) }))
      .sort((a, b) => b.totalMs - a.totalMs)
      .slice(0, 20);
    return {
      status: done.status,
      durationS,
      counts: { due: done.due, charged: done.charged, failed: done.failed, unknown: done.unknown, skipped: done.skipped },
      roundTrips: pg.roundTrips,
      claims: pg.claims,
      claimCalls: pg.claimCalls,
      claimMs: Math.round(pg.claimMs),
      slow: [...pg.slow.values()],
      topByTime,
      cpuSeconds: (cpu.user + cpu.system) / 1e6,
    };
  } finally {
    pg.on = false;
    await app.close();
  }
}

// ================================================================================================ seeding

interface Seed {
  subscriptionIds: string[];
  periodStart: Date;
  seconds: number;
  spread: { status: string; rows: number; due: number }[];
  sizes: Record<string, string>;
}

/**
 * `total` subscriptions of which `due` are due (see the header), set-based. The due ones' customers and keys come
 * from seedDueSubscriptions (keys issued at the fake); the others share `sharedKeys` key rows.
 */
async function seedTable(databaseUrl: string, fakeUrl: string, encryptionKey: Buffer, due: number, total: number, sharedKeys: number): Promise<Seed> {
  const started = performance.now();
  const base = await seedDueSubscriptions(databaseUrl, fakeUrl, encryptionKey, due, { withSubscriptions: false });
  const others = total - due;
  const now = new Date();
  // As seedDueSubscriptions: anchored 40 days ago, period 0 is over, period 1 (starting at its end) is due now.
  const anchor = new Date(now.getTime() - 40 * 86_400_000);
  anchor.setUTCMilliseconds(0);
  const terms: PlanTerms = { interval: 'month', intervalCount: 1 };
  const p0 = nextPeriod({ anchorAt: anchor, periodIndex: -1 }, terms, TZ);
  const p1 = nextPeriod({ anchorAt: anchor, periodIndex: 0 }, terms, TZ);
  const subscriptionIds = base.customerIds.map(() => randomUUID());
  const c = new Client({ connectionString: databaseUrl });
  await c.connect();
  try {
    const sharedKeyIds: string[] = [];
    if (others > 0) {
      await c.query(
        `INSERT INTO customers (id, external_id, name, email, metadata, created_at, updated_at)
         SELECT md5('bench-other-' || g)::uuid, 'bench_o' || g, 'Bench customer o' || g, 'bench-o' || g || '@example.com', '{}'::jsonb, $2, $2
         FROM generate_series(1, $1::int) g`,
        [others, now],
      );
      const box = new SecretBox(encryptionKey);
      const k = Math.max(1, Math.min(sharedKeys, others));
      const secrets = Array.from({ length: k }, () => `bench_shared_${randomBytes(12).toString('hex')}`);
      for (let i = 0; i < k; i++) sharedKeyIds.push(randomUUID());
      await c.query(
        `INSERT INTO billing_keys (id, customer_id, billing_key_ciphertext, billing_key_fingerprint, bootpay_receipt_id, pg, method,
           card_company, card_company_code, card_no_masked, card_type, status, issued_at, expires_at, created_at, updated_at)
         SELECT id, md5('bench-other-' || ord)::uuid, ct, fp, 'bench_shared_' || ord || '_' || $5, 'nicepay', '카드자동', '신한', '01', '424242******4242', '0', 'active',
           $4::timestamptz, $4::timestamptz + interval '3 years', $4::timestamptz, $4::timestamptz
         FROM unnest($1::uuid[], $2::text[], $3::text[]) WITH ORDINALITY AS t(id, ct, fp, ord)`,
        [sharedKeyIds, secrets.map((s, i) => box.encrypt(s, sharedKeyIds[i])), secrets.map((s) => box.fingerprint(s)), now, randomBytes(4).toString('hex')],
      );
    }
    // One insert (a plain stream from generate_series, no sort: rows reach the heap in the order g = 1..total): row g is due when floor(g·due/total) steps up (j = its rank among the
    // due), otherwise it is other number o = g - j.
    await c.query(
      `INSERT INTO subscriptions (id, customer_id, plan_id, billing_key_id, status, anchor_at, period_index, current_period_start,
         current_period_end, trial_end, next_charge_at, cancel_at_period_end, cancel_reason, canceled_at, ended_at, paused_at,
         pause_reason, resume_at, dunning_attempts, next_retry_at, past_due_since, last_failure_code, metadata, event_seq,
         created_at, updated_at)
       SELECT
         CASE WHEN is_due THEN ($1::uuid[])[j] ELSE md5('bench-sub-' || o)::uuid END,
         CASE WHEN is_due THEN ($2::uuid[])[j] ELSE md5('bench-other-' || o)::uuid END,
         $4::uuid,
         CASE WHEN is_due THEN ($3::uuid[])[j] ELSE ($5::uuid[])[1 + o % cardinality($5::uuid[])] END,
         CASE WHEN is_due THEN 'active' WHEN b < 93 THEN 'active' WHEN b < 95 THEN 'trialing' WHEN b < 96 THEN 'past_due'
              WHEN b < 97 THEN 'paused' ELSE 'canceled' END,
         CASE WHEN is_due THEN $6::timestamptz ELSE created END,
         CASE WHEN is_due THEN 0 WHEN b < 93 THEN 3 WHEN b < 95 THEN -1 ELSE 2 END,
         CASE WHEN is_due THEN $7::timestamptz WHEN b < 93 OR (b >= 95 AND b < 97) THEN ahead - interval '1 month' ELSE NULL END,
         CASE WHEN is_due THEN $8::timestamptz WHEN b < 93 OR (b >= 95 AND b < 97) THEN ahead ELSE NULL END,
         CASE WHEN NOT is_due AND b >= 93 AND b < 95 THEN trial END,
         CASE WHEN is_due THEN $8::timestamptz WHEN b < 93 THEN ahead WHEN b < 95 THEN trial WHEN b < 96 THEN retry ELSE NULL END,
         false,
         CASE WHEN NOT is_due AND b >= 97 THEN 'bench: canceled' END,
         CASE WHEN NOT is_due AND b >= 97 THEN $9::timestamptz - random() * interval '200 days' END,
         CASE WHEN NOT is_due AND b >= 97 THEN $9::timestamptz - random() * interval '200 days' END,
         CASE WHEN NOT is_due AND b = 96 THEN $9::timestamptz - random() * interval '20 days' END,
         CASE WHEN NOT is_due AND b = 96 THEN 'bench: paused' END,
         CASE WHEN NOT is_due AND b = 96 AND o % 2 = 0 THEN $9::timestamptz + interval '10 days' + random() * interval '20 days' END,
         CASE WHEN NOT is_due AND b = 95 THEN 1 ELSE 0 END,
         CASE WHEN NOT is_due AND b = 95 THEN retry END,
         CASE WHEN NOT is_due AND b = 95 THEN $9::timestamptz - interval '2 days' END,
         CASE WHEN NOT is_due AND b = 95 THEN 'F061' END,
         '{}'::jsonb, 0,
         CASE WHEN is_due THEN $9::timestamptz ELSE created END,
         $9::timestamptz
       FROM (
         SELECT g, j, is_due, g - j AS o, (g - j) % 100 AS b,
                $9::timestamptz + interval '2 days' + random() * interval '28 days' AS ahead,
                $9::timestamptz + interval '2 days' + random() * interval '5 days' AS retry,
                $9::timestamptz + interval '2 days' + random() * interval '14 days' AS trial,
                $9::timestamptz - interval '40 days' - random() * interval '700 days' AS created
         FROM (SELECT g, (g * $10::bigint / $11::bigint)::int AS j,
                      (g * $10::bigint / $11::bigint) > ((g - 1) * $10::bigint / $11::bigint) AS is_due
               FROM generate_series(1, $11::int) g) x
       ) r`,
      [
        subscriptionIds,
        base.customerIds,
        base.billingKeyIds,
        base.planId,
        sharedKeyIds.length ? sharedKeyIds : [base.billingKeyIds[0]], // only read for the others
        anchor,
        p0.start,
        p0.end,
        now,
        due,
        total,
      ],
    );
    await c.query('VACUUM ANALYZE');
    try {
      await c.query('CHECKPOINT');
    } catch {
      /* not allowed for this role on BENCH_DATABASE_URL: skipped */
    }
    const before = dueBefore(new Date(), TZ);
    const spread = (
      await c.query(
        `SELECT status, count(*)::int AS rows,
                count(*) FILTER (WHERE next_charge_at < $1 AND status IN ('incomplete', 'trialing', 'active', 'past_due'))::int AS due
         FROM subscriptions GROUP BY status ORDER BY rows DESC`,
        [before],
      )
    ).rows as { status: string; rows: number; due: number }[];
    const dueRows = spread.reduce((a, s) => a + s.due, 0);
    const pages = (
      await c.query(
        `SELECT (SELECT count(DISTINCT (ctid::text::point)[0])::int FROM subscriptions WHERE next_charge_at < $1) AS due_pages,
                (SELECT relpages FROM pg_class WHERE relname = 'subscriptions') AS pages`,
        [before],
      )
    ).rows[0] as { due_pages: number; pages: number };
    if (dueRows !== due) throw new Error(`seeding: ${dueRows} subscriptions due, expected ${due}`);
    const sizes = (
      await c.query(
        `SELECT pg_size_pretty(pg_table_size('subscriptions')) AS subscriptions_table,
                pg_size_pretty(pg_indexes_size('subscriptions')) AS subscriptions_indexes,
                pg_size_pretty(pg_relation_size('${DUE_INDEX}')) AS due_index,
                pg_size_pretty(pg_total_relation_size('customers')) AS customers,
                pg_size_pretty(pg_database_size(current_database())) AS database`,
      )
    ).rows[0] as Record<string, string>;
    sizes.due_rows_on_heap_pages = `${pages.due_pages} of ${pages.pages}`;
    return { subscriptionIds, periodStart: p1.start, seconds: (performance.now() - started) / 1000, spread, sizes };
  } finally {
    await c.end();
  }
}

// ================================================================================================ the plan

/** A copy of `source` (no connection to it may be open), dropped at cleanup. */
async function cloneDatabase(adminUrl: string, source: string): Promise<{ url: string; drop(): Promise<void> }> {
  const name = `${source}_plan`;
  try {
    await adminQuery(adminUrl, `CREATE DATABASE ${name} TEMPLATE ${source} STRATEGY FILE_COPY`);
  } catch (err) {
    if (!/strategy/i.test(String(err))) throw err;
    await adminQuery(adminUrl, `CREATE DATABASE ${name} TEMPLATE ${source}`); // before PostgreSQL 15
  }
  return { url: withDatabase(adminUrl, name), drop: dropAtCleanup(adminUrl, name) };
}

interface Plan {
  which: string;
  sql: string;
  values: unknown[];
  coldPlan: string;
  plan: string;
  indexes: string[];
  seqScan: boolean;
  usesDueIndex: boolean;
}

/** EXPLAIN (ANALYZE, BUFFERS) of each statement as the run sent it, rolled back; the second of two runs is kept. */
async function explain(url: string, claims: (CapturedStatement & { which: string })[]): Promise<Plan[]> {
  const c = new Client({ connectionString: url });
  await c.connect();
  try {
    const out: Plan[] = [];
    for (const claim of claims) {
      const runs: string[] = [];
      for (let rep = 0; rep < 2; rep++) {
        await c.query('BEGIN');
        try {
          const rows = (await c.query(`EXPLAIN (ANALYZE, BUFFERS) ${claim.text}`, claim.values)).rows as Record<string, string>[];
          runs.push(rows.map((r) => r['QUERY PLAN']).join('\n'));
        } finally {
          await c.query('ROLLBACK');
        }
      }
      const plan = runs[1];
      const indexes = [
        ...new Set(
          [...plan.matchAll(/(?:Index (?:Only )?Scan(?: Backward)? using (\w+) on subscriptions|Bitmap Index Scan on (subscriptions\w*))/g)].map(
            (m) => m[1] ?? m[2],
          ),
        ),
      ];
      out.push({
        which: claim.which,
        sql: claim.text,
        values: claim.values,
        coldPlan: runs[0],
        plan,
        indexes,
        seqScan: /Seq Scan on subscriptions/.test(plan),
        usesDueIndex: indexes.includes(DUE_INDEX),
      });
    }
    return out;
  } finally {
    await c.end();
  }
}

// ================================================================================================ orchestrator

interface Settings {
  total: number;
  due: number;
  latencyMs: number;
  concurrency: number;
  batchSize: number;
  poolSize: number;
  sharedKeys: number;
}

interface ScenarioResult extends ChildResult {
  scenario: 'small' | 'big';
  rows: number;
  throughput: number;
  seed: Omit<Seed, 'subscriptionIds' | 'periodStart'>;
  check: ChargeCheck;
  plans: Plan[];
  /** Plans of the other reads of subscriptions that were slow in the run (> SLOW_MS in one call). */
  slowPlans: Plan[];
  cpu: { machineBusyShare: number | null; loadAverage1m: number; postgresCpuS: number; fakeCpuS: number; benchProcessCpuS: number };
}

async function scenario(db: DatabaseServer, which: 'small' | 'big', s: Settings): Promise<ScenarioResult> {
  const rows = which === 'big' ? s.total : s.due;
  log(`${which}: ${rows} subscriptions (${s.due} due); fresh database and fake Bootpay (latency ${s.latencyMs} ms)`);
  const fake = await startFake(s.latencyMs);
  killAtExit(fake.child);
  const fresh = await db.fresh(`bigtable_${which}`);
  let clone: { url: string; drop(): Promise<void> } | null = null;
  try {
    const key = newEncryptionKey();
    const seed = await seedTable(fresh.url, fake.url, key, s.due, rows, s.sharedKeys);
    log(
      `${which}: seeded in ${seed.seconds.toFixed(1)} s: ${seed.spread.map((x) => `${x.status} ${x.rows}`).join(', ')}; ` +
        Object.entries(seed.sizes)
          .map(([k, v]) => `${k} ${v}`)
          .join(', '),
    );
    clone = await cloneDatabase(db.adminUrl, fresh.name);
    log(`${which}: copied for the plan; running`);
    const opts: ChargeRunChildOptions = {
      databaseUrl: fresh.url,
      encryptionKeyHex: key.toString('hex'),
      fakeApiBaseUrl: fake.apiBaseUrl,
      concurrency: s.concurrency,
      batchSize: s.batchSize,
      poolSize: s.poolSize,
    };
    const c = killAtExit(spawnNode(join(DIST, 'bench', 'bigtable.js'), ['--child', JSON.stringify(opts)], {}, { ipc: true, stdout: 'inherit' }));
    const pgRe = new RegExp(`postgres: .*${fresh.name}(?!\\w)`);
    let at0 = { m: machineCpu(), pg: null as ReturnType<typeof cpuMeter> | null, fake: 0, child: 0 };
    const cpu: ScenarioResult['cpu'] = { machineBusyShare: null, loadAverage1m: 0, postgresCpuS: 0, fakeCpuS: 0, benchProcessCpuS: 0 };
    const result = await childResult<ChildResult>(c, which, (phase) => {
      if (phase === 'started') {
        at0 = { m: machineCpu(), pg: cpuMeter(pgRe), fake: cpuSecondsOfPid(fake.child.proc.pid), child: cpuSecondsOfPid(c.proc.pid) };
      } else if (phase === 'ran') {
        cpu.machineBusyShare = busyShare(at0.m, machineCpu());
        cpu.loadAverage1m = loadavg()[0];
        cpu.postgresCpuS = round2(at0.pg?.finish() ?? 0);
        cpu.fakeCpuS = round2(cpuSecondsOfPid(fake.child.proc.pid) - at0.fake);
        cpu.benchProcessCpuS = round2(cpuSecondsOfPid(c.proc.pid) - at0.child);
      }
    });
    await c.exited;
    const check = await checkChargedOnce(fresh.url, fake.url, seed.subscriptionIds, seed.periodStart);
    const throughput = result.counts.charged / result.durationS;
    log(
      `${which}: ${result.counts.charged} charged in ${result.durationS.toFixed(1)} s = ${throughput.toFixed(0)}/s; claims ${result.claimCalls} ` +
        `(${result.claimMs} ms in all); ${describeCheck(check)}; ` +
        `CPU s: bench ${cpu.benchProcessCpuS}, postgres ${cpu.postgresCpuS}, fake ${cpu.fakeCpuS}; machine busy ${percent(cpu.machineBusyShare)}`,
    );
    await fake.stop();
    await fresh.drop();
    const plans = await explain(
      clone.url,
      result.claims.map((cl, i) => ({ ...cl, which: i === 0 ? 'first claim' : 'a claim going on from its cursor' })),
    );
    const slowPlans = await explain(
      clone.url,
      result.slow.map((st) => ({ ...st, which: `${st.ms} ms in the run` })),
    );
    const { subscriptionIds: _ids, periodStart: _p, ...seedInfo } = seed;
    return { ...result, scenario: which, rows, throughput, seed: seedInfo, check, plans, slowPlans, cpu };
  } finally {
    await fake.stop();
    await fresh.drop();
    await clone?.drop();
  }
}

async function main(): Promise<number> {
  const s: Settings = {
    total: intEnv('BENCH_BIGTABLE_TOTAL', 1_000_000, 1, 50_000_000),
    due: intEnv('BENCH_BIGTABLE_DUE', 20_000, 1, 1_000_000),
    latencyMs: intEnv('BENCH_BIGTABLE_LATENCY_MS', 50, 1, 10_000),
    concurrency: intEnv('BENCH_BIGTABLE_CONCURRENCY', 64, 1, 1024),
    batchSize: intEnv('BENCH_BIGTABLE_BATCH_SIZE', 200, 1, 10_000),
    poolSize: intEnv('BENCH_BIGTABLE_POOL_SIZE', 20, 2, 500),
    sharedKeys: intEnv('BENCH_BIGTABLE_SHARED_KEYS', 100, 1, 100_000),
  };
  if (s.total < s.due) throw new Error('BENCH_BIGTABLE_TOTAL must be at least BENCH_BIGTABLE_DUE');
  const order = (process.env.BENCH_BIGTABLE_ORDER ?? 'small,big').split(',').map((x) => x.trim());
  if (order.length !== 2 || !order.includes('small') || !order.includes('big')) throw new Error('BENCH_BIGTABLE_ORDER must be small,big or big,small');
  const t0 = performance.now();
  const db = await startDatabaseServer();
  const results: ScenarioResult[] = [];
  const errors: string[] = [];
  for (const which of order as ('small' | 'big')[]) {
    try {
      results.push(await scenario(db, which, s));
    } catch (err) {
      errors.push(`${which}: ${err instanceof Error ? err.message : String(err)}`);
      log(errors[errors.length - 1]);
    }
  }

  // ------------------------------------------------------------------------------------------ report
  const ideal = s.concurrency / (s.latencyMs / 1000);
  const small = results.find((r) => r.scenario === 'small');
  const big = results.find((r) => r.scenario === 'big');
  const lines: string[] = [];
  lines.push(
    `\nbench:bigtable  ${s.due} due among ${s.total} subscriptions vs ${s.due} alone  C=${s.concurrency}  L=${s.latencyMs} ms  C/L=${ideal.toFixed(0)}/s  ` +
      `batch=${s.batchSize}  pool=${s.poolSize}  database=${db.embedded ? 'embedded PostgreSQL' : 'BENCH_DATABASE_URL'}\n`,
  );
  lines.push(
    table(
      [
        'scenario',
        'rows',
        'subscriptions table',
        'due index',
        'charged',
        'seconds',
        'charges/s',
        'x C/L',
        'claims',
        'claim ms (mean)',
        'CPU s node|pg|fake',
        ...CHECK_HEADERS,
      ],
      results.map((r) => [
        r.scenario,
        r.rows,
        `${r.seed.sizes.subscriptions_table} (+ ${r.seed.sizes.subscriptions_indexes} indexes)`,
        r.seed.sizes.due_index,
        ...throughputCells(r.counts.charged, r.durationS, r.throughput, ideal),
        r.claimCalls,
        `${r.claimMs} (${(r.claimMs / Math.max(1, r.claimCalls)).toFixed(1)})`,
        `${r.cpu.benchProcessCpuS} | ${r.cpu.postgresCpuS} | ${r.cpu.fakeCpuS}`,
        ...checkCells(r.check, s.due),
      ]),
    ),
  );
  if (big) lines.push(`\nbig table by status: ${big.seed.spread.map((x) => `${x.status} ${x.rows}${x.due ? ` (${x.due} due)` : ''}`).join(', ')}`);
  if (big?.plans.length) {
    for (const p of big.plans) {
      lines.push(`\nThe claim in the big table (${p.which}), EXPLAIN (ANALYZE, BUFFERS), second of two runs on a copy taken before the run:`);
      lines.push(p.sql.replace(/\s+/g, ' ').trim());
      lines.push(`parameters: ${JSON.stringify(p.values)}`);
      lines.push(p.plan);
      const cold = /Buffers: ([^\n]+)/.exec(p.coldPlan)?.[1];
      if (cold) lines.push(`(first run, colder cache: Buffers: ${cold})`);
      lines.push(
        `=> index on subscriptions: ${p.indexes.join(', ') || 'none'}; ${DUE_INDEX}: ${p.usesDueIndex ? 'yes' : 'NO'}; seq scan on subscriptions: ${p.seqScan ? 'YES' : 'no'}`,
      );
    }
  }
  for (const p of big?.slowPlans ?? []) {
    lines.push(`\nAnother read of subscriptions slow in the big run (${p.which}; > ${SLOW_MS} ms in one call), its plan on the copy:`);
    lines.push(p.sql.replace(/\s+/g, ' ').trim().slice(0, 600));
    lines.push(p.plan);
    lines.push(`=> index on subscriptions: ${p.indexes.join(', ') || 'none'}; seq scan on subscriptions: ${p.seqScan ? 'YES' : 'no'}`);
  }
  if (small?.plans.length) {
    lines.push(
      `\nsmall table claim plans: ${small.plans.map((p) => `${p.which}: ${p.indexes.join(', ') || 'no index'}${p.seqScan ? ', seq scan' : ''}`).join('; ')}`,
    );
  }
  if (big) {
    const smallBy = new Map((small?.topByTime ?? []).map((t) => [t.sql, t]));
    lines.push('\nstatements taking the most time in the big run (total ms, calls; the small run alongside):');
    lines.push(
      table(
        ['big ms', 'calls', 'small ms', 'calls', 'statement'],
        big.topByTime.slice(0, 12).map((t) => {
          const o = smallBy.get(t.sql);
          return [t.totalMs, t.calls, o ? o.totalMs : '?', o ? o.calls : '?', t.sql.slice(0, 110)];
        }),
      ),
    );
  }

  const targets: Target[] = [];
  if (small && big) {
    const ratio = big.throughput / small.throughput;
    targets.push({
      target: `throughput, ${s.total} rows vs ${s.due}`,
      required: '>= 0.9 x',
      measured: `${big.throughput.toFixed(0)} / ${small.throughput.toFixed(0)} = ${ratio.toFixed(2)} x (big ${(big.throughput / ideal).toFixed(2)} x C/L)`,
      met: ratio >= 0.9,
    });
  } else {
    targets.push({ target: 'throughput big vs small', required: '>= 0.9 x', measured: 'needs both scenarios', met: null });
  }
  for (const r of results) targets.push(chargedOnceTarget(`charged exactly once: ${r.scenario}`, r.check, 'every due subscription once, DONE = fake charges'));
  for (const r of results) {
    for (const p of r.plans) {
      targets.push({
        target: `claim uses ${DUE_INDEX}: ${r.scenario}, ${p.which}`,
        required: 'index scan, no seq scan of subscriptions',
        measured: `${p.indexes.join(', ') || 'no index'}${p.seqScan ? ', seq scan' : ''}`,
        met: p.usesDueIndex && !p.seqScan,
      });
    }
    if (!r.plans.length) targets.push({ target: `claim plan: ${r.scenario}`, required: 'captured', measured: 'no claim statement seen', met: false });
  }
  lines.push(targetsTable(targets));
  finishReport('bigtable', lines, t0, {
    settings: { ...s, order, idealPerSecond: ideal, database: db.embedded ? 'embedded' : 'BENCH_DATABASE_URL' },
    results,
    targets,
    errors,
  });
  const correct = results.length === 2 && results.every((r) => r.check.ok && r.plans.length > 0 && r.plans.every((p) => p.usesDueIndex && !p.seqScan));
  return errors.length || !correct ? 1 : 0;
}

if (process.argv[2] === '--child') {
  runChild(() => child(JSON.parse(process.argv[3]) as ChargeRunChildOptions));
} else {
  runMain(main, intEnv('BENCH_BIGTABLE_TIMEOUT_S', 3600, 10));
}
