/**
 * `npm run bench:load`: the API under a charge run. While a run of N due subscriptions is charging, `POST
 * /v1/subscriptions` at 100 connections; targets: the API's p99 during the run <= 2 x its p99 with no run, and the
 * run's throughput >= 0.8 x the same run with no API load. Both references are measured in the same run of this
 * command, on the same database, service process and fake Bootpay.
 *
 * One fresh database (embedded PostgreSQL in a temp dir, or BENCH_DATABASE_URL), one fake Bootpay in its own process,
 * one service process (bench/load-server.ts = bench/server.ts, the same loadConfig/createApp/listen as main.ts, plus
 * gauges read over IPC: event-loop delay, database-pool waits, HTTP requests, SQL round trips; NODE_ENV=development
 * with the system clock, the charge cron off, LOG_LEVEL=info to a temp file). The phases, in this order:
 *   seed   BENCH_LOAD_CUSTOMERS customers with a billing key each and a plan with a 14-day trial (creating a
 *          subscription on it makes no charge call, as in bench:api; the trial's consent notice is sent at creation,
 *          which the report's SQL per request shows), and N due subscriptions (set A) with
 *          set-based SQL (bench/lib.ts seedDueSubscriptions);
 *   warm   POST /v1/subscriptions at min(50, connections) for BENCH_LOAD_WARMUP_S;
 *   a      API alone: POST /v1/subscriptions at BENCH_LOAD_CONNECTIONS for BENCH_LOAD_DURATION_S -> p50/p99 (reference);
 *   b      run alone: POST /v1/charge-runs charges set A (CHARGE_RUN_CONCURRENCY=BENCH_CONCURRENCY), polled with
 *          GET /v1/charge-runs/:id every BENCH_LOAD_POLL_MS -> charged / (finished_at - started_at) (reference);
 *          then every subscription of A is checked charged exactly once at the fake (checkChargedOnce);
 *   seed   another N due subscriptions (set B), only now, since a run charges everything due;
 *   c      both: POST /v1/charge-runs on set B; BENCH_LOAD_LEAD_S after it started, POST /v1/subscriptions at
 *          BENCH_LOAD_CONNECTIONS for BENCH_LOAD_DURATION_S (cut to fit inside 0.8 x the run-alone duration, and
 *          stopped early should the run finish first: the report gives how much of the API window had the run);
 *          -> the API's p99 during the run and the run's throughput over the whole run (the target); also shown, the
 *          run's pace while the API load was on (its payments approved in that window, from updated_at).
 * After each API phase the bench waits until the service has answered every request it received, so none spills
 * into the next phase.
 * Before each run the database is vacuumed, analysed and checkpointed, so neither run inherits the other's debris.
 * Checks: each subscription of A and B charged exactly once at the fake, local DONE payments equal to the fake's
 * charges one to one, nothing left open; every 201 names a stored subscription, each once, and at most the requests
 * in flight when a phase was cut stored one more; no non-2xx answers or errors.
 * Exit 0 when the checks pass (a MISSED target is reported, not an error), 1 when a check fails, 3 at the deadline.
 * Results: bench/results/load-<timestamp>.json.
 *
 * Settings (environment):
 *   BENCH_LOAD_N            due subscriptions per run (100000); set A and set B are each this size
 *   BENCH_LOAD_DURATION_S   seconds of API load in phases a and c (60: most of a 100,000 run on 2 cores)
 *   BENCH_LOAD_CONNECTIONS  autocannon connections (100)
 *   BENCH_LOAD_LEAD_S       seconds between the start of run B and the start of the API load (2)
 *   BENCH_LOAD_WARMUP_S     warm-up of POST /v1/subscriptions before phase a, at min(50, connections) (3; 0 = none)
 *   BENCH_LOAD_CUSTOMERS    pre-created customers and keys, one per request (100000; cycled if more requests come)
 *   BENCH_LOAD_POLL_MS      how often the run's status is read (500)
 *   BENCH_LOAD_LOG_LEVEL    the service's LOG_LEVEL (info, written to a temp file as in production)
 *   BENCH_LATENCY_MS        the fake Bootpay's latency per request (50)
 *   BENCH_CONCURRENCY       CHARGE_RUN_CONCURRENCY (64); the rate limit is set out of the way (100000/s)
 *   BENCH_BATCH_SIZE        CHARGE_RUN_BATCH_SIZE (200, the service's default)
 *   BENCH_POOL_SIZE         DATABASE_POOL_SIZE of the service (20, the service's default), shared by API and run
 *   BENCH_POOL_RUN_RESERVE  DATABASE_POOL_RUN_RESERVE of the service (unset: the service's default, a fifth of the
 *                           pool; 0: no share kept for the run)
 *   BENCH_DATABASE_URL      a PostgreSQL server to use instead of the embedded one (needs CREATEDB)
 *   BENCH_TIMEOUT_S         deadline of the whole command (3600); then everything started is stopped, exit 3
 * A quick run: BENCH_LOAD_N=20000 BENCH_LOAD_DURATION_S=10 BENCH_LOAD_CUSTOMERS=30000 npm run bench:load (the API
 * load during the run is cut to fit 0.8 x the run alone, so a very small N leaves little of it).
 */
