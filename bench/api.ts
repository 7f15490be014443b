/**
 * `npm run bench:api`: latency of `POST /v1/subscriptions` against a trivial endpoint (`GET /health`: one `SELECT 1`)
 * of the same service process, under autocannon at BENCH_API_CONNECTIONS (200) for BENCH_API_DURATION_S (20 s) each.
 *
 * The service runs as its own process (bench/server.ts: the same loadConfig/createApp as main.ts, NODE_ENV=development
 * so that the test clock is there, frozen at the start of the measurement; LOG_LEVEL=info so each request is logged as
 * in production, to a temp file) on a fresh database (embedded
 * PostgreSQL in a temp dir, or BENCH_DATABASE_URL), with the fake Bootpay in another process.
 *
 * What a request creates: customers and billing keys are pre-created with set-based SQL (BENCH_API_CUSTOMERS,
 * default 100000; keys issued at the fake in bulk and stored encrypted like the service does), ONE PER REQUEST
 * (cycled if the run needs more; the report says so), and the plan has a 14-day trial, so creating a subscription
 * makes no charge call to Bootpay: the request is validation, auth, one statement (reference checks with the
 * key's row lock, the subscription row, its audit event and outbox rows) and the answer. A subscription that
 * charged at creation would measure Bootpay's latency (BENCH_LATENCY_MS), not the service.
 * Before measuring, both endpoints are warmed up for BENCH_API_WARMUP_S (3 s) at 50 connections.
 * Target: p99(POST /v1/subscriptions) <= 3 x p99(GET /health). Results: bench/results/api-<timestamp>.json.
 */
import autocannon from 'autocannon';
import { randomBytes } from 'node:crypto';
import { closeSync, openSync, readFileSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client } from 'pg';
import {
  busyShare,
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
  percent,
  ROOT,
  round2,
  runMain,
  seedDueSubscriptions,
  subscriptionRequests,
  table,
  targetsTable,
  writeResults,
} from './lib';
import { serviceEnv, spawnNode, startDatabaseServer, startFake, waitForHttp } from './processes';

interface Phase extends LatencyFigures {
  name: string;
  /** SQL round trips the service made per answered request during the phase (counted in the service process). */
  sqlRoundTripsPerRequest: number;
  sqlTop: { perRequest: number; sql: string }[];
  path: string;
  requests: number;
  perSecond: number;
  serverCpuS: number;
  postgresCpuS: number;
  machineBusy: number | null;
}

