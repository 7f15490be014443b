/**
 * `npm run bench:charge`: the nightly charge run's speed, SQL per charge and memory, against the same work done
 * the way a user might build it on pg-boss.
 *
 * For each N (BENCH_N, default 10000,100000), in this order, each scenario in its own child process (so peak RSS is
 * per N) on a fresh database (embedded PostgreSQL in a temp dir, or a server at BENCH_DATABASE_URL) with a fresh fake
 * Bootpay in another process (latency BENCH_LATENCY_MS, default 50):
 *   engine  N due subscriptions seeded with set-based SQL, then ONE charge run in-process (createApp, ChargeRunsService)
 *           with CHARGE_RUN_CONCURRENCY = BENCH_CONCURRENCY (64), rate 100000/s, batch BENCH_BATCH_SIZE (200, the service's default),
 *           pool BENCH_POOL_SIZE (20, the service's default); pg's Client.prototype.query is counted during the run
 *           and RSS sampled every 20 ms.
 *   pg-boss the same seed; one job per due subscription (enqueued by a set-based insert, counted in the duration),
 *           worked at the same concurrency; the handler opens an attempt under the subscription's row lock
 *           (ChargeAttemptsService.open), charges through the same BootpayGateway (ChargeAttemptsService.send) and
 *           settles (ChargeAttemptsService.settle). Two ways of working the queue are measured and the faster is the
 *           baseline: `batched` (BENCH_PGBOSS_WORKERS=4 workers fetching BENCH_PGBOSS_BATCH=128 jobs, each running
 *           them C/workers at a time) and `simple` (C workers of one job each, polling every 0.5 s, pg-boss's floor).
 *           BENCH_PGBOSS=batched|simple|both|off (both); it runs at min(N, BENCH_PGBOSS_MAX_N=10000).
 * Afterwards every scenario is checked at the fake: each subscription charged exactly once, local DONE payments equal
 * to the fake's charges one to one. Results go to bench/results/charge-<timestamp>.json.
 *
 * CPU per charge: the engine's process plus PostgreSQL (its database's backends and, for the embedded server, the
 * auxiliary processes: WAL writer, checkpointer, I/O workers; autovacuum shown apart and not counted) against the
 * gateway-only loop's process, each divided by its own charges, both read from /proc over the same window (the child's
 * 'started' to 'ran': both start cold on the gateway path), at the same latency and concurrency; the fake's CPU is
 * printed but counted on neither side. Target: <= 1.3 x. BENCH_CPU_PROF=1 profiles exactly that window in each child
 * (bench/results/profiles/<mode>-<N>-<time>.cpuprofile; `node dist/bench/profile-summary.js --per <N> <files>`).
 */
import 'reflect-metadata';
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { createApp } from '../src/app.factory';
import { ChargeAttemptsService } from '../src/ledger/charge-attempts.service';
import { ChargeRunsService } from '../src/charging/charge-runs.service';
import { runPool } from '../src/charging/concurrency';
import { BootpayGateway } from '../src/gateway/bootpay.gateway';
import { PlanEntity } from '../src/plans/plan.entity';
import { SubscriptionEntity } from '../src/ledger/subscription.entity';
import type { DataSource } from 'typeorm';
import { getDataSourceToken } from '@nestjs/typeorm';
import { loadavg } from 'node:os';
import {
  boolEnv,
  bulkKeys,
  busyShare,
  ChargeCheck,
  CHECK_HEADERS,
  checkCells,
  chargedOnceTarget,
  cpuOfProcessTree,
  cpuSecondsOf,
  cpuSecondsOfPid,
  describeCheck,
  fakeLedger,
  finishReport,
  machineCpu,
  ROOT,
  checkChargedOnce,
  DIST,
  intEnv,
  listEnv,
  log,
  mib,
  newEncryptionKey,
  percent,
  QueryCounter,
  round2,
  RssSampler,
  runMain,
  seedDueSubscriptions,
  table,
  Target,
  targetsTable,
  throughputCells,
} from './lib';
import { childResult, runChild, spawnNode, startDatabaseServer, startFake } from './processes';
import { benchRuntime, ChargeRunChildOptions, chargeRunRuntime } from './runtime';

type Mode = 'engine' | 'pgboss-batched' | 'pgboss-simple' | 'gateway-only';

interface ChildOptions extends ChargeRunChildOptions {
  mode: Mode;
  n: number;
  pgbossWorkers: number;
  pgbossBatch: number;
}