import autocannon from 'autocannon';
import { randomBytes } from 'node:crypto';
import { closeSync, openSync, readFileSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client } from 'pg';
import {
  busyShare,
  ChargeCheck,
  checkChargedOnce,
  cpuMeter,
  cpuSecondsOfPid,
  DIST,
  freePort,
  intEnv,
  latencyFigures,
  LatencyFigures,
  log,
  machineCpu,
  newEncryptionKey,
  onCleanup,
  percent,
  round2,
  runMain,
  SeedResult,
  seedDueSubscriptions,
  sleep,
  subscriptionRequests,
  table,
  targetsTable,
  writeResults,
} from './lib';
import { chargeRunEnv, Child, serviceEnv, spawnNode, startDatabaseServer, startFake, waitForHttp } from './processes';

/** What bench/load-server.ts answers over IPC (figures since the previous request). */
interface ServiceStats {
  requests: number;
  eventLoopDelayMs: { mean: number; p50: number; p99: number; max: number };
  pool: { acquires: number; waitMs: { mean: number; p50: number; p99: number; max: number }; waitingAvg: number; waitingMax: number; inUseAvg: number };
  sql: { roundTrips: number; top: { calls: number; sql: string }[] };
}

interface Usage {
  serviceCpuS: number;
  postgresCpuS: number;
  fakeCpuS: number;
  benchCpuS: number;
  machineBusy: number | null;
  service: ServiceStats | null;
}

interface ApiPhase extends Usage, LatencyFigures {
  name: string;
  seconds: number;
  /** ms since the bench started. */
  from: number;
  to: number;
  fromWall: Date;
  toWall: Date;
  requests: number;
  perSecond: number;
  stoppedEarly: boolean;
}

interface RunPhase extends Usage {
  name: string;
  id: string;
  status: string;
  due: number;
  charged: number;
  counts: Record<string, number>;
  /** finished_at - started_at, as the service recorded them. */
  durationS: number;
  perSecond: number;
  /** ms since the bench started (bench clock; the service's timestamps are on the same machine). */
  from: number;
  to: number;
  check: ChargeCheck;
}

interface RunDto {
  id: string;
  status: 'running' | 'completed' | 'failed' | 'interrupted';
  counts: Record<string, number>;
  error: string | null;
  started_at: string;
  finished_at: string | null;
}

type Tracker = { stop(): void };
type CallbackCannon = (opts: autocannon.Options, cb: (err: Error | null, r: autocannon.Result) => void) => Tracker;

/** autocannon with its tracker, so a phase can be stopped before its duration is up. */
function cannon(opts: autocannon.Options): { done: Promise<autocannon.Result>; stop(): void } {
  let tracker: Tracker | null = null;
  let stopAsked = false;
  const done = new Promise<autocannon.Result>((res, rej) => {
    tracker = (autocannon as unknown as CallbackCannon)(opts, (err, r) => (err ? rej(err) : res(r)));
    if (stopAsked) tracker.stop();
  });
  return {
    done,
    stop: () => {
      stopAsked = true;
      tracker?.stop();
    },
  };
}

