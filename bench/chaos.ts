/**
 * `npm run chaos` (not part of npm test): never twice, never lost, with the service killed under it.
 *
 * CHAOS_SUBS (1000) due subscriptions are seeded (set-based, keys issued at the fake in bulk) on a fresh database
 * (embedded PostgreSQL in a temp dir, or BENCH_DATABASE_URL). The fake Bootpay runs as its own process (latency
 * CHAOS_LATENCY_MS, 100) and drops the answer of CHAOS_TIMEOUT_RATE (10%) of charges after making them
 * (`timeout_after_charge {rate, mode: drop}`); a counting proxy in this process sits between the service and the fake
 * to count charge requests and those time-outs. Three service instances (bench/server.js: createApp, like main.js,
 * NODE_ENV=production, system clock) each run charge runs back to back (`POST /v1/charge-runs {wait: true}`), with
 * CHARGE_RUN_CONCURRENCY=CHAOS_CONCURRENCY (4), CHARGE_RUN_RATE_PER_SECOND=CHAOS_RATE (10), batch CHAOS_BATCH (50)
 * and BOOTPAY_CHARGE_TIMEOUT_MS=2000 (so open attempts are re-sent once 60 s old). CHAOS_KILLS (20) times, after a
 * random CHAOS_KILL_MIN_MS..CHAOS_KILL_MAX_MS (500..2500 ms), a random running instance is killed with SIGKILL and
 * started again. Then clean runs (no kills; the fake's time-outs stay on unless CHAOS_CLEAN_FAULTS=false) are made,
 * waiting for open attempts to become 60 s old, until nothing is open or due (at most CHAOS_CLEAN_TIMEOUT_S, 480 s).
 *
 * Then the fake's ledger is checked: each subscription has exactly one successful charge for its period, and the local
 * DONE payments equal the fake's charges one to one (by order_id). Exit 1 when doubles or lost > 0 (or attempts are
 * still open). Results: bench/results/chaos-<timestamp>.json.
 */
import { randomBytes, randomInt } from 'node:crypto';
import { closeSync, openSync, readFileSync, rmSync } from 'node:fs';
import * as http from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client } from 'pg';
import {
  boolEnv,
  Child,
  DIST,
  fakeJson,
  fakeLedger,
  freePort,
  intEnv,
  log,
  newEncryptionKey,
  numEnv,
  onCleanup,
  runMain,
  seedDueSubscriptions,
  sleep,
  spawnNode,
  startDatabaseServer,
  startFake,
  subscriptionOfOrderId,
  table,
  waitForHttp,
  writeResults,
} from './lib';

interface ProxyStats {
  requests: number;
  chargeRequests: number;
  timeouts: number;
  clientAborts: number;
}

/** Forwards everything to the fake; a charge whose upstream connection is dropped without an answer is a time-out. */
async function startCountingProxy(target: string): Promise<{ url: string; stats: ProxyStats; close(): Promise<void> }> {
  const t = new URL(target);
  const agent = new http.Agent({ keepAlive: true, maxSockets: 512 });
  const stats: ProxyStats = { requests: 0, chargeRequests: 0, timeouts: 0, clientAborts: 0 };
  const server = http.createServer((req, res) => {
    stats.requests++;
    const isCharge = req.method === 'POST' && (req.url ?? '').split('?')[0] === '/v2/subscribe/payment';
    if (isCharge) stats.chargeRequests++;
    const up = http.request({ host: t.hostname, port: t.port, method: req.method, path: req.url, headers: req.headers, agent }, (ur) => {
      res.writeHead(ur.statusCode ?? 502, ur.headers);
      ur.pipe(res);
    });
    up.on('error', () => {
      if (isCharge) stats.timeouts++;
      res.destroy();
    });
    res.on('close', () => {
      if (!res.writableFinished) stats.clientAborts++;
    });
    req.pipe(up);
  });
  server.keepAliveTimeout = 65_000;
  const port = await freePort();
  await new Promise<void>((r) => server.listen(port, '127.0.0.1', () => r()));
  const close = () =>
    new Promise<void>((r) => {
      server.closeAllConnections();
      server.close(() => r());
      agent.destroy();
    });
  onCleanup(close);
  return { url: `http://127.0.0.1:${port}`, stats, close };
}

