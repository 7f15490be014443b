/**
 * `npm run bench:scale`: does the charge run scale out? k service instances on ONE PostgreSQL, each with
 * CHARGE_RUN_CONCURRENCY = C, run a charge run at the same time over one shared set of due subscriptions, against a
 * fake Bootpay answering after L ms. The ideal is k·C/L charges per second; the target is >= 0.9 x k·C/L.
 *
 * For each k of BENCH_SCALE_K (1,2,3), on a fresh database (embedded PostgreSQL in a temp dir, or a server at
 * BENCH_DATABASE_URL) with a fresh fake Bootpay in its own process:
 *   1. seeds N = k·C/L · BENCH_SCALE_SECONDS due subscriptions with set-based SQL (bench/lib.ts seedDueSubscriptions;
 *      keys issued at the fake in bulk), so the run lasts about BENCH_SCALE_SECONDS at the ideal rate;
 *   2. starts k service processes (dist/bench/server.js: createApp + listen, like main.js; NODE_ENV=production, cron
 *      off, outbound-webhook loop off, CHARGE_RUN_CONCURRENCY=C, CHARGE_RUN_RATE_PER_SECOND=BENCH_SCALE_RATE,
 *      CHARGE_RUN_BATCH_SIZE, DATABASE_POOL_SIZE, BOOTPAY_MAX_SOCKETS=max(128, C)) and waits for /health on each;
 *   3. sends `POST /v1/charge-runs {wait: true}` to all k at once; the run's time is from sending them to the last
 *      answer (throughput = charges / that time; also shown: from the fake's first charge to its last);
 *   4. checks at the fake's ledger that every subscription was charged exactly once and that the local DONE payments
 *      equal the fake's charges (checkChargedOnce), and shows how the charges were split between the instances;
 *   5. the reference, measured right after on a fresh fake: the gateway alone, no database, k processes each charging
 *      N/k keys through the service's BootpayGateway C at a time (k·C in flight), started together: the most this
 *      machine gives the run's HTTP part at that concurrency. The run is also printed as a ratio of it.
 * The CPU seconds of the instances, the database's backends and the fake during the run, and how busy the machine
 * was, are recorded too. Results: bench/results/scale-<timestamp>.json. Exit 1 when a check fails (a target missed
 * on speed alone exits 0).
 *
 * Settings (environment):
 *   BENCH_SCALE_K             instance counts to measure, comma-separated (1,2,3)
 *   BENCH_SCALE_LATENCY_MS    L, the fake Bootpay's latency per request (250)
 *   BENCH_SCALE_CONCURRENCY   C, CHARGE_RUN_CONCURRENCY of each instance (64)
 *   BENCH_SCALE_SECONDS       how long each run should last at the ideal rate: N = k·C/L · this (20)
 *   BENCH_SCALE_N             a fixed N for every k instead (unset)
 *   BENCH_SCALE_RATE          CHARGE_RUN_RATE_PER_SECOND of each instance (100000: not the limit measured here)
 *   BENCH_SCALE_BATCH_SIZE    CHARGE_RUN_BATCH_SIZE (200, the service's default)
 *   BENCH_SCALE_POOL_SIZE     DATABASE_POOL_SIZE of each instance (20, the service's default)
 *   BENCH_SCALE_REFERENCE     false skips the gateway-only reference (true)
 *   BENCH_SCALE_TIMEOUT_S     the whole bench stops (exit 3) after this many seconds (1800)
 *   BENCH_DATABASE_URL        a PostgreSQL server to use instead of the embedded one (role needs CREATEDB)
 */