interface ChildResult {
  mode: Mode;
  n: number;
  status: string;
  durationS: number;
  charged: number;
  counts: Record<string, number>;
  roundTrips: number;
  statements: number;
  byKind: Record<string, number>;
  topStatements: { perCharge: number; calls: number; sql: string }[];
  rssBeforeMiB: number;
  peakRssMiB: number;
  peakHeapUsedMiB: number;
  rssSamples: number;
  /** [s, RSS MiB, heap MiB] every 10 s of the run. */
  memoryTimeline: [number, number, number][];
  /** CPU seconds this process used during the run (user + system). */
  cpuSeconds: number;
}

/** Measured by the orchestrator around the run (Linux /proc). */
interface CpuShares {
  machineBusyShare: number | null;
  loadAverage1m: number;
  benchProcessCpuS: number;
  /** PostgreSQL's CPU counted against the run: its database's backends plus the server's auxiliary processes. */
  postgresCpuS: number;
  /** The backends connected to the scenario's database (autovacuum workers apart). */
  postgresBackendsCpuS: number;
  /** WAL writer, checkpointer, background writer, I/O workers, the postmaster (embedded server only; else null). */
  postgresAuxCpuS: number | null;
  /** Autovacuum workers (embedded server only): not counted in postgresCpuS, see the CPU section of the report. */
  autovacuumCpuS: number | null;
  fakeCpuS: number;
}

/**
 * With BENCH_CPU_PROF=1, each child profiles exactly its measured window (from 'started' to 'ran', the window its CPU
 * seconds are read over) with the inspector, and writes bench/results/profiles/<mode>-<N>-<time>.cpuprofile
 * (summarised by `node dist/bench/profile-summary.js <file>...`).
 */
let profiler: import('node:inspector/promises').Session | null = null;
let profiledAs = '';

async function phase(p: 'started' | 'ran', as?: { mode: Mode; n: number }): Promise<void> {
  if (p === 'started' && process.env.BENCH_CPU_PROF && as) {
    const { Session } = await import('node:inspector/promises');
    profiler = new Session();
    profiler.connect();
    await profiler.post('Profiler.enable');
    await profiler.post('Profiler.setSamplingInterval', { interval: 500 });
    await profiler.post('Profiler.start');
    profiledAs = `${as.mode}-${as.n}`;
  }
  if (p === 'started' || !profiler) {
    process.send?.({ phase: p });
    return;
  }
  // 'ran' while profiling: the orchestrator reads this process's CPU seconds first, then the profile is written.
  const read = new Promise<void>((resolve) => {
    const onMessage = (m: { ack?: string }) => {
      if (m.ack !== 'ran') return;
      process.off('message', onMessage);
      resolve();
    };
    process.on('message', onMessage);
  });
  process.send?.({ phase: p });
  await read;
  {
    const { profile } = await profiler.post('Profiler.stop');
    profiler.disconnect();
    profiler = null;
    const dir = join(ROOT, 'bench', 'results', 'profiles');
    mkdirSync(dir, { recursive: true });
    const file = join(dir, `${profiledAs}-${new Date().toISOString().replace(/[:.]/g, '-')}.cpuprofile`);
    writeFileSync(file, JSON.stringify(profile));
    process.stderr.write(`cpu profile of the measured window: ${file}\n`);
  }
}

// ================================================================================================ child