interface Instance {
  slot: number;
  port: number;
  url: string;
  child: Child | null;
  up: boolean;
  inRun: boolean;
  starts: number;
  runsCompleted: number;
  runsCut: number;
}

async function main(): Promise<number> {
  const subs = intEnv('CHAOS_SUBS', 1000, 1, 100_000);
  const kills = intEnv('CHAOS_KILLS', 20, 0, 1000);
  const instancesN = intEnv('CHAOS_INSTANCES', 3, 1, 16);
  const latencyMs = intEnv('CHAOS_LATENCY_MS', 100, 0, 10_000);
  const timeoutRate = numEnv('CHAOS_TIMEOUT_RATE', 0.1, 0, 1);
  const concurrency = intEnv('CHAOS_CONCURRENCY', 4, 1, 1024);
  const rate = intEnv('CHAOS_RATE', 10, 1, 100_000);
  const batch = intEnv('CHAOS_BATCH', 50, 1, 10_000);
  const killMin = intEnv('CHAOS_KILL_MIN_MS', 500, 0);
  const killMax = intEnv('CHAOS_KILL_MAX_MS', 2500, killMin);
  const cleanFaults = boolEnv('CHAOS_CLEAN_FAULTS', true);
  const cleanTimeoutS = intEnv('CHAOS_CLEAN_TIMEOUT_S', 480, 10);
  const seed = intEnv('CHAOS_SEED', randomInt(1, 1_000_000), 0);
  const t0 = Date.now();

  const db = await startDatabaseServer();
  const fresh = await db.fresh('chaos');
  const fake = await startFake(latencyMs, { FAKE_BOOTPAY_SEED: String(seed) });
  const key = newEncryptionKey();
  const seeded = await seedDueSubscriptions(fresh.url, fake.url, key, subs);
  log(`seeded ${subs} due subscriptions in ${seeded.seconds.toFixed(1)} s`);
  const proxy = await startCountingProxy(fake.url);
  const setFaults = (on: boolean) =>
    fakeJson(fake.url, 'PUT', '/__fake/faults', on && timeoutRate > 0 ? { timeout_after_charge: { rate: timeoutRate, mode: 'drop' }, seed } : {});
  await setFaults(true);

  const adminKey = `bsk_chaos_adm_${randomBytes(16).toString('hex')}`;
  const logDir = tmpdir();
  const instances: Instance[] = [];
  for (let i = 0; i < instancesN; i++) {
    const port = await freePort();
    instances.push({ slot: i, port, url: `http://127.0.0.1:${port}`, child: null, up: false, inRun: false, starts: 0, runsCompleted: 0, runsCut: 0 });
  }
  const logFiles = instances.map((i) => join(logDir, `chaos-instance-${process.pid}-${i.slot}.log`));
  const env = (inst: Instance): Record<string, string> => ({
    NODE_ENV: 'production',
    HOST: '127.0.0.1',
    PORT: String(inst.port),
    DATABASE_URL: fresh.url,
    DATABASE_POOL_SIZE: '10',
    BILLING_KEY_ENCRYPTION_KEY: key.toString('base64'),
    BOOTPAY_CLIENT_KEY: 'ck_test_fake',
    BOOTPAY_SECRET_KEY: 'sk_test_fake',
    BOOTPAY_MODE: 'development',
    BOOTPAY_API_BASE_URL: `${proxy.url}/v2`,
    BOOTPAY_CHARGE_TIMEOUT_MS: '2000',
    BOOTPAY_TIMEOUT_MS: '2000',
    ADMIN_API_KEY: adminKey,
    CHARGE_RUN_CRON_ENABLED: 'false',
    CHARGE_RUN_CONCURRENCY: String(concurrency),
    CHARGE_RUN_RATE_PER_SECOND: String(rate),
    CHARGE_RUN_BATCH_SIZE: String(batch),
    SKIP_MIGRATIONS: 'true',
    LOG_LEVEL: 'warn',
    OUTBOUND_WEBHOOK_POLL_MS: '0',
  });
  const start = (inst: Instance) => {
    const fd = openSync(logFiles[inst.slot], 'a');
    inst.child = spawnNode(join(DIST, 'bench', 'server.js'), [], env(inst), { stdout: fd });
    closeSync(fd);
    inst.up = false;
    inst.starts++;
    const child = inst.child;
    void waitForHttp(`${inst.url}/health`, child, 120_000).then(
      () => {
        if (inst.child === child) inst.up = true;
      },
      () => undefined,
    );
  };
  for (const inst of instances) start(inst);

  // Each instance runs charge runs back to back while `driving`.
  let driving = true;
  const runOnce = async (inst: Instance): Promise<'completed' | 'cut' | string> => {
    inst.inRun = true;
    try {
      const res = await fetch(`${inst.url}/v1/charge-runs`, {
        method: 'POST',
        headers: { authorization: `Bearer ${adminKey}`, 'content-type': 'application/json' },
        body: JSON.stringify({ wait: true }),
        signal: AbortSignal.timeout(600_000),
      });
      const body = (await res.json()) as { status?: string };
      return body.status ?? `HTTP ${res.status}`;
    } catch {
      return 'cut';
    } finally {
      inst.inRun = false;
    }
  };
  const drivers = instances.map(async (inst) => {
    while (driving) {
      if (!inst.up) {
        await sleep(100);
        continue;
      }
      const outcome = await runOnce(inst);
      if (outcome === 'cut') inst.runsCut++;
      else inst.runsCompleted++;
      await sleep(outcome === 'cut' ? 100 : 250);
    }
  });

  // The killer.
  const killLog: { at: number; slot: number; inRun: boolean }[] = [];
  log(`chaos: ${instancesN} instances, ${kills} SIGKILLs every ${killMin}..${killMax} ms, ${Math.round(timeoutRate * 100)}% charge time-outs (seed ${seed})`);
  while (killLog.length < kills) {
    await sleep(randomInt(killMin, killMax + 1));
    const candidates = instances.filter((i) => i.up && i.inRun);
    const pool = candidates.length ? candidates : instances.filter((i) => i.up);
    if (!pool.length) continue;
    const victim = pool[randomInt(0, pool.length)];
    const child = victim.child!;
    killLog.push({ at: Date.now() - t0, slot: victim.slot, inRun: victim.inRun });
    victim.up = false;
    child.proc.kill('SIGKILL');
    await child.exited;
    log(
      `kill ${killLog.length}/${kills}: instance ${victim.slot} (pid ${child.proc.pid})${killLog[killLog.length - 1].inRun ? ' during a run' : ''}; restarting`,
    );
    start(victim);
  }
  driving = false;
  await Promise.all(drivers);
  const chaosSeconds = (Date.now() - t0) / 1000;
  log(`kills done after ${chaosSeconds.toFixed(0)} s; clean runs until nothing is open or due`);

  // Clean runs: no more kills. Open attempts are re-sent once older than max(60 s, 2 x 2 s).
  if (!cleanFaults) await setFaults(false);
  const c = new Client({ connectionString: fresh.url });
  await c.connect();
  onCleanup(() => c.end().catch((err: unknown) => console.warn(`closing a database client: ${String(err)}`)));
  const state = async () => {
    const r = await c.query(`
      SELECT (SELECT count(*)::int FROM payments WHERE status IN ('IN_PROGRESS', 'UNKNOWN', 'READY')) AS open,
             (SELECT max(updated_at) FROM payments WHERE status IN ('IN_PROGRESS', 'UNKNOWN')) AS newest_open,
             (SELECT count(*)::int FROM subscriptions WHERE status IN ('incomplete', 'trialing', 'active', 'past_due') AND next_charge_at <= now()) AS due`);
    return r.rows[0] as { open: number; newest_open: Date | null; due: number };
  };
  const runner = instances[0];
  while (!runner.up) await sleep(200);
  const cleanDeadline = Date.now() + cleanTimeoutS * 1000;
  let cleanRuns = 0;
  for (;;) {
    const s = await state();
    if (s.open === 0 && s.due === 0) break;
    if (Date.now() > cleanDeadline) {
      log(`clean phase deadline reached with ${s.open} open attempts and ${s.due} due subscriptions`);
      break;
    }
    if (s.open > 0 && s.newest_open) {
      const waitMs = s.newest_open.getTime() + 61_000 - Date.now();
      if (waitMs > 0) {
        log(`${s.open} open attempts, ${s.due} due: waiting ${Math.ceil(waitMs / 1000)} s for the newest to be 60 s old`);
        await sleep(Math.min(waitMs, Math.max(0, cleanDeadline - Date.now())));
      }
    }
    const outcome = await runOnce(runner);
    cleanRuns++;
    const after = await state();
    log(`clean run ${cleanRuns}: ${outcome}; open ${after.open}, due ${after.due}`);
  }
  await setFaults(false);
  for (const inst of instances) await inst.child?.stop();

  // ------------------------------------------------------------------------------------------ the check
  const ledger = await fakeLedger(fake.url);
  const periodSec = Math.floor(seeded.periodStart.getTime() / 1000);
  const perSub = new Map<string, number>();
  const fakeOrders = new Set<string>();
  for (const ch of ledger.charges) {
    fakeOrders.add(ch.order_id);
    const o = subscriptionOfOrderId(ch.order_id);
    if (o && o.periodStart === periodSec) perSub.set(o.subscriptionId, (perSub.get(o.subscriptionId) ?? 0) + 1);
  }
  const done: { order_id: string; subscription_id: string }[] = (await c.query(`SELECT order_id, subscription_id FROM payments WHERE status = 'DONE'`)).rows;
  const doneOrders = new Set(done.map((d) => d.order_id));
  const donePerSub = new Map<string, number>();
  for (const d of done) donePerSub.set(d.subscription_id, (donePerSub.get(d.subscription_id) ?? 0) + 1);
  const finalState = await state();
  const runsRows: { status: string; n: number }[] = (await c.query(`SELECT status, count(*)::int AS n FROM charge_runs GROUP BY status ORDER BY status`)).rows;
  const attemptsRows: { status: string; n: number }[] = (await c.query(`SELECT status, count(*)::int AS n FROM payments GROUP BY status ORDER BY status`)).rows;
  const resent = Number((await c.query(`SELECT count(*)::int AS n FROM payments WHERE status = 'DONE' AND receipt_id IS NULL`)).rows[0].n);

  let doublesAtFake = 0;
  let neverCharged = 0;
  for (const id of seeded.subscriptionIds) {
    const k = perSub.get(id) ?? 0;
    if (k > 1) doublesAtFake++;
    if (k === 0) neverCharged++;
  }
  let doublesLocal = 0;
  for (const k of donePerSub.values()) if (k > 1) doublesLocal++;
  let chargedNotRecorded = 0;
  for (const o of fakeOrders) if (!doneOrders.has(o)) chargedNotRecorded++;
  let recordedNotCharged = 0;
  for (const o of doneOrders) if (!fakeOrders.has(o)) recordedNotCharged++;
  const doubles = doublesAtFake + doublesLocal;
  const lost = neverCharged + chargedNotRecorded + recordedNotCharged;
  const totalSeconds = (Date.now() - t0) / 1000;

  const lines: string[] = [];
  lines.push(
    `\nchaos  ${subs} subscriptions, ${instancesN} instances, fake latency ${latencyMs} ms, ${Math.round(timeoutRate * 100)}% charges time out (seed ${seed})\n`,
  );
  lines.push(
    table(
      ['count', 'value'],
      [
        ['subscriptions', subs],
        ['successful charges at the fake', ledger.charges.length],
        ['charge requests sent (incl. re-sends)', proxy.stats.chargeRequests],
        ['kills (SIGKILL)', `${killLog.length} (${killLog.filter((k) => k.inRun).length} during a run)`],
        ['instance starts', instances.map((i) => i.starts).reduce((a, b) => a + b, 0)],
        ['time-outs (answer dropped after the charge)', proxy.stats.timeouts],
        [
          'runs: completed / cut by a kill',
          `${instances.map((i) => i.runsCompleted).reduce((a, b) => a + b, 0)} / ${instances.map((i) => i.runsCut).reduce((a, b) => a + b, 0)}`,
        ],
        ['charge_runs rows by status', runsRows.map((r) => `${r.status} ${r.n}`).join(', ')],
        ['payments by status', attemptsRows.map((r) => `${r.status} ${r.n}`).join(', ')],
        ['DONE settled by re-send (duplicate order_id)', resent],
        ['clean runs', cleanRuns],
        ['still open / still due', `${finalState.open} / ${finalState.due}`],
        ['doubles (subscriptions charged twice at the fake | DONE twice)', `${doubles} (${doublesAtFake} | ${doublesLocal})`],
        ['lost (never charged | charged, not DONE | DONE, not charged)', `${lost} (${neverCharged} | ${chargedNotRecorded} | ${recordedNotCharged})`],
        ['time: chaos phase / total', `${chaosSeconds.toFixed(0)} s / ${totalSeconds.toFixed(0)} s`],
      ],
    ),
  );
  const ok = doubles === 0 && lost === 0 && finalState.open === 0;
  lines.push(`\n${ok ? 'PASS' : 'FAIL'}: ${doubles} doubles, ${lost} lost, ${finalState.open} open`);
  const file = writeResults('chaos', {
    at: new Date().toISOString(),
    settings: {
      subs,
      kills,
      instances: instancesN,
      latencyMs,
      timeoutRate,
      concurrency,
      rate,
      batch,
      killMin,
      killMax,
      cleanFaults,
      seed,
      database: db.embedded ? 'embedded' : 'BENCH_DATABASE_URL',
    },
    counts: {
      charges: ledger.charges.length,
      chargeRequests: proxy.stats.chargeRequests,
      kills: killLog.length,
      killsDuringRun: killLog.filter((k) => k.inRun).length,
      timeouts: proxy.stats.timeouts,
      doubles,
      doublesAtFake,
      doublesLocal,
      lost,
      neverCharged,
      chargedNotRecorded,
      recordedNotCharged,
      open: finalState.open,
      due: finalState.due,
      cleanRuns,
      resentDone: resent,
    },
    runs: runsRows,
    payments: attemptsRows,
    killLog,
    chaosSeconds,
    totalSeconds,
  });
  lines.push(`results: ${file}`);
  process.stdout.write(lines.join('\n') + '\n');
  if (ok) for (const f of logFiles) rmSync(f, { force: true });
  else {
    process.stdout.write(`instance logs kept: ${logFiles.join(', ')}\n`);
    for (const f of logFiles)
      process.stderr.write(
        readFileSync(f, 'utf8')
          .split('\n')
          .filter((l) => /"level":"(error|warn)"/.test(l))
          .slice(-10)
          .join('\n') + '\n',
      );
  }
  await fake.stop();
  return ok ? 0 : 1;
}

runMain(main, intEnv('CHAOS_TIMEOUT_S', 1200, 30));