async function main(): Promise<number> {
  const duration = intEnv('BENCH_API_DURATION_S', 20, 1, 600);
  const warmup = intEnv('BENCH_API_WARMUP_S', 3, 0, 60);
  const connections = intEnv('BENCH_API_CONNECTIONS', 200, 1, 10_000);
  const customers = intEnv('BENCH_API_CUSTOMERS', 100_000, 1, 1_000_000);
  const latencyMs = intEnv('BENCH_LATENCY_MS', 50, 0, 10_000);
  const poolSize = intEnv('BENCH_POOL_SIZE', 20, 2, 500);
  const logLevel = process.env.BENCH_API_LOG_LEVEL?.trim() || 'info';

  const db = await startDatabaseServer();
  const fresh = await db.fresh('api');
  const fake = await startFake(latencyMs);
  const key = newEncryptionKey();
  const seed = await seedDueSubscriptions(fresh.url, fake.url, key, customers, { trialDays: 14, withSubscriptions: false });
  log(`seeded ${customers} customers with a billing key each and a trial plan in ${seed.seconds.toFixed(1)} s`);

  const port = await freePort();
  const serviceKey = `bsk_bench_svc_${randomBytes(16).toString('hex')}`;
  const adminKey = `bsk_bench_adm_${randomBytes(16).toString('hex')}`;
  const logFile = join(tmpdir(), `bench-api-server-${process.pid}.log`);
  const statsFile = join(tmpdir(), `bench-api-sql-${process.pid}.jsonl`);
  rmSync(statsFile, { force: true });
  const fd = openSync(logFile, 'w');
  const server = spawnNode(
    join(DIST, 'bench', 'server.js'),
    [],
    serviceEnv(
      { nodeEnv: 'development', port, databaseUrl: fresh.url, poolSize, encryptionKey: key, fakeApiBaseUrl: fake.apiBaseUrl, adminKey, logLevel },
      { SERVICE_API_KEY: serviceKey, BENCH_SQL_STATS_FILE: statsFile },
    ),
    { stdout: fd, nodeArgs: process.env.BENCH_CPU_PROF ? ['--cpu-prof', `--cpu-prof-dir=${join(ROOT, 'bench', 'results', 'profiles')}`] : [] },
  );
  closeSync(fd);
  const base = `http://127.0.0.1:${port}`;
  try {
    await waitForHttp(`${base}/health`, server);
  } catch (err) {
    process.stderr.write(readFileSync(logFile, 'utf8').slice(-4000));
    throw err;
  }
  log(`service up at ${base} (pid ${server.proc.pid}, log ${logFile})`);
  // The service's time comes from the test clock, frozen now: every subscription starts at the same instant.
  const frozen = await fetch(`${base}/v1/test/clock`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${adminKey}` },
    body: JSON.stringify({ now: new Date().toISOString() }),
  });
  if (frozen.status !== 200) throw new Error(`could not set the test clock: ${frozen.status} ${await frozen.text()}`);

  const subscriptions = subscriptionRequests(seed, customers, serviceKey);
  const healthRequest = (): autocannon.Request => ({ method: 'GET', path: '/health' });

  const pgRe = new RegExp(`postgres: .*${fresh.name}(?!\\w)`);
  // SIGUSR2 makes the service write its SQL counts since the previous signal as one line of statsFile.
  let dumps = 0;
  const sqlDump = async (): Promise<{ roundTrips: number; statements: number; byKind: Record<string, number>; top: { calls: number; sql: string }[] }> => {
    server.proc.kill('SIGUSR2');
    dumps++;
    for (let i = 0; i < 100; i++) {
      await new Promise((r) => setTimeout(r, 20));
      try {
        const lines = readFileSync(statsFile, 'utf8').trim().split('\n');
        if (lines.length >= dumps) return JSON.parse(lines[dumps - 1]);
      } catch {
        /* not yet */
      }
    }
    throw new Error('the service wrote no SQL counts');
  };
  const measure = async (name: string, req: autocannon.Request, seconds: number, conns: number): Promise<Phase> => {
    await sqlDump(); // counting afresh from here
    const m0 = machineCpu();
    const s0 = cpuSecondsOfPid(server.proc.pid);
    const pg = cpuMeter(pgRe);
    const r = await autocannon({ url: base, connections: conns, duration: seconds, timeout: 30, requests: [req] });
    await new Promise((res) => setTimeout(res, 300)); // the answers autocannon stopped waiting for
    const sql = await sqlDump();
    const served = Math.max(1, r['2xx'] + r.non2xx);
    return {
      sqlRoundTripsPerRequest: Math.round((sql.roundTrips / served) * 100) / 100,
      sqlTop: sql.top.slice(0, 20).map((t) => ({ perRequest: Math.round((t.calls / served) * 100) / 100, sql: t.sql })),
      name,
      path: `${req.method} ${req.path}`,
      requests: r.requests.total ?? r['2xx'] + r.non2xx,
      perSecond: r.requests.average,
      ...latencyFigures(r),
      serverCpuS: round2(cpuSecondsOfPid(server.proc.pid) - s0),
      postgresCpuS: round2(pg.finish()),
      machineBusy: busyShare(m0, machineCpu()),
    };
  };

  const phases: Phase[] = [];
  let warmupCreated = 0;
  if (warmup > 0) {
    log(`warming up ${warmup} s per endpoint at 50 connections`);
    await measure('warm-up', healthRequest(), warmup, 50);
    warmupCreated = (await measure('warm-up', subscriptions.request(), warmup, 50)).status2xx;
  }
  log(`GET /health: ${connections} connections for ${duration} s`);
  phases.push(await measure('trivial', healthRequest(), duration, connections));
  log(`POST /v1/subscriptions: ${connections} connections for ${duration} s`);
  const subsPhase = await measure('subscriptions', subscriptions.request(), duration, connections);
  phases.push(subsPhase);

  // Every 2xx made one subscription, and nothing else did (counted once the service has stopped).
  await server.stop();
  const c = new Client({ connectionString: fresh.url });
  await c.connect();
  const stored = Number((await c.query(`SELECT count(*)::int AS n FROM subscriptions`)).rows[0].n);
  const trialing = Number((await c.query(`SELECT count(*)::int AS n FROM subscriptions WHERE status = 'trialing'`)).rows[0].n);
  const payments = Number((await c.query(`SELECT count(*)::int AS n FROM payments`)).rows[0].n);
  await c.end();
  rmSync(statsFile, { force: true });

  const trivial = phases[0];
  const ratio = subsPhase.p99 / Math.max(0.001, trivial.p99);
  const lines: string[] = [];
  lines.push(
    `\nbench:api  ${connections} connections x ${duration} s per endpoint  pool=${poolSize}  LOG_LEVEL=${logLevel}  ` +
      `database=${db.embedded ? 'embedded PostgreSQL' : 'BENCH_DATABASE_URL'}  load average ${loadavg()[0].toFixed(1)}\n`,
  );
  lines.push(
    table(
      [
        'endpoint',
        'requests',
        'req/s',
        'p50 ms',
        'p90 ms',
        'p99 ms',
        'max ms',
        '2xx',
        'non-2xx',
        'errors',
        'SQL round trips/req',
        'CPU ms/req service|pg',
        'machine busy',
      ],
      phases.map((p) => [
        p.path,
        p.requests,
        p.perSecond.toFixed(0),
        p.p50,
        p.p90,
        p.p99,
        p.max,
        p.status2xx,
        p.non2xx,
        p.errors + p.timeouts,
        p.sqlRoundTripsPerRequest,
        `${((p.serverCpuS * 1000) / Math.max(1, p.status2xx + p.non2xx)).toFixed(2)} | ${((p.postgresCpuS * 1000) / Math.max(1, p.status2xx + p.non2xx)).toFixed(2)}`,
        percent(p.machineBusy),
      ]),
    ),
  );
  lines.push(`\nSQL per POST /v1/subscriptions (calls per request):`);
  for (const t of subsPhase.sqlTop.slice(0, 16)) lines.push(`  ${t.perRequest.toFixed(2).padStart(6)}  ${t.sql}`);
  lines.push(`\np50 ratio subscriptions/trivial: ${(subsPhase.p50 / Math.max(0.001, trivial.p50)).toFixed(2)} x;  p99 ratio: ${ratio.toFixed(2)} x`);
  lines.push(
    `subscriptions: each request used its own pre-created customer and billing key${subscriptions.wrapped() ? ` (the ${customers} pre-created were cycled: some keys got a second subscription)` : ''}; ` +
      `trial plan, so no charge call; ${stored} stored (${trialing} trialing), ${payments} payments; 201s answered (with warm-up): ${warmupCreated + subsPhase.status2xx}`,
  );
  const met = ratio <= 3;
  // autocannon stops counting at the end of a phase while up to `connections` requests are still being answered: the
  // service stores those too.
  const answered = warmupCreated + subsPhase.status2xx;
  const inFlightAtEnds = connections + (warmup > 0 ? 50 : 0);
  const storedOk = stored >= answered && stored <= answered + inFlightAtEnds;
  const correct = subsPhase.non2xx === 0 && subsPhase.errors === 0 && trivial.non2xx === 0 && storedOk;
  lines.push(
    targetsTable([
      {
        target: 'p99 POST /v1/subscriptions vs GET /health',
        required: '<= 3 x',
        measured: `${subsPhase.p99} / ${trivial.p99} ms = ${ratio.toFixed(2)} x`,
        met,
      },
      {
        target: 'no errors, one row per 201',
        required: `all 2xx; stored = 201s (+ <= ${inFlightAtEnds} in flight at phase ends)`,
        measured: `${subsPhase.non2xx + trivial.non2xx} non-2xx, ${subsPhase.errors + trivial.errors} errors, ${stored} stored / ${answered} 201s counted`,
        met: correct,
      },
    ]),
  );
  const file = writeResults('api', {
    at: new Date().toISOString(),
    settings: {
      duration,
      warmup,
      connections,
      customers,
      latencyMs,
      poolSize,
      logLevel,
      database: db.embedded ? 'embedded' : 'BENCH_DATABASE_URL',
      subscriptionsMode: 'one pre-created customer and key per request, trial plan (no charge call)',
    },
    phases,
    p99Ratio: ratio,
    p50Ratio: subsPhase.p50 / Math.max(0.001, trivial.p50),
    stored,
    trialing,
    payments,
    wrapped: subscriptions.wrapped(),
    targets: { p99RatioMet: met, noErrors: correct },
  });
  lines.push(`results: ${file}`);
  if (correct) rmSync(logFile, { force: true });
  else lines.push(`service log kept: ${logFile}`);
  process.stdout.write(lines.join('\n') + '\n');
  await fake.stop();
  return correct ? 0 : 1;
}

runMain(main, intEnv('BENCH_TIMEOUT_S', 1800, 10));