import 'reflect-metadata';
import { randomBytes } from 'node:crypto';
import * as http from 'node:http';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { runPool } from '../src/charging/concurrency';
import { BootpayGateway } from '../src/gateway/bootpay.gateway';
import {
  boolEnv,
  bulkKeys,
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
  fakeLedger,
  finishReport,
  freePort,
  intEnv,
  listEnv,
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
  chargeRunEnv,
  Child,
  DatabaseServer,
  killAtExit,
  runChild,
  serviceEnv,
  spawnNode,
  startDatabaseServer,
  startFake,
  waitForHttp,
  waitForLine,
} from './processes';
import { benchRuntime } from './runtime';

// ================================================================================================ gateway-only child

interface GatewayChildOptions {
  n: number;
  concurrency: number;
  fakeApiBaseUrl: string;
  tag: string;
}

/** Issues its keys, says ready, waits for `go`, charges them C at a time through BootpayGateway, sends the result. */
async function gatewayChild(o: GatewayChildOptions): Promise<{ charged: number; failed: number; seconds: number }> {
  const runtime = benchRuntime({
    databaseUrl: '',
    encryptionKeyHex: '00'.repeat(32),
    fakeApiBaseUrl: o.fakeApiBaseUrl,
    env: { BOOTPAY_MAX_SOCKETS: String(Math.max(128, o.concurrency)) },
  });
  const gateway = new BootpayGateway(runtime.gateway, runtime.clock);
  const keys = await bulkKeys(o.fakeApiBaseUrl.replace(/\/v2$/, ''), o.n);
  const go = new Promise<void>((res) => process.on('message', (m: { go?: boolean }) => m.go && res()));
  process.send!({ ready: true });
  await go;
  const t0 = performance.now();
  let charged = 0;
  let failed = 0;
  let i = 0;
  await runPool(keys, o.concurrency, null, async (k) => {
    try {
      await gateway.charge({ billingKey: k.billing_key, orderId: `g${o.tag}-${i++}-${k.receipt_id}`, orderName: 'Bench Pro', price: 11_000, taxFree: 0 });
      charged++;
    } catch {
      failed++;
    }
  });
  const seconds = (performance.now() - t0) / 1000;
  gateway.close();
  return { charged, failed, seconds };
}

// ================================================================================================ orchestrator

interface Settings {
  latencyMs: number;
  concurrency: number;
  rate: number;
  batchSize: number;
  poolSize: number;
}

interface InstanceRun {
  instance: number;
  status: string;
  due: number;
  charged: number;
  failed: number;
  unknown: number;
  seconds: number;
  startedAt: string;
  finishedAt: string | null;
  cpuS: number;
}

interface KResult {
  k: number;
  n: number;
  ideal: number;
  seedSeconds: number;
  runSeconds: number;
  charged: number;
  throughput: number;
  /** From the fake's first successful charge to its last (purchased_at). */
  firstToLastSeconds: number | null;
  firstToLastThroughput: number | null;
  instances: InstanceRun[];
  postgresCpuS: number;
  fakeCpuS: number;
  machineBusyShare: number | null;
  loadAverage1m: number;
  check: ChargeCheck;
  /** Warnings and errors logged by the instances (last lines). */
  instanceLogTail: string[];
  reference: { charged: number; failed: number; seconds: number; throughput: number; ok: boolean } | null;
  errors: string[];
}

/** POST with a JSON body over node:http (no client time-out: a run answered with wait: true may take minutes). */
function postJson(url: string, body: unknown, headers: Record<string, string>): Promise<{ status: number; json: unknown }> {
  const u = new URL(url);
  const data = Buffer.from(JSON.stringify(body));
  return new Promise((res, rej) => {
    const req = http.request(
      {
        host: u.hostname,
        port: u.port,
        path: u.pathname,
        method: 'POST',
        headers: { ...headers, 'content-type': 'application/json', 'content-length': data.length },
      },
      (r) => {
        const chunks: Buffer[] = [];
        r.on('data', (c: Buffer) => chunks.push(c));
        r.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          try {
            res({ status: r.statusCode ?? 0, json: JSON.parse(text) });
          } catch {
            rej(new Error(`HTTP ${r.statusCode}: ${text.slice(0, 200)}`));
          }
        });
        r.on('error', rej);
      },
    );
    req.on('error', rej);
    req.end(data);
  });
}