async function child(o: ChildOptions): Promise<ChildResult> {
  const counter = new QueryCounter();
  // pg as the service loads it, and pg-boss's copy if npm did not dedupe it.
  const pgCopies = [require('pg')];
  try {
    const bossPg = require.resolve('pg', { paths: [dirname(require.resolve('pg-boss'))] });
    if (bossPg !== require.resolve('pg')) pgCopies.push(require(bossPg));
  } catch {
    /* pg-boss not installed: the engine alone */
  }
  counter.install(pgCopies);

  const runtime = chargeRunRuntime(o);
  if (o.mode === 'gateway-only') return gatewayOnly(o, runtime);
  const app = await createApp(runtime);
  const sampler = new RssSampler();
  let result: Omit<
    ChildResult,
    | 'roundTrips'
    | 'statements'
    | 'byKind'
    | 'topStatements'
    | 'rssBeforeMiB'
    | 'peakRssMiB'
    | 'peakHeapUsedMiB'
    | 'rssSamples'
    | 'cpuSeconds'
    | 'memoryTimeline'
  >;
  let rssBefore: number;
  let cpu0: NodeJS.CpuUsage | undefined;
  let cpu1: NodeJS.CpuUsage | undefined;
  try {
    if (o.mode === 'engine') {
      const runs = app.get(ChargeRunsService);
      const run = (await runs.create('cli', { requestedBy: 'bench:charge' }))!;
      rssBefore = process.memoryUsage.rss();
      await phase('started', o);
      sampler.start();
      counter.on = true;
      cpu0 = process.cpuUsage();
      const t0 = performance.now();
      const done = await runs.execute(run);
      const durationS = (performance.now() - t0) / 1000;
      cpu1 = process.cpuUsage(cpu0);
      counter.on = false;
      sampler.stop();
      await phase('ran');
      const counts = {
        due: done.due,
        charged: done.charged,
        failed: done.failed,
        unknown: done.unknown,
        skipped: done.skipped,
        resolved: done.resolved,
        canceled: done.canceled,
      };
      result = { mode: o.mode, n: o.n, status: done.status, durationS, charged: done.charged, counts };
    } else {
      rssBefore = process.memoryUsage.rss();
      const r = await pgBossRun(app.get<DataSource>(getDataSourceToken()), app.get(ChargeAttemptsService), o, counter, sampler);
      cpu1 = r.cpu;
      result = r.result;
    }
  } finally {
    counter.on = false;
    sampler.stop();
    await app.close();
  }
  const s = counter.stats;
  const per = Math.max(1, result.charged);
  const topStatements = [...s.byText.entries()]
    .sort((a, b) => b[1] - a[1])
    .slice(0, 25)
    .map(([sql, calls]) => ({ perCharge: Math.round((calls / per) * 1000) / 1000, calls, sql }));
  return {
    ...result,
    roundTrips: s.roundTrips,
    statements: s.statements,
    byKind: s.byKind,
    topStatements,
    rssBeforeMiB: mib(rssBefore),
    peakRssMiB: mib(sampler.peakRss),
    peakHeapUsedMiB: mib(sampler.peakHeapUsed),
    rssSamples: sampler.samples,
    memoryTimeline: sampler.timeline,
    cpuSeconds: cpu1 ? (cpu1.user + cpu1.system) / 1e6 : 0,
  };
}

/**
 * The ceiling of this machine for the run's HTTP part: N charges through the same BootpayGateway at the same
 * concurrency, with no database at all (keys issued at the fake in bulk).
 */
async function gatewayOnly(o: ChildOptions, runtime: ReturnType<typeof benchRuntime>): Promise<ChildResult> {
  const gateway = new BootpayGateway(runtime.gateway, runtime.clock);
  const fakeUrl = o.fakeApiBaseUrl.replace(/\/v2$/, '');
  const keys = await bulkKeys(fakeUrl, o.n);
  const sampler = new RssSampler();
  await phase('started', o);
  sampler.start();
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  let charged = 0;
  let i = 0;
  await runPool(keys, o.concurrency, null, async (k) => {
    const n = i++;
    try {
      await gateway.charge({ billingKey: k.billing_key, orderId: `g${n}-${k.receipt_id}`, orderName: 'Bench Pro', price: 11_000, taxFree: 0 });
      charged++;
    } catch {
      /* counted as not charged */
    }
  });
  const durationS = (performance.now() - t0) / 1000;
  const cpu = process.cpuUsage(cpu0);
  sampler.stop();
  await phase('ran');
  gateway.close();
  return {
    mode: o.mode,
    n: o.n,
    status: 'completed',
    durationS,
    charged,
    counts: { charged },
    roundTrips: 0,
    statements: 0,
    byKind: {},
    topStatements: [],
    rssBeforeMiB: 0,
    peakRssMiB: mib(sampler.peakRss),
    peakHeapUsedMiB: mib(sampler.peakHeapUsed),
    rssSamples: sampler.samples,
    memoryTimeline: sampler.timeline,
    cpuSeconds: (cpu.user + cpu.system) / 1e6,
  };
}

/**
 * The same work as one charge run, built on pg-boss: the nightly trigger enqueues one job per due subscription; a
 * job locks its subscription, records the attempt, charges and settles with the service's own ChargeAttemptsService.
 */