async function main(): Promise<number> {
  const n = intEnv('BENCH_LOAD_N', 100_000, 1, 1_000_000);
  const duration = intEnv('BENCH_LOAD_DURATION_S', 60, 1, 3600);
  const connections = intEnv('BENCH_LOAD_CONNECTIONS', 100, 1, 10_000);
  const lead = intEnv('BENCH_LOAD_LEAD_S', 2, 0, 600);
  const warmup = intEnv('BENCH_LOAD_WARMUP_S', 3, 0, 600);
  const customers = intEnv('BENCH_LOAD_CUSTOMERS', 100_000, 1, 1_000_000);
  const pollMs = intEnv('BENCH_LOAD_POLL_MS', 500, 50, 60_000);
  const logLevel = process.env.BENCH_LOAD_LOG_LEVEL?.trim() || 'info';
  const latencyMs = intEnv('BENCH_LATENCY_MS', 50, 0, 10_000);
  const concurrency = intEnv('BENCH_CONCURRENCY', 64, 1, 1024);
  const batchSize = intEnv('BENCH_BATCH_SIZE', 200, 1, 10_000);
  const poolSize = intEnv('BENCH_POOL_SIZE', 20, 2, 500);
  const runReserve = process.env.BENCH_POOL_RUN_RESERVE?.trim() || null;
  const warmConnections = Math.min(50, connections);
  const t0 = performance.now();
  const at = () => Math.round(performance.now() - t0);
  const wallAt = (iso: string) => Math.round(Date.parse(iso) - (Date.now() - (performance.now() - t0)));

  const db = await startDatabaseServer();
  const fresh = await db.fresh('load');
  const fake = await startFake(latencyMs);
  const key = newEncryptionKey();

  const sql = async <T = Record<string, unknown>>(text: string, values: unknown[] = []): Promise<T[]> => {
    const c = new Client({ connectionString: fresh.url });
    await c.connect();
    try {
      return (await c.query(text, values)).rows as T[];
    } finally {
      await c.end();
    }
  };
  // seedDueSubscriptions names customers bench_1, bench_2, ... on every call; external ids are unique, so each seed's
  // are renamed before the next.
  const seed = async (label: string, count: number, opts: { trialDays?: number; withSubscriptions?: boolean } = {}): Promise<SeedResult> => {
    const s = await seedDueSubscriptions(fresh.url, fake.url, key, count, opts);
    await sql(`UPDATE customers SET external_id = $1 || external_id WHERE id = ANY($2::uuid[])`, [`${label}_`, s.customerIds]);
    log(
      `seeded ${label}: ${count} customers with a billing key each${opts.withSubscriptions === false ? '' : ' and a due subscription each'} in ${s.seconds.toFixed(1)} s`,
    );
    return s;
  };
  const settleDatabase = async () => {
    await sql('VACUUM (ANALYZE)');
    await sql('CHECKPOINT').catch((err: unknown) => log(`CHECKPOINT not allowed (${String(err)}); going on`));
  };

  const api = await seed('api', customers, { trialDays: 14, withSubscriptions: false });
  const setA = await seed('run_a', n);

  const port = await freePort();
  const serviceKey = `bsk_bench_svc_${randomBytes(16).toString('hex')}`;
  const adminKey = `bsk_bench_adm_${randomBytes(16).toString('hex')}`;
  const logFile = join(tmpdir(), `bench-load-server-${process.pid}.log`);
  const fd = openSync(logFile, 'w');
  let logKept = false;
  const server: Child = spawnNode(
    join(DIST, 'bench', 'load-server.js'),
    [],
    serviceEnv(
      { nodeEnv: 'development', port, databaseUrl: fresh.url, poolSize, encryptionKey: key, fakeApiBaseUrl: fake.apiBaseUrl, adminKey, logLevel },
      { ...chargeRunEnv(concurrency, batchSize), SERVICE_API_KEY: serviceKey, ...(runReserve ? { DATABASE_POOL_RUN_RESERVE: runReserve } : {}) },
    ),
    { stdout: fd, ipc: true },
  );
  closeSync(fd);
  // The log goes at exit, also on failure (its tail is printed then), unless a check failed: then it is kept.
  let failed = true;
  onCleanup(() => {
    if (failed && !logKept) {
      try {
        process.stderr.write(`--- the service log's tail (${logFile}) ---\n${readFileSync(logFile, 'utf8').slice(-3000)}\n`);
      } catch {
        /* none */
      }
    }
    if (!logKept) rmSync(logFile, { force: true });
  });
  const base = `http://127.0.0.1:${port}`;
  await waitForHttp(`${base}/health`, server);
  log(`service up at ${base} (pid ${server.proc.pid}, log ${logFile})`);

  // ---------------------------------------------------------------------------------------- measuring helpers
  const serviceStats = (): Promise<ServiceStats | null> =>
    new Promise((res) => {
      const t = setTimeout(() => {
        server.proc.off('message', onMessage);
        res(null);
      }, 5000);
      const onMessage = (m: unknown) => {
        if ((m as { type?: string })?.type !== 'stats') return;
        clearTimeout(t);
        server.proc.off('message', onMessage);
        const { requests, eventLoopDelayMs, pool, sql } = m as ServiceStats;
        res({ requests, eventLoopDelayMs, pool, sql });
      };
      server.proc.on('message', onMessage);
      server.proc.send?.({ type: 'stats' });
    });
  /** Waits until the service has answered every request it received (at most 60 s). */
  const drained = async (): Promise<void> => {
    const until = Date.now() + 60_000;
    for (;;) {
      const n = await new Promise<number>((res) => {
        const t = setTimeout(() => {
          server.proc.off('message', onMessage);
          res(-1);
        }, 5000);
        const onMessage = (m: unknown) => {
          if ((m as { type?: string })?.type !== 'in-flight') return;
          clearTimeout(t);
          server.proc.off('message', onMessage);
          res((m as { inFlight: number }).inFlight);
        };
        server.proc.on('message', onMessage);
        server.proc.send?.({ type: 'in-flight' });
      });
      if (n === 0) return;
      if (Date.now() > until) return log(`the service still has ${n} requests in flight after 60 s; going on`);
      await sleep(50);
    }
  };
  const pgRe = new RegExp(`postgres: .*${fresh.name}(?!\\w)`);
  const usage = async () => {
    await serviceStats(); // counting afresh from here
    const m0 = machineCpu();
    const s0 = cpuSecondsOfPid(server.proc.pid);
    const pg = cpuMeter(pgRe);
    const f0 = cpuSecondsOfPid(fake.child.proc.pid);
    const b0 = process.cpuUsage();
    return async (): Promise<Usage> => {
      const b = process.cpuUsage(b0);
      return {
        serviceCpuS: round2(cpuSecondsOfPid(server.proc.pid) - s0),
        postgresCpuS: round2(pg.finish()),
        fakeCpuS: round2(cpuSecondsOfPid(fake.child.proc.pid) - f0),
        benchCpuS: round2((b.user + b.system) / 1e6),
        machineBusy: busyShare(m0, machineCpu()),
        service: await serviceStats(),
      };
    };
  };

  const created = new Set<string>();
  let duplicateIds = 0;
  const statuses: Record<number, number> = {};
  const subscriptions = subscriptionRequests(api, customers, serviceKey);
  const subscriptionRequest = () =>
    subscriptions.request((status, body) => {
      statuses[status] = (statuses[status] ?? 0) + 1;
      if (status !== 201) return;
      try {
        const id = (JSON.parse(body) as { id?: string }).id;
        if (!id) return;
        if (created.has(id)) duplicateIds++;
        created.add(id);
      } catch {
        /* counted as a 201 without an id below */
      }
    });

  /** POST /v1/subscriptions for `seconds`; `stopWhen` (checked every 100 ms) ends it early. */
  const apiPhase = async (name: string, seconds: number, conns: number, stopWhen?: () => boolean): Promise<ApiPhase> => {
    const done = await usage();
    const from = at();
    const fromWall = new Date();
    const c = cannon({ url: base, connections: conns, duration: seconds, timeout: 30, requests: [subscriptionRequest()] });
    let stoppedEarly = false;
    const watch = stopWhen
      ? setInterval(() => {
          if (!stoppedEarly && stopWhen()) {
            stoppedEarly = true;
            c.stop();
          }
        }, 100)
      : null;
    const r = await c.done;
    if (watch) clearInterval(watch);
    const to = at();
    const toWall = new Date();
    await drained(); // the answers autocannon stopped waiting for, before anything else is measured
    return {
      name,
      seconds: round2((to - from) / 1000),
      from,
      to,
      fromWall,
      toWall,
      requests: r['2xx'] + r.non2xx,
      perSecond: Math.round(r['2xx'] / Math.max(0.001, (to - from) / 1000)),
      ...latencyFigures(r),
      stoppedEarly,
      ...(await done()),
    };
  };

  const adminFetch = async <T>(method: string, path: string, body?: unknown): Promise<{ status: number; json: T }> => {
    const res = await fetch(`${base}${path}`, {
      method,
      headers: { 'content-type': 'application/json', authorization: `Bearer ${adminKey}` },
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: AbortSignal.timeout(30_000),
    });
    const text = await res.text();
    return { status: res.status, json: (text ? JSON.parse(text) : null) as T };
  };

  /** Starts a run through the API; `during` runs alongside; resolves when the run is no longer running. */
  const runPhase = async (name: string, set: SeedResult, during?: (isOver: () => boolean) => Promise<void>): Promise<RunPhase> => {
    await settleDatabase();
    const done = await usage();
    const from = at();
    const started = await adminFetch<RunDto>('POST', '/v1/charge-runs', {});
    if (started.status !== 202) throw new Error(`POST /v1/charge-runs: ${started.status} ${JSON.stringify(started.json)}`);
    let run = started.json;
    let over = false;
    const poll = (async () => {
      while (run.status === 'running') {
        await sleep(pollMs);
        const r = await adminFetch<RunDto>('GET', `/v1/charge-runs/${run.id}`);
        if (r.status !== 200) throw new Error(`GET /v1/charge-runs/${run.id}: ${r.status} ${JSON.stringify(r.json)}`);
        run = r.json;
      }
    })().finally(() => (over = true));
    // Awaited below (and so rethrown); logged here so that it is no unhandled rejection while `during` runs.
    poll.catch((err: unknown) => log(`reading the run's status failed: ${String(err)}`));
    if (during) await during(() => over);
    await poll;
    const to = at();
    const u = await done();
    if (run.status !== 'completed') throw new Error(`run ${run.id} ended ${run.status}: ${run.error ?? ''}`);
    const durationS = (Date.parse(run.finished_at!) - Date.parse(run.started_at)) / 1000;
    const check = await checkChargedOnce(fresh.url, fake.url, set.subscriptionIds, set.periodStart);
    return {
      name,
      id: run.id,
      status: run.status,
      due: run.counts.due,
      charged: run.counts.charged,
      counts: run.counts,
      durationS: round2(durationS),
      perSecond: Math.round(run.counts.charged / Math.max(0.001, durationS)),
      from: Math.min(from, wallAt(run.started_at)),
      to: Math.min(to, wallAt(run.finished_at!)),
      check,
      ...u,
    };
  };

  // ---------------------------------------------------------------------------------------- the phases
  let warm: ApiPhase | null = null;
  if (warmup > 0) {
    log(`warm-up: POST /v1/subscriptions at ${warmConnections} connections for ${warmup} s`);
    warm = await apiPhase('warm-up', warmup, warmConnections);
  }
  log(`a. API alone: POST /v1/subscriptions at ${connections} connections for ${duration} s`);
  const alone = await apiPhase('API alone', duration, connections);

  log(`b. run alone: ${n} due subscriptions, concurrency ${concurrency}`);
  const runAlone = await runPhase('run alone', setA);
  log(`   ${runAlone.charged} charged in ${runAlone.durationS} s = ${runAlone.perSecond}/s`);

  const setB = await seed('run_b', n);
  // The API load has to fit inside the loaded run; that run is no shorter than the run alone, so 0.8 of that is safe.
  const fits = Math.floor(runAlone.durationS * 0.8 - lead);
  const loadSeconds = Math.max(1, Math.min(duration, fits));
  if (loadSeconds < duration) {
    log(`   the run alone took ${runAlone.durationS} s: the API load during the run is cut to ${loadSeconds} s (of ${duration}) to fit inside it`);
  }
  log(`c. run and API: ${n} due subscriptions; after ${lead} s, POST /v1/subscriptions at ${connections} connections for ${loadSeconds} s`);
  let both: ApiPhase | null = null;
  const runLoaded = await runPhase('run with API load', setB, async (isOver) => {
    const until = performance.now() + lead * 1000;
    while (performance.now() < until && !isOver()) await sleep(50);
    if (isOver()) return;
    both = await apiPhase('API during the run', loadSeconds, connections, isOver);
  });
  if (!both) throw new Error(`the run ended within the ${lead} s lead: no API load was measured during it (make BENCH_LOAD_N larger)`);
  const loaded = both as ApiPhase;
  // The run's own pace while the API load was on (the whole run also has the lead and the tail without it): its
  // payments approved in that window (updated_at is the approval's write, grouped per batch).
  const window = {
    charged: Number(
      (
        await sql<{ n: number }>(
          `SELECT count(*)::int AS n FROM payments WHERE charge_run_id = $1 AND status = 'DONE' AND updated_at >= $2 AND updated_at < $3`,
          [runLoaded.id, loaded.fromWall, loaded.toWall],
        )
      )[0].n,
    ),
    seconds: (loaded.toWall.getTime() - loaded.fromWall.getTime()) / 1000,
  };
  log(`   ${runLoaded.charged} charged in ${runLoaded.durationS} s = ${runLoaded.perSecond}/s`);

  // ---------------------------------------------------------------------------------------- checks
  await server.stop();
  const apiStored = Number((await sql<{ n: number }>(`SELECT count(*)::int AS n FROM subscriptions WHERE plan_id = $1`, [api.planId]))[0].n);
  const ids = [...created];
  const idsStored = Number(
    (await sql<{ n: number }>(`SELECT count(*)::int AS n FROM subscriptions WHERE id = ANY($1::uuid[]) AND plan_id = $2`, [ids, api.planId]))[0].n,
  );
  const customersWithTwo = Number(
    (
      await sql<{ n: number }>(
        `SELECT count(*)::int AS n FROM (SELECT customer_id FROM subscriptions WHERE plan_id = $1 GROUP BY customer_id HAVING count(*) > 1) t`,
        [api.planId],
      )
    )[0].n,
  );
  const apiPayments = Number(
    (
      await sql<{ n: number }>(`SELECT count(*)::int AS n FROM payments p JOIN subscriptions s ON s.id = p.subscription_id WHERE s.plan_id = $1`, [api.planId])
    )[0].n,
  );
  const answered201 = statuses[201] ?? 0;
  const phasesApi = [...(warm ? [warm] : []), alone, loaded];
  const inFlightAtEnds = phasesApi.reduce((a, p) => a + (p.name === 'warm-up' ? warmConnections : connections), 0);
  const non2xx = phasesApi.reduce((a, p) => a + p.non2xx, 0);
  const errors = phasesApi.reduce((a, p) => a + p.errors + p.timeouts, 0);
  const apiOk =
    non2xx === 0 &&
    errors === 0 &&
    duplicateIds === 0 &&
    ids.length === answered201 &&
    idsStored === ids.length &&
    apiStored >= ids.length &&
    apiStored <= ids.length + inFlightAtEnds &&
    (subscriptions.wrapped() || customersWithTwo === 0) &&
    apiPayments === 0;
  // The fake's ledger holds both runs' charges: A's check was complete when it was made; for B's, the fake's total
  // must be A + B, and doubles, lost and the one-to-one match of DONE payments are B's own (and global).
  const a = runAlone.check;
  const b = runLoaded.check;
  const chargeOkA = a.ok && a.openAttempts === 0 && runAlone.charged === n && runAlone.due === n;
  const chargeOkB =
    b.doubles === 0 &&
    b.lost === 0 &&
    b.doneWithoutFakeCharge === 0 &&
    b.fakeChargeWithoutDone === 0 &&
    b.fakeCharges === 2 * n &&
    b.openAttempts === 0 &&
    runLoaded.charged === n &&
    runLoaded.due === n;

  // How much of the API window had the run charging.
  const overlapMs = Math.max(0, Math.min(loaded.to, runLoaded.to) - Math.max(loaded.from, runLoaded.from));
  const overlap = overlapMs / Math.max(1, loaded.to - loaded.from);
  const p99Ratio = loaded.p99 / Math.max(0.001, alone.p99);
  const p50Ratio = loaded.p50 / Math.max(0.001, alone.p50);
  const tputRatio = runLoaded.perSecond / Math.max(0.001, runAlone.perSecond);
  const p99Met = p99Ratio <= 2;
  const tputMet = tputRatio >= 0.8;
  const w = window;
  const windowPerSecond = Math.round(w.charged / Math.max(0.001, w.seconds));
  const windowRatio = windowPerSecond / Math.max(0.001, runAlone.perSecond);

  // ---------------------------------------------------------------------------------------- report
  const lines: string[] = [];
  const svc = (u: Usage) => (u.service ? `${u.service.eventLoopDelayMs.p99} / ${u.service.eventLoopDelayMs.max}` : '?');
  const pool = (u: Usage) =>
    u.service
      ? `${u.service.pool.waitMs.p50} / ${u.service.pool.waitMs.p99} / ${u.service.pool.waitMs.max} (${u.service.pool.waitingAvg} waiting, ${u.service.pool.inUseAvg} in use)`
      : '?';
  const cpu = (u: Usage) => `${u.serviceCpuS} | ${u.postgresCpuS} | ${u.fakeCpuS} | ${u.benchCpuS}`;
  lines.push(
    `\nbench:load  N=${n}  C=${concurrency}  L=${latencyMs} ms  batch=${batchSize}  pool=${poolSize} (run reserve ${runReserve ?? 'default'})  ${connections} connections  ` +
      `LOG_LEVEL=${logLevel}  database=${db.embedded ? 'embedded PostgreSQL' : 'BENCH_DATABASE_URL'}  load average ${loadavg()[0].toFixed(1)}\n`,
  );
  lines.push('POST /v1/subscriptions (trial plan: no charge call)');
  lines.push(
    table(
      ['phase', 's', 'requests', 'req/s', 'p50 ms', 'p90 ms', 'p99 ms', 'max ms', 'non-2xx', 'errors', 'CPU s service|pg|fake|bench', 'machine busy'],
      phasesApi.map((p) => [
        p.name + (p.stoppedEarly ? ' (stopped: run over)' : ''),
        p.seconds,
        p.requests,
        p.perSecond,
        p.p50,
        p.p90,
        p.p99,
        p.max,
        p.non2xx,
        p.errors + p.timeouts,
        cpu(p),
        percent(p.machineBusy),
      ]),
    ),
  );
  lines.push('\nCharge runs');
  lines.push(
    table(
      ['run', 'due', 'charged', 'failed', 'unknown', 's', 'charges/s', 'vs C/L', 'CPU s service|pg|fake|bench', 'machine busy', 'charged once'],
      [runAlone, runLoaded].map((r) => [
        r.name,
        r.due,
        r.charged,
        r.counts.failed ?? 0,
        r.counts.unknown ?? 0,
        r.durationS,
        r.perSecond,
        `${(r.perSecond / ((concurrency * 1000) / Math.max(1, latencyMs))).toFixed(2)} x`,
        cpu(r),
        percent(r.machineBusy),
        `${r.check.chargedOnce}/${r.check.subscriptions}`,
      ]),
    ),
  );
  lines.push('\nInside the service process (event loop delay p99 / max ms; pool wait for a connection p50 / p99 / max ms)');
  lines.push(
    table(
      ['phase', 'event loop delay', 'pool wait', 'pool acquires', 'HTTP requests', 'SQL round trips', 'per request | charge'],
      [...phasesApi, runAlone, runLoaded].map((p) => {
        const units = 'charged' in p ? p.charged : (p.service?.requests ?? p.requests);
        return [
          p.name,
          svc(p),
          pool(p),
          p.service?.pool.acquires ?? '?',
          p.service?.requests ?? '?',
          p.service?.sql.roundTrips ?? '?',
          p.service ? (p.service.sql.roundTrips / Math.max(1, units)).toFixed(2) : '?',
        ];
      }),
    ),
  );
  for (const p of [alone, runAlone] as Usage[]) {
    const units = 'charged' in p ? (p as RunPhase).charged : (p.service?.requests ?? (p as ApiPhase).requests);
    lines.push(`Most frequent SQL, ${(p as ApiPhase | RunPhase).name} (calls per ${'charged' in p ? 'charge' : 'request'}):`);
    for (const t of p.service?.sql.top.slice(0, 6) ?? []) lines.push(`  ${(t.calls / Math.max(1, units)).toFixed(2).padStart(6)}  ${t.sql}`);
  }
  lines.push(
    `\nAPI load during the run: from ${((loaded.from - runLoaded.from) / 1000).toFixed(1)} s to ${((loaded.to - runLoaded.from) / 1000).toFixed(1)} s of a ` +
      `${runLoaded.durationS} s run; ${Math.round(overlap * 100)}% of the API window had the run charging` +
      (loadSeconds < duration ? ` (cut from ${duration} s to fit the run)` : '') +
      `. p50 ratio ${p50Ratio.toFixed(2)} x; API req/s during / alone ${(loaded.perSecond / Math.max(1, alone.perSecond)).toFixed(2)} x.`,
  );
  lines.push(
    `The run while the API load was on: ${w.charged} charged in ${w.seconds.toFixed(1)} s = ${windowPerSecond}/s = ${windowRatio.toFixed(2)} x the run alone ` +
      `(the target below is over the whole run, which also has ${lead} s before and the tail after the API load).`,
  );
  lines.push(
    `Subscriptions created: ${answered201} answered 201 (${ids.length} distinct ids), ${idsStored} of them stored, ${apiStored} stored in all ` +
      `(<= ${inFlightAtEnds} more allowed: requests in flight when a phase was cut), ${apiPayments} payments on the trial plan` +
      (subscriptions.wrapped()
        ? `; the ${customers} pre-created customers were cycled (raise BENCH_LOAD_CUSTOMERS)`
        : `; ${customersWithTwo} customers with two`) +
      '.',
  );
  lines.push(
    targetsTable([
      {
        target: 'p99 POST /v1/subscriptions during the run / alone',
        required: '<= 2 x',
        measured: `${loaded.p99} / ${alone.p99} ms = ${p99Ratio.toFixed(2)} x`,
        met: p99Met,
      },
      {
        target: 'run throughput with API load / alone',
        required: '>= 0.8 x',
        measured: `${runLoaded.perSecond} / ${runAlone.perSecond} per s = ${tputRatio.toFixed(2)} x`,
        met: tputMet,
      },
      {
        target: 'each subscription charged exactly once (both runs)',
        required: 'all, DONE = fake 1:1',
        measured:
          `${a.chargedOnce + b.chargedOnce}/${2 * n} once, ${a.doubles + b.doubles} doubles, ${a.lost + b.lost} lost, ${b.fakeCharges} at the fake, ` +
          `${b.doneWithoutFakeCharge + b.fakeChargeWithoutDone} unmatched, ${b.openAttempts} open`,
        met: chargeOkA && chargeOkB,
      },
      {
        target: 'every 201 stored exactly one subscription',
        required: 'no errors; ids stored once',
        measured: `${non2xx} non-2xx, ${errors} errors, ${duplicateIds} repeated ids, ${idsStored}/${answered201} stored, ${apiStored - idsStored} more stored`,
        met: apiOk,
      },
    ]),
  );
  const correct = apiOk && chargeOkA && chargeOkB && overlap > 0;
  if (overlap < 0.99) lines.push(`NOTE: only ${Math.round(overlap * 100)}% of the API window overlapped the run; the p99 ratio is diluted.`);
  if (!correct) {
    logKept = true;
    lines.push(`service log kept: ${logFile}`);
  }
  const file = writeResults('load', {
    at: new Date().toISOString(),
    settings: {
      n,
      duration,
      durationDuringRun: loadSeconds,
      connections,
      lead,
      warmup,
      customers,
      pollMs,
      logLevel,
      latencyMs,
      concurrency,
      batchSize,
      poolSize,
      runReserve,
      database: db.embedded ? 'embedded' : 'BENCH_DATABASE_URL',
    },
    seeding: { apiSeconds: api.seconds, setASeconds: setA.seconds, setBSeconds: setB.seconds },
    api: phasesApi,
    runs: [runAlone, runLoaded],
    overlap,
    ratios: { p99: p99Ratio, p50: p50Ratio, throughput: tputRatio, throughputWhileApiLoad: windowRatio },
    runWhileApiLoad: w,
    created: {
      answered201,
      distinctIds: ids.length,
      idsStored,
      apiStored,
      inFlightAtEnds,
      customersWithTwo,
      wrapped: subscriptions.wrapped(),
      apiPayments,
      statuses,
    },
    targets: { p99Met, throughputMet: tputMet, chargedOnce: chargeOkA && chargeOkB, createdOnce: apiOk },
  });
  lines.push(`results: ${file}`);
  process.stdout.write(lines.join('\n') + '\n');
  failed = false;
  await fake.stop();
  return correct ? 0 : 1;
}

runMain(main, intEnv('BENCH_TIMEOUT_S', 3600, 10));