interface RunAnswer {
  status: string;
  counts: { due: number; charged: number; failed: number; unknown: number };
  started_at: string;
  finished_at: string | null;
  error: string | null;
}

async function startInstances(
  k: number,
  databaseUrl: string,
  fakeApiBaseUrl: string,
  encryptionKey: Buffer,
  adminKey: string,
  s: Settings,
  logTail: string[],
): Promise<{ url: string; child: Child }[]> {
  const ports: number[] = [];
  for (let i = 0; i < k; i++) ports.push(await freePort());
  const started = ports.map((port, i) => {
    const env = serviceEnv(
      { nodeEnv: 'production', port, databaseUrl, poolSize: s.poolSize, encryptionKey, fakeApiBaseUrl, adminKey, logLevel: 'warn' },
      { ...chargeRunEnv(s.concurrency, s.batchSize, s.rate), OUTBOUND_WEBHOOK_POLL_MS: '0' },
    );
    const child = killAtExit(spawnNode(join(DIST, 'bench', 'server.js'), [], env));
    // Keeps the instance's warnings and errors (JSON lines on stdout) for the report; the rest is dropped.
    let partial = '';
    child.proc.stdout?.on('data', (d: Buffer) => {
      const lines = (partial + d.toString('utf8')).split('\n');
      partial = lines.pop() ?? '';
      for (const l of lines) {
        if (/"level":"(warn|error|fatal)"/.test(l)) {
          logTail.push(`instance ${i}: ${l.slice(0, 400)}`);
          if (logTail.length > 40) logTail.shift();
        }
      }
    });
    return child;
  });
  return Promise.all(
    started.map(async (child) => {
      const m = await waitForLine(child, /bench-server listening on (http:\/\/[\d.]+:\d+)/, 120_000);
      await waitForHttp(`${m[1]}/health`, child, 60_000);
      return { url: m[1], child };
    }),
  );
}

/** k gateway-only processes, N/k keys each, C in flight each, started together; the time is from `go` to the last. */
async function reference(k: number, n: number, s: Settings): Promise<KResult['reference']> {
  const fake = await startFake(s.latencyMs);
  killAtExit(fake.child);
  try {
    const children = Array.from({ length: k }, (_, i) => {
      const share = Math.floor(n / k) + (i < n % k ? 1 : 0);
      const opts: GatewayChildOptions = { n: share, concurrency: s.concurrency, fakeApiBaseUrl: fake.apiBaseUrl, tag: String(i) };
      const c = killAtExit(spawnNode(join(DIST, 'bench', 'scale.js'), ['--gateway-child', JSON.stringify(opts)], {}, { ipc: true, stdout: 'inherit' }));
      let onResult!: (r: { charged: number; failed: number; seconds: number }) => void;
      const result = new Promise<{ charged: number; failed: number; seconds: number }>((res, rej) => {
        onResult = res;
        void c.exited.then((code) => rej(new Error(`gateway-only child exited (${code}) without a result`)));
      });
      const ready = new Promise<void>((res, rej) => {
        c.proc.on('message', (m: { ready?: boolean; result?: { charged: number; failed: number; seconds: number }; error?: string }) => {
          if (m.ready) res();
          else if (m.result) onResult(m.result);
          else if (m.error) rej(new Error(m.error));
        });
        void c.exited.then((code) => rej(new Error(`gateway-only child exited (${code}) before it was ready`)));
      });
      // Awaited below, after all are ready; a child that fails before it is ready rejects both: logged here too.
      result.catch((err: unknown) => log(`gateway-only child ${i}: ${err instanceof Error ? err.message : String(err)}`));
      return { c, ready, result };
    });
    await Promise.all(children.map((x) => x.ready));
    const t0 = performance.now();
    for (const x of children) x.c.proc.send({ go: true });
    const results = await Promise.all(children.map((x) => x.result));
    const seconds = (performance.now() - t0) / 1000;
    await Promise.all(children.map((x) => x.c.exited));
    const charged = results.reduce((a, r) => a + r.charged, 0);
    const failed = results.reduce((a, r) => a + r.failed, 0);
    const atFake = (await fakeLedger(fake.url)).charges.length;
    return { charged, failed, seconds, throughput: charged / seconds, ok: charged === n && atFake === n };
  } finally {
    await fake.stop();
  }
}