async function pgBossRun(ds: DataSource, attempts: ChargeAttemptsService, o: ChildOptions, counter: QueryCounter, sampler: RssSampler) {
  const PgBoss = require('pg-boss') as typeof import('pg-boss');
  const boss = new PgBoss({ connectionString: o.databaseUrl, max: 10, schedule: false, supervise: true, application_name: 'bench-pgboss' });
  boss.on('error', (e: Error) => log(`pg-boss error: ${e.message}`));
  await boss.start();
  const queue = 'bench-charge';
  await boss.createQueue(queue);
  const plans = new Map<string, PlanEntity>();
  const counts = { due: 0, charged: 0, failed: 0, unknown: 0, skipped: 0, not_charged: 0, errors: 0 };
  let finished = 0;
  let allDone!: () => void;
  const done = new Promise<void>((r) => (allDone = r));

  const handle = async (subscriptionId: string): Promise<void> => {
    try {
      const asOf = new Date();
      const payment = await ds.transaction(async (m) => {
        const sub = await m
          .getRepository(SubscriptionEntity)
          .createQueryBuilder('s')
          .setLock('pessimistic_write')
          .where('s.id = :id', { id: subscriptionId })
          .getOne();
        if (!sub || !['incomplete', 'trialing', 'active', 'past_due'].includes(sub.status) || !sub.nextChargeAt || sub.nextChargeAt > asOf) return null;
        let plan = plans.get(sub.planId);
        if (!plan) {
          plan = await m.getRepository(PlanEntity).findOneByOrFail({ id: sub.planId });
          plans.set(plan.id, plan);
        }
        return attempts.open(m, sub, plan);
      });
      if (!payment) {
        counts.skipped++;
        return;
      }
      const outcome = await attempts.send(payment);
      await attempts.settle(payment.id, outcome);
      if (outcome.kind === 'succeeded') counts.charged++;
      else if (outcome.kind === 'declined') counts.failed++;
      else if (outcome.kind === 'unknown') counts.unknown++;
      else counts.not_charged++;
    } catch (err) {
      counts.errors++;
      throw err; // pg-boss retries the job
    } finally {
      if (++finished >= o.n) allDone();
    }
  };

  await phase('started', o);
  sampler.start();
  counter.on = true;
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  // The nightly trigger: every due subscription becomes a job (set-based, 10,000 per insert).
  const due: { id: string }[] = await ds.query(
    `SELECT id FROM subscriptions WHERE status IN ('incomplete', 'trialing', 'active', 'past_due') AND next_charge_at <= $1 ORDER BY next_charge_at, id`,
    [new Date()],
  );
  counts.due = due.length;
  for (let i = 0; i < due.length; i += 10_000) {
    await boss.insert(due.slice(i, i + 10_000).map((r) => ({ name: queue, data: { subscription_id: r.id } })));
  }
  type Job = { data: { subscription_id: string } };
  if (o.mode === 'pgboss-batched') {
    const perWorker = Math.max(1, Math.floor(o.concurrency / o.pgbossWorkers));
    for (let w = 0; w < o.pgbossWorkers; w++) {
      await boss.work<{ subscription_id: string }>(queue, { batchSize: o.pgbossBatch, pollingIntervalSeconds: 0.5 }, async (jobs: Job[]) => {
        // A job whose charge failed is counted by the check of the fake's ledger at the end, not here.
        await runPool(jobs, perWorker, null, (j) =>
          handle(j.data.subscription_id).catch((err: unknown) => console.warn(`a pg-boss job failed: ${String(err)}`)),
        );
      });
    }
  } else {
    for (let w = 0; w < o.concurrency; w++) {
      await boss.work<{ subscription_id: string }>(queue, { batchSize: 1, pollingIntervalSeconds: 0.5 }, async ([job]: Job[]) => {
        await handle(job.data.subscription_id);
      });
    }
  }
  await done;
  // The jobs are done once pg-boss has marked them completed.
  while ((await boss.getQueueSize(queue, { before: 'completed' })) > 0) await new Promise((r) => setTimeout(r, 50));
  const durationS = (performance.now() - t0) / 1000;
  const cpu = process.cpuUsage(cpu0);
  counter.on = false;
  sampler.stop();
  await phase('ran');
  await boss.stop({ graceful: true, wait: true, timeout: 5000 });
  return { cpu, result: { mode: o.mode, n: o.n, status: 'completed', durationS, charged: counts.charged, counts } };
}

// ================================================================================================ orchestrator

interface ScenarioResult extends ChildResult {
  cpu: CpuShares;
  check: ChargeCheck;
  seedSeconds: number;
  throughput: number;
  wallSeconds: number;
}

/** The embedded PostgreSQL's postmaster: the child of this process running `postgres -D <dir>` (null with BENCH_DATABASE_URL). */
function findPostmaster(): number | null {
  for (const [pid, p] of cpuOfProcessTree(process.pid)) if (pid !== process.pid && /\bpostgres\s+-D\s/.test(p.cmd)) return pid;
  return null;
}

/**
 * PostgreSQL's CPU between two readings of the postmaster's process tree, by kind. Every process's own figure is
 * compared with itself, so a backend started in between counts from zero.
 */
function postgresCpuBetween(a: ReturnType<typeof cpuOfProcessTree>, b: ReturnType<typeof cpuOfProcessTree>, database: string) {
  let backends = 0;
  let aux = 0;
  let autovacuum = 0;
  for (const [pid, p] of b) {
    const d = p.seconds - (a.get(pid)?.seconds ?? 0);
    if (/^postgres: autovacuum worker/.test(p.cmd)) autovacuum += d;
    else if (p.cmd.startsWith('postgres: ') && p.cmd.split(' ')[2] === database) backends += d;
    else if (!/^postgres: \S+ \S+ (\S+\(\d+\)|\[local\])/.test(p.cmd)) aux += d; // not another database's backend
  }
  return { backends: round2(backends), aux: round2(aux), autovacuum: round2(autovacuum) };
}

async function scenario(
  db: Awaited<ReturnType<typeof startDatabaseServer>>,
  mode: Mode,
  n: number,
  base: Omit<ChildOptions, 'mode' | 'n' | 'databaseUrl' | 'fakeApiBaseUrl'>,
  latencyMs: number,
  postmaster: number | null,
): Promise<ScenarioResult> {
  const wall0 = performance.now();
  log(`${mode} N=${n}: fresh database and fake Bootpay (latency ${latencyMs} ms)`);
  const fake = await startFake(latencyMs);
  const gatewayOnlyMode = mode === 'gateway-only';
  const fresh = gatewayOnlyMode ? { url: '', name: 'none', drop: async () => undefined } : await db.fresh(`${mode.replace('-', '_')}_${n}`);
  try {
    const seed = gatewayOnlyMode
      ? { subscriptionIds: [], periodStart: new Date(), seconds: 0 }
      : await seedDueSubscriptions(fresh.url, fake.url, Buffer.from(base.encryptionKeyHex, 'hex'), n);
    log(`${mode} N=${n}: seeded in ${seed.seconds.toFixed(1)} s; running`);
    const opts: ChildOptions = { ...base, mode, n, databaseUrl: fresh.url, fakeApiBaseUrl: fake.apiBaseUrl };
    const c = spawnNode(join(DIST, 'bench', 'charge.js'), ['--child', JSON.stringify(opts)], {}, { ipc: true, stdout: 'inherit' });
    const pgRe = new RegExp(`postgres: (?!autovacuum).*${fresh.name}`);
    let at0 = { m: machineCpu(), pg: 0, pgTree: new Map() as ReturnType<typeof cpuOfProcessTree>, fake: 0, child: 0 };
    const cpu: CpuShares = {
      machineBusyShare: null,
      loadAverage1m: 0,
      benchProcessCpuS: 0,
      postgresCpuS: 0,
      postgresBackendsCpuS: 0,
      postgresAuxCpuS: null,
      autovacuumCpuS: null,
      fakeCpuS: 0,
    };
    const result = await childResult<ChildResult>(c, mode, (phase) => {
      if (phase === 'started') {
        at0 = {
          m: machineCpu(),
          pg: cpuSecondsOf(pgRe),
          pgTree: postmaster ? cpuOfProcessTree(postmaster) : new Map(),
          fake: cpuSecondsOfPid(fake.child.proc.pid),
          child: cpuSecondsOfPid(c.proc.pid),
        };
      } else if (phase === 'ran') {
        // The bench process first: it is what the ratio divides by charges, read as close to its end as possible.
        cpu.benchProcessCpuS = round2(cpuSecondsOfPid(c.proc.pid) - at0.child);
        cpu.fakeCpuS = round2(cpuSecondsOfPid(fake.child.proc.pid) - at0.fake);
        cpu.machineBusyShare = busyShare(at0.m, machineCpu());
        cpu.loadAverage1m = loadavg()[0];
        if (postmaster && !gatewayOnlyMode) {
          const pg = postgresCpuBetween(at0.pgTree, cpuOfProcessTree(postmaster), fresh.name);
          cpu.postgresBackendsCpuS = pg.backends;
          cpu.postgresAuxCpuS = pg.aux;
          cpu.autovacuumCpuS = pg.autovacuum;
          cpu.postgresCpuS = round2(pg.backends + pg.aux);
        } else if (!gatewayOnlyMode) {
          // A server at BENCH_DATABASE_URL: its backends of this database are all that can be told apart.
          cpu.postgresBackendsCpuS = round2(cpuSecondsOf(pgRe) - at0.pg);
          cpu.postgresCpuS = cpu.postgresBackendsCpuS;
        }
        if (process.env.BENCH_CPU_PROF) c.proc.send({ ack: 'ran' });
      }
    });
    await c.exited;
    let check: ChargeCheck;
    if (gatewayOnlyMode) {
      const charges = (await fakeLedger(fake.url)).charges.length;
      const ok = charges === n && result.charged === n;
      check = {
        subscriptions: n,
        fakeCharges: charges,
        chargedOnce: ok ? n : 0,
        doubles: 0,
        lost: n - charges,
        localDone: 0,
        doneWithoutFakeCharge: 0,
        fakeChargeWithoutDone: 0,
        openAttempts: 0,
        ok,
      };
    } else {
      check = await checkChargedOnce(fresh.url, fake.url, seed.subscriptionIds, seed.periodStart);
    }
    const throughput = result.charged / result.durationS;
    log(
      `${mode} N=${n}: ${result.charged} charged in ${result.durationS.toFixed(1)} s = ${throughput.toFixed(0)}/s; ` +
        `${(result.roundTrips / Math.max(1, result.charged)).toFixed(2)} round trips/charge; peak RSS ${result.peakRssMiB} MiB; ` +
        `${describeCheck(check)}; ` +
        `CPU s: bench ${cpu.benchProcessCpuS}, postgres ${cpu.postgresCpuS}, fake ${cpu.fakeCpuS}; machine busy ${percent(cpu.machineBusyShare)}`,
    );
    return { ...result, cpu, check, seedSeconds: seed.seconds, throughput, wallSeconds: (performance.now() - wall0) / 1000 };
  } finally {
    await fake.stop();
    await fresh.drop();
  }
}