async function measure(db: DatabaseServer, k: number, n: number, s: Settings, withReference: boolean): Promise<KResult> {
  const ideal = (k * s.concurrency) / (s.latencyMs / 1000);
  const errors: string[] = [];
  const logTail: string[] = [];
  log(`k=${k}: N=${n}, fresh database and fake Bootpay (latency ${s.latencyMs} ms)`);
  const fake = await startFake(s.latencyMs);
  killAtExit(fake.child);
  const fresh = await db.fresh(`scale_k${k}`);
  const key = newEncryptionKey();
  let instances: { url: string; child: Child }[] = [];
  try {
    const seed = await seedDueSubscriptions(fresh.url, fake.url, key, n);
    log(`k=${k}: seeded ${n} due subscriptions in ${seed.seconds.toFixed(1)} s; starting ${k} instance(s)`);
    const adminKey = `bsk_scale_adm_${randomBytes(16).toString('hex')}`;
    instances = await startInstances(k, fresh.url, fake.apiBaseUrl, key, adminKey, s, logTail);
    const pgRe = new RegExp(`postgres: .*${fresh.name}(?!\\w)`);
    const at0 = {
      m: machineCpu(),
      pg: cpuMeter(pgRe),
      fake: cpuSecondsOfPid(fake.child.proc.pid),
      inst: instances.map((i) => cpuSecondsOfPid(i.child.proc.pid)),
    };
    log(`k=${k}: ${k} instance(s) up; POST /v1/charge-runs {wait: true} to each at once`);
    const t0 = performance.now();
    const answers = await Promise.all(
      instances.map(async (inst) => {
        const r = await postJson(`${inst.url}/v1/charge-runs`, { wait: true }, { authorization: `Bearer ${adminKey}` });
        return { at: performance.now(), status: r.status, run: r.json as RunAnswer };
      }),
    );
    const runSeconds = (Math.max(...answers.map((a) => a.at)) - t0) / 1000;
    const machineBusyShare = busyShare(at0.m, machineCpu());
    const loadAverage1m = loadavg()[0];
    const postgresCpuS = round2(at0.pg.finish());
    const fakeCpuS = round2(cpuSecondsOfPid(fake.child.proc.pid) - at0.fake);
    const runs: InstanceRun[] = answers.map((a, i) => ({
      instance: i,
      status: a.status === 202 ? a.run.status : `HTTP ${a.status}`,
      due: a.run.counts?.due ?? 0,
      charged: a.run.counts?.charged ?? 0,
      failed: a.run.counts?.failed ?? 0,
      unknown: a.run.counts?.unknown ?? 0,
      seconds: (a.at - t0) / 1000,
      startedAt: a.run.started_at,
      finishedAt: a.run.finished_at,
      cpuS: round2(cpuSecondsOfPid(instances[i].child.proc.pid) - at0.inst[i]),
    }));
    for (const r of runs) if (r.status !== 'completed') errors.push(`k=${k} instance ${r.instance}: run ${r.status}`);
    await Promise.all(instances.map((i) => i.child.stop()));
    const check = await checkChargedOnce(fresh.url, fake.url, seed.subscriptionIds, seed.periodStart);
    const times = (await fakeLedger(fake.url)).charges.map((c) => Date.parse((c as unknown as { purchased_at: string }).purchased_at)).filter(Number.isFinite);
    const span = times.length > 1 ? (Math.max(...times) - Math.min(...times)) / 1000 : null;
    const charged = check.fakeCharges;
    const res: KResult = {
      k,
      n,
      ideal,
      seedSeconds: seed.seconds,
      runSeconds,
      charged,
      throughput: charged / runSeconds,
      firstToLastSeconds: span,
      firstToLastThroughput: span ? (times.length - 1) / span : null,
      instances: runs,
      postgresCpuS,
      fakeCpuS,
      machineBusyShare,
      loadAverage1m,
      check,
      instanceLogTail: logTail,
      reference: null,
      errors,
    };
    log(
      `k=${k}: ${charged} charged in ${runSeconds.toFixed(1)} s = ${res.throughput.toFixed(0)}/s (${(res.throughput / ideal).toFixed(2)} x k·C/L); ` +
        `split ${runs.map((r) => r.charged).join(' / ')}; ${describeCheck(check)}; ` +
        `CPU s: instances ${runs.map((r) => r.cpuS).join('+')}, postgres ${postgresCpuS}, fake ${fakeCpuS}; machine busy ${percent(machineBusyShare)}`,
    );
    await fake.stop();
    await fresh.drop();
    if (withReference) {
      log(`k=${k}: reference: gateway only, ${k} process(es) x C=${s.concurrency}, ${n} charges`);
      try {
        const ref = await reference(k, n, s);
        res.reference = ref;
        if (ref) log(`k=${k}: reference ${ref.charged} charged in ${ref.seconds.toFixed(1)} s = ${ref.throughput.toFixed(0)}/s`);
      } catch (err) {
        errors.push(`k=${k} reference: ${err instanceof Error ? err.message : String(err)}`);
        log(errors[errors.length - 1]);
      }
    }
    return res;
  } finally {
    await Promise.all(instances.map((i) => i.child.stop()));
    await fake.stop();
    await fresh.drop();
  }
}