async function main(): Promise<number> {
  const ns = listEnv('BENCH_N', [10_000, 100_000]);
  const latencyMs = intEnv('BENCH_LATENCY_MS', 50, 1, 10_000);
  const concurrency = intEnv('BENCH_CONCURRENCY', 64, 1, 1024);
  const batchSize = intEnv('BENCH_BATCH_SIZE', 200, 1, 10_000);
  const poolSize = intEnv('BENCH_POOL_SIZE', 20, 2, 500);
  const pgbossMode = (process.env.BENCH_PGBOSS ?? 'both').trim().toLowerCase();
  if (!['both', 'batched', 'simple', 'off'].includes(pgbossMode)) throw new Error('BENCH_PGBOSS must be both, batched, simple or off');
  const pgbossMaxN = intEnv('BENCH_PGBOSS_MAX_N', 10_000, 1);
  const pgbossWorkers = intEnv('BENCH_PGBOSS_WORKERS', 4, 1, 1024);
  const pgbossBatch = intEnv('BENCH_PGBOSS_BATCH', 128, 1, 10_000);
  const keepGoing = boolEnv('BENCH_KEEP_GOING', true);
  const t0 = performance.now();

  const db = await startDatabaseServer();
  const postmaster = db.embedded ? findPostmaster() : null;
  const base = { encryptionKeyHex: newEncryptionKey().toString('hex'), concurrency, batchSize, poolSize, pgbossWorkers, pgbossBatch };
  const results: ScenarioResult[] = [];
  const errors: string[] = [];
  const modes: Mode[] = ['engine'];
  if (pgbossMode === 'both' || pgbossMode === 'batched') modes.push('pgboss-batched');
  if (pgbossMode === 'both' || pgbossMode === 'simple') modes.push('pgboss-simple');
  const pgbossNs = [...new Set(ns.map((n) => Math.min(n, pgbossMaxN)))];
  if (boolEnv('BENCH_GATEWAY_ONLY', true)) {
    const n = Math.min(ns[0], 20_000);
    try {
      results.push(await scenario(db, 'gateway-only', n, base, latencyMs, postmaster));
    } catch (err) {
      errors.push(`gateway-only N=${n}: ${err instanceof Error ? err.message : String(err)}`);
      log(errors[errors.length - 1]);
    }
  }
  for (const n of ns) {
    try {
      results.push(await scenario(db, 'engine', n, base, latencyMs, postmaster));
    } catch (err) {
      errors.push(`engine N=${n}: ${err instanceof Error ? err.message : String(err)}`);
      log(errors[errors.length - 1]);
      if (!keepGoing) break;
    }
  }
  for (const n of pgbossNs) {
    for (const mode of modes.filter((m) => m !== 'engine')) {
      try {
        results.push(await scenario(db, mode, n, base, latencyMs, postmaster));
      } catch (err) {
        errors.push(`${mode} N=${n}: ${err instanceof Error ? err.message : String(err)}`);
        log(errors[errors.length - 1]);
        if (!keepGoing) break;
      }
    }
  }

  // ------------------------------------------------------------------------------------------ report
  const ideal = concurrency / (latencyMs / 1000);
  const engine = results.filter((r) => r.mode === 'engine');
  const boss = results.filter((r) => r.mode.startsWith('pgboss'));
  const ceiling = results.find((r) => r.mode === 'gateway-only');
  const bestBoss = boss.length ? boss.reduce((a, b) => (b.throughput > a.throughput ? b : a)) : undefined;
  const lines: string[] = [];
  lines.push(
    `\nbench:charge  C=${concurrency}  L=${latencyMs} ms  C/L=${ideal.toFixed(0)} charges/s  batch=${batchSize}  pool=${poolSize}  database=${db.embedded ? 'embedded PostgreSQL' : 'BENCH_DATABASE_URL'}\n`,
  );
  lines.push(
    table(
      [
        'scenario',
        'N',
        'charged',
        'seconds',
        'charges/s',
        'x C/L',
        'round trips/charge',
        'statements/charge',
        'peak RSS MiB',
        'peak heap MiB',
        'CPU ms/charge node|pg|fake',
        'machine busy',
        ...CHECK_HEADERS,
      ],
      results.map((r) => [
        r.mode,
        r.n,
        ...throughputCells(r.charged, r.durationS, r.throughput, ideal),
        (r.roundTrips / Math.max(1, r.charged)).toFixed(2),
        (r.statements / Math.max(1, r.charged)).toFixed(2),
        r.peakRssMiB,
        r.peakHeapUsedMiB,
        [r.cpu.benchProcessCpuS, r.cpu.postgresCpuS, r.cpu.fakeCpuS].map((x) => ((x * 1000) / Math.max(1, r.charged)).toFixed(2)).join(' | '),
        percent(r.cpu.machineBusyShare),
        ...checkCells(r.check, r.n),
      ]),
    ),
  );
  if (ceiling) {
    lines.push(
      `\ngateway-only (the same BootpayGateway and fake, no database): ${ceiling.throughput.toFixed(0)} charges/s = ${(ceiling.throughput / ideal).toFixed(2)} x C/L: ` +
        `the most this machine gives the run's HTTP part at C=${concurrency}.`,
    );
  }
  // CPU per charge: what the engine's process and PostgreSQL spend on a charge against what the gateway-only loop's
  // process spends on one. Same fake, latency and concurrency; each measured from its child's 'started' to its 'ran'
  // (both start cold on the gateway path: no warm-up on either side); the fake's CPU is left out of both.
  const cpuRows: { r: ScenarioResult; engineMs: number; gatewayMs: number; ratio: number }[] = [];
  const gatewayMs = ceiling ? (ceiling.cpu.benchProcessCpuS * 1000) / Math.max(1, ceiling.charged) : null;
  if (ceiling && gatewayMs) {
    const per = (x: number | null, r: ScenarioResult) => (x === null ? '?' : ((x * 1000) / Math.max(1, r.charged)).toFixed(3));
    lines.push(`\nCPU per charge (ms; fake excluded; autovacuum shown apart, not counted)`);
    const rows: (string | number)[][] = [
      [
        ceiling.mode,
        ceiling.n,
        per(ceiling.cpu.benchProcessCpuS, ceiling),
        '-',
        '-',
        per(ceiling.cpu.benchProcessCpuS, ceiling),
        '-',
        per(ceiling.cpu.fakeCpuS, ceiling),
        '1.00',
      ],
    ];
    for (const r of engine) {
      const engineMs = ((r.cpu.benchProcessCpuS + r.cpu.postgresCpuS) * 1000) / Math.max(1, r.charged);
      cpuRows.push({ r, engineMs, gatewayMs, ratio: engineMs / gatewayMs });
      rows.push([
        r.mode,
        r.n,
        per(r.cpu.benchProcessCpuS, r),
        per(r.cpu.postgresBackendsCpuS, r),
        per(r.cpu.postgresAuxCpuS, r),
        engineMs.toFixed(3),
        per(r.cpu.autovacuumCpuS, r),
        per(r.cpu.fakeCpuS, r),
        (engineMs / gatewayMs).toFixed(2),
      ]);
    }
    lines.push(table(['scenario', 'N', 'node process', 'pg backends', 'pg auxiliary', 'counted', 'autovacuum', 'fake', 'x gateway-only'], rows));
  }
  for (const r of engine.slice(-1)) {
    lines.push(
      `\nengine N=${r.n}: SQL statements per charge by kind: ${Object.entries(r.byKind)
        .map(([k, v]) => `${k} ${(v / Math.max(1, r.charged)).toFixed(2)}`)
        .join(', ')}`,
    );
    lines.push('most frequent statements (calls per charge):');
    for (const s of r.topStatements.slice(0, 16)) lines.push(`  ${s.perCharge.toFixed(3).padStart(7)}  ${s.sql}`);
  }

  const targets: Target[] = [];
  for (const r of engine) {
    targets.push({
      target: `throughput N=${r.n}`,
      required: `>= ${(0.9 * ideal).toFixed(0)}/s (0.9 x C/L)`,
      measured: `${r.throughput.toFixed(0)}/s (${(r.throughput / ideal).toFixed(2)} x C/L)`,
      met: r.throughput >= 0.9 * ideal,
    });
  }
  const small = engine.length ? engine.reduce((a, b) => (b.n < a.n ? b : a)) : undefined;
  const large = engine.length ? engine.reduce((a, b) => (b.n > a.n ? b : a)) : undefined;
  if (small && large && small.n !== large.n) {
    const ratio = large.peakRssMiB / small.peakRssMiB;
    targets.push({
      target: `peak RSS N=${large.n} vs N=${small.n}`,
      required: '<= 1.2 x',
      measured: `${large.peakRssMiB} / ${small.peakRssMiB} MiB = ${ratio.toFixed(2)} x`,
      met: ratio <= 1.2,
    });
  } else {
    targets.push({ target: 'peak RSS ratio', required: '<= 1.2 x', measured: 'needs two sizes of N', met: null });
  }
  for (const r of engine) {
    const rt = r.roundTrips / Math.max(1, r.charged);
    targets.push({
      target: `SQL round trips/charge N=${r.n}`,
      required: '<= 4',
      measured: `${rt.toFixed(2)} (${(r.statements / Math.max(1, r.charged)).toFixed(2)} statements)`,
      met: rt <= 4,
    });
  }
  for (const c of cpuRows) {
    targets.push({
      target: `CPU per charge N=${c.r.n}: engine process + PostgreSQL vs gateway-only process`,
      required: '<= 1.3 x',
      measured: `${c.engineMs.toFixed(3)} / ${c.gatewayMs.toFixed(3)} ms = ${c.ratio.toFixed(2)} x`,
      met: c.ratio <= 1.3,
    });
  }
  if (!cpuRows.length) targets.push({ target: 'CPU per charge vs gateway-only', required: '<= 1.3 x', measured: 'needs the gateway-only loop', met: null });
  if (bestBoss && engine.length) {
    const comparable = engine.find((e) => e.n === bestBoss.n) ?? engine[0];
    const ratio = comparable.throughput / bestBoss.throughput;
    targets.push({
      target: `vs pg-boss (N=${comparable.n} vs ${bestBoss.mode} N=${bestBoss.n})`,
      required: '>= 2 x',
      measured: `${comparable.throughput.toFixed(0)} / ${bestBoss.throughput.toFixed(0)} = ${ratio.toFixed(2)} x`,
      met: ratio >= 2,
    });
  } else {
    targets.push({ target: 'vs pg-boss', required: '>= 2 x', measured: 'not measured', met: null });
  }
  for (const r of results) targets.push(chargedOnceTarget(`charged exactly once: ${r.mode} N=${r.n}`, r.check));
  lines.push(targetsTable(targets));
  finishReport('charge', lines, t0, {
    settings: {
      ns,
      latencyMs,
      concurrency,
      batchSize,
      poolSize,
      pgbossMode,
      pgbossMaxN,
      pgbossWorkers,
      pgbossBatch,
      idealPerSecond: ideal,
      database: db.embedded ? 'embedded' : 'BENCH_DATABASE_URL',
    },
    results,
    targets,
    errors,
  });
  const correct = results.every((r) => r.check.ok);
  return errors.length || !correct ? 1 : 0;
}

if (process.argv[2] === '--child') {
  runChild(() => child(JSON.parse(process.argv[3]) as ChildOptions));
} else {
  runMain(main, intEnv('BENCH_TIMEOUT_S', 7200, 10));
}