async function main(): Promise<number> {
  const ks = listEnv('BENCH_SCALE_K', [1, 2, 3]);
  const s: Settings = {
    latencyMs: intEnv('BENCH_SCALE_LATENCY_MS', 250, 1, 10_000),
    concurrency: intEnv('BENCH_SCALE_CONCURRENCY', 64, 1, 1024),
    rate: intEnv('BENCH_SCALE_RATE', 100_000, 1, 100_000),
    batchSize: intEnv('BENCH_SCALE_BATCH_SIZE', 200, 1, 10_000),
    poolSize: intEnv('BENCH_SCALE_POOL_SIZE', 20, 2, 500),
  };
  const seconds = intEnv('BENCH_SCALE_SECONDS', 20, 1, 3600);
  const fixedN = process.env.BENCH_SCALE_N?.trim() ? intEnv('BENCH_SCALE_N', 0, 1, 2_000_000) : null;
  const withReference = boolEnv('BENCH_SCALE_REFERENCE', true);
  const t0 = performance.now();
  const db = await startDatabaseServer();
  const results: KResult[] = [];
  const errors: string[] = [];
  for (const k of ks) {
    const n = fixedN ?? Math.round(((k * s.concurrency) / (s.latencyMs / 1000)) * seconds);
    try {
      const r = await measure(db, k, n, s, withReference);
      results.push(r);
      errors.push(...r.errors);
    } catch (err) {
      errors.push(`k=${k}: ${err instanceof Error ? err.message : String(err)}`);
      log(errors[errors.length - 1]);
    }
  }

  // ------------------------------------------------------------------------------------------ report
  const lines: string[] = [];
  lines.push(
    `\nbench:scale  C=${s.concurrency} per instance  L=${s.latencyMs} ms  C/L=${(s.concurrency / (s.latencyMs / 1000)).toFixed(0)}/s per instance  ` +
      `batch=${s.batchSize}  pool=${s.poolSize}  rate=${s.rate}/s  one PostgreSQL (${db.embedded ? 'embedded' : 'BENCH_DATABASE_URL'})\n`,
  );
  lines.push(
    table(
      [
        'k',
        'N',
        'charged',
        'run s',
        'charges/s',
        'x k·C/L',
        'first→last charge /s',
        'gateway-only /s',
        'x gateway-only',
        'split by instance',
        'CPU s inst|pg|fake',
        'machine busy',
        ...CHECK_HEADERS,
      ],
      results.map((r) => [
        r.k,
        r.n,
        ...throughputCells(r.charged, r.runSeconds, r.throughput, r.ideal),
        r.firstToLastThroughput === null ? '?' : `${r.firstToLastThroughput.toFixed(0)} (${(r.firstToLastThroughput / r.ideal).toFixed(2)} x)`,
        r.reference ? `${r.reference.throughput.toFixed(0)} (${(r.reference.throughput / r.ideal).toFixed(2)} x)` : 'n/a',
        r.reference ? (r.throughput / r.reference.throughput).toFixed(2) : 'n/a',
        r.instances.map((i) => i.charged).join(' / '),
        `${r.instances.reduce((a, i) => a + i.cpuS, 0).toFixed(1)} | ${r.postgresCpuS.toFixed(1)} | ${r.fakeCpuS.toFixed(1)}`,
        percent(r.machineBusyShare),
        ...checkCells(r.check, r.n),
      ]),
    ),
  );
  const one = results.find((r) => r.k === 1);
  if (one && results.length > 1) {
    lines.push(
      `\nscaling against k=1: ${results
        .filter((r) => r.k !== 1)
        .map((r) => `k=${r.k} ${(r.throughput / one.throughput).toFixed(2)} x (ideal ${r.k} x)`)
        .join(', ')}`,
    );
  }
  const targets: Target[] = [];
  for (const r of results) {
    targets.push({
      target: `throughput k=${r.k} (N=${r.n})`,
      required: `>= ${(0.9 * r.ideal).toFixed(0)}/s (0.9 x k·C/L = 0.9 x ${r.ideal.toFixed(0)})`,
      measured: `${r.throughput.toFixed(0)}/s = ${(r.throughput / r.ideal).toFixed(2)} x k·C/L${r.reference ? `, ${(r.throughput / r.reference.throughput).toFixed(2)} x gateway-only` : ''}`,
      met: r.throughput >= 0.9 * r.ideal,
    });
  }
  for (const r of results) targets.push(chargedOnceTarget(`charged exactly once k=${r.k}`, r.check));
  for (const r of results) {
    if (r.reference) {
      targets.push({
        target: `reference k=${r.k} (gateway only) charged all`,
        required: `${r.n} charges at the fake`,
        measured: r.reference.ok ? 'yes' : `${r.reference.charged} charged, ${r.reference.failed} failed`,
        met: r.reference.ok,
      });
    }
  }
  lines.push(targetsTable(targets));
  const tails = results.flatMap((r) => r.instanceLogTail.map((l) => `k=${r.k} ${l}`));
  if (tails.length) lines.push(`\nInstance warnings/errors (last ${Math.min(tails.length, 10)}):\n  ${tails.slice(-10).join('\n  ')}`);
  finishReport('scale', lines, t0, {
    settings: { ks, ...s, seconds, fixedN, withReference, database: db.embedded ? 'embedded' : 'BENCH_DATABASE_URL' },
    results,
    targets,
    errors,
  });
  const correct = results.length === ks.length && results.every((r) => r.check.ok && (!r.reference || r.reference.ok));
  return errors.length || !correct ? 1 : 0;
}

if (process.argv[2] === '--gateway-child') {
  runChild(() => gatewayChild(JSON.parse(process.argv[3]) as GatewayChildOptions), 'gateway-only child');
} else {
  runMain(main, intEnv('BENCH_SCALE_TIMEOUT_S', 1800, 10));
}
