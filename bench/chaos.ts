/**
 * `npm run chaos` (not part of npm test): never twice, never lost, with the service and its database killed under it.
 *
 * CHAOS_SUBS (1000) due subscriptions are seeded (set-based, keys issued at the fake in bulk) on a fresh database
 * (embedded PostgreSQL in a temp dir, restartable: bench/chaos-pg.ts; or BENCH_DATABASE_URL). The fake Bootpay runs as
 * its own process (latency CHAOS_LATENCY_MS, 100) and drops the answer of CHAOS_TIMEOUT_RATE (10%) of charges after
 * making them (`timeout_after_charge {rate, mode: drop}`), and answers CHAOS_LOOKUP_5XX_RATE (20%) of Bootpay lookups
 * (`GET receipt/:id`, `GET subscribe/payment/reserve/:id`) with a 500 and Bootpay's error JSON, doing nothing
 * (`fail_rate`); a counting proxy in this process sits between the service and the fake to count charge requests,
 * time-outs, lookups and their 5xx. With CHAOS_BOOTPAY_WEBHOOKS (true) the fake sends its payment webhooks to a
 * balancer in this process that forwards each to a random instance that is up (a load balancer's part): the service
 * verifies each by looking the receipt up, which is where lookups happen in this bench (a refused lookup makes the
 * service answer 503 and the fake retry; a webhook given up after its retries is settled by the run's re-send).
 *
 * Three service instances (bench/server.js: createApp, like main.js, NODE_ENV=production, system clock) each run charge
 * runs back to back (`POST /v1/charge-runs {wait: true}`), with CHARGE_RUN_CONCURRENCY=CHAOS_CONCURRENCY (4),
 * CHARGE_RUN_RATE_PER_SECOND=CHAOS_RATE (10), batch CHAOS_BATCH (50) and BOOTPAY_CHARGE_TIMEOUT_MS=2000 (so open
 * attempts are re-sent once 60 s old). CHAOS_KILLS (20) times, after a random CHAOS_KILL_MIN_MS..CHAOS_KILL_MAX_MS
 * (500..2500 ms), a random running instance is killed with SIGKILL and started again. CHAOS_PG_KILLS (3) times, spread
 * evenly among those kills, PostgreSQL's postmaster (the PID in its data dir's postmaster.pid: only the server this
 * bench started) is killed with SIGKILL, stays down CHAOS_PG_DOWN_MS (2000 ms) and is started again on the same data
 * dir and port (crash recovery). With BENCH_DATABASE_URL the PostgreSQL kills are skipped, with a note. The bench is
 * the instances' supervisor: an instance that exits by itself (not killed by the bench) is counted, logged and started
 * again after CHAOS_RESTART_DELAY_MS (1000 ms), as systemd or Kubernetes would.
 *
 * Meanwhile, until the clean runs end, CHAOS_MUTATIONS_PER_S (5) times a second (at most 16 at once), one of the first
 * CHAOS_MUTATION_SUBS (50) subscriptions, once charged, is canceled at period end or reactivated through the API (a
 * random instance that is up), so subscriptions have events beyond their payment's (sequence 2, 3, ...) for the webhook
 * checks; this changes nothing charged here.
 *
 * With CHAOS_WEBHOOKS (true) the bench runs a receiver of the outbound webhooks (bench/chaos-webhooks.ts: records
 * every event, answers 200, checks no signature) and registers it as an endpoint for every event type before the first
 * charge; the instances run the outbound dispatcher (OUTBOUND_WEBHOOK_POLL_MS=1000) with
 * OUTBOUND_WEBHOOKS_ALLOW_PRIVATE=true (the receiver listens on 127.0.0.1).
 *
 * Then clean runs (no kills; the fake's faults stay on unless CHAOS_CLEAN_FAULTS=false) are made, waiting for open
 * attempts to become 60 s old, until nothing is open or due (at most CHAOS_CLEAN_TIMEOUT_S, 480 s); then the bench
 * waits for the outbound deliveries to settle (none pending; at most CHAOS_WEBHOOK_SETTLE_TIMEOUT_S, 300 s).
 *
 * Checks: the fake's ledger has exactly one successful charge per subscription for its period, and the local DONE
 * payments equal the fake's charges one to one (by order_id); nothing is open. Outbound webhooks: every event of the
 * outbox (webhook_events) reached the receiver at least once (missing: 0), the receiver got nothing the outbox does
 * not hold, per subscription the delivered sequence numbers are 1..n without a gap, the outbox's own numbers are 1..n
 * up to the subscription's event_seq, and no delivery is still pending or given up. Duplicates (at-least-once) are
 * counted, not failed. A watchdog (bench/chaos-stall.ts) ends the bench early with exit 1 and a snapshot of the
 * database's sessions (which instance holds each, its state, advisory locks, last statement) when sessions stay idle in
 * a transaction or wait for a lock longer than CHAOS_STALL_S (120 s): a service stuck without failing. Exit 1 when any
 * check fails; 3 at the deadline CHAOS_TIMEOUT_S (1800 s). CHAOS_SEED makes
 * the fault pattern repeatable. Results: bench/results/chaos-<timestamp>.json; instance logs are kept in the temp dir
 * (and their last warnings printed) when a check fails.
 *
 * Settings (env): CHAOS_SUBS, CHAOS_INSTANCES (3), CHAOS_KILLS, CHAOS_KILL_MIN_MS, CHAOS_KILL_MAX_MS, CHAOS_PG_KILLS,
 * CHAOS_PG_DOWN_MS, CHAOS_RESTART_DELAY_MS, CHAOS_LATENCY_MS, CHAOS_TIMEOUT_RATE, CHAOS_LOOKUP_5XX_RATE,
 * CHAOS_BOOTPAY_WEBHOOKS, CHAOS_WEBHOOKS, CHAOS_WEBHOOK_SETTLE_TIMEOUT_S, CHAOS_CONCURRENCY, CHAOS_RATE, CHAOS_BATCH,
 * CHAOS_MUTATIONS_PER_S, CHAOS_MUTATION_SUBS, CHAOS_CLEAN_FAULTS, CHAOS_CLEAN_TIMEOUT_S, CHAOS_STALL_S, CHAOS_SEED, CHAOS_TIMEOUT_S, BENCH_DATABASE_URL.
 */
import { randomBytes, randomInt } from 'node:crypto';
import { closeSync, openSync, readFileSync, rmSync } from 'node:fs';
import * as http from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client } from 'pg';
import { startRestartableDatabaseServer } from './chaos-pg';
import { describeStall, StallReport, watchStalls } from './chaos-stall';
import { ReceivedEvent, startInboundBalancer, startOutboundReceiver } from './chaos-webhooks';
import {
  boolEnv,
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
  subscriptionOfOrderId,
  table,
  writeResults,
} from './lib';
import { Child, serviceEnv, spawnNode, startFake, waitForHttp } from './processes';

/** Bootpay's lookups, as the fake's route filters: a receipt, a reservation. */
const LOOKUP_ROUTES = ['GET receipt', 'GET subscribe/payment/reserve'];

interface ProxyStats {
  requests: number;
  chargeRequests: number;
  timeouts: number;
  clientAborts: number;
  lookups: number;
  lookup5xx: number;
}

/**
 * Forwards everything to the fake; a charge whose upstream connection is dropped without an answer is a time-out.
 * Counts lookups (`GET /v2/receipt/…`, `GET /v2/subscribe/payment/reserve/…`) and those answered 5xx.
 */
async function startCountingProxy(target: string): Promise<{ url: string; stats: ProxyStats; close(): Promise<void> }> {
  const t = new URL(target);
  const agent = new http.Agent({ keepAlive: true, maxSockets: 512 });
  const stats: ProxyStats = { requests: 0, chargeRequests: 0, timeouts: 0, clientAborts: 0, lookups: 0, lookup5xx: 0 };
  const server = http.createServer((req, res) => {
    stats.requests++;
    const path = (req.url ?? '').split('?')[0];
    const isCharge = req.method === 'POST' && path === '/v2/subscribe/payment';
    const isLookup = req.method === 'GET' && (path.startsWith('/v2/receipt/') || path.startsWith('/v2/subscribe/payment/reserve/'));
    if (isCharge) stats.chargeRequests++;
    if (isLookup) stats.lookups++;
    const up = http.request({ host: t.hostname, port: t.port, method: req.method, path: req.url, headers: req.headers, agent }, (ur) => {
      if (isLookup && (ur.statusCode ?? 0) >= 500) stats.lookup5xx++;
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
  /** Exits the bench did not cause (then it started the instance again, as a supervisor). */
  selfExits: number;
}

interface WebhookCheck {
  recorded: number;
  received: number;
  delivered: number;
  duplicates: number;
  missing: number;
  unknown: number;
  gaps: number;
  outboxGaps: number;
  subscriptionsWithEvents: number;
  byType: Record<string, number>;
  deliveries: Record<string, number>;
  malformed: number;
  unsigned: number;
  missingSample: string[];
  gapSample: string[];
}

/** Compares what the receiver got with the outbox (webhook_events) and the endpoint's deliveries. */
async function checkWebhooks(c: Client, endpointId: string, got: ReceivedEvent[], malformed: number): Promise<WebhookCheck> {
  const outbox: { id: string; type: string; subscription_id: string | null; sequence: number | null }[] = (
    await c.query(`SELECT id::text, type, subscription_id::text, sequence FROM webhook_events`)
  ).rows;
  const eventSeq = new Map<string, number>(
    ((await c.query(`SELECT id::text, event_seq FROM subscriptions WHERE event_seq > 0`)).rows as { id: string; event_seq: number }[]).map((r) => [
      r.id,
      r.event_seq,
    ]),
  );
  const deliveriesRows: { status: string; n: number }[] = (
    await c.query(`SELECT status, count(*)::int AS n FROM webhook_deliveries WHERE endpoint_id = $1 GROUP BY status ORDER BY status`, [endpointId])
  ).rows;
  const inOutbox = new Map(outbox.map((e) => [e.id, e]));
  const receivedIds = new Set(got.map((e) => e.id));
  const byType: Record<string, number> = {};
  for (const e of outbox) byType[e.type] = (byType[e.type] ?? 0) + 1;
  const missingIds = outbox.filter((e) => !receivedIds.has(e.id)).map((e) => e.id);
  let unknown = 0;
  for (const id of receivedIds) if (!inOutbox.has(id)) unknown++;

  // Per subscription: the outbox's numbers are 1..event_seq, and the numbers received are 1..max without a hole.
  const recordedSeqs = new Map<string, number[]>();
  for (const e of outbox)
    if (e.subscription_id && e.sequence !== null) recordedSeqs.set(e.subscription_id, [...(recordedSeqs.get(e.subscription_id) ?? []), e.sequence]);
  const receivedSeqs = new Map<string, Set<number>>();
  for (const e of got) {
    if (!e.subscriptionId || e.sequence === null || !inOutbox.has(e.id)) continue;
    const set = receivedSeqs.get(e.subscriptionId) ?? new Set<number>();
    set.add(e.sequence);
    receivedSeqs.set(e.subscriptionId, set);
  }
  let outboxGaps = 0;
  const gapSample: string[] = [];
  for (const [sub, n] of eventSeq) {
    const seqs = [...(recordedSeqs.get(sub) ?? [])].sort((a, b) => a - b);
    const ok = seqs.length === n && seqs.every((v, i) => v === i + 1);
    if (!ok) {
      outboxGaps++;
      if (gapSample.length < 5) gapSample.push(`outbox ${sub}: event_seq ${n}, recorded [${seqs.join(',')}]`);
    }
  }
  for (const sub of recordedSeqs.keys()) if (!eventSeq.has(sub)) outboxGaps++;
  let gaps = 0;
  for (const [sub, recorded] of recordedSeqs) {
    const set = receivedSeqs.get(sub) ?? new Set<number>();
    const max = Math.max(0, ...set);
    let hole = false;
    for (let k = 1; k <= max; k++) if (!set.has(k)) hole = true;
    // Once deliveries settle, the delivered numbers are all the recorded ones: a shorter run is a gap at its end.
    if (hole || max < Math.max(...recorded)) {
      gaps++;
      if (gapSample.length < 10)
        gapSample.push(`received ${sub}: [${[...set].sort((a, b) => a - b).join(',')}] of [${recorded.sort((a, b) => a - b).join(',')}]`);
    }
  }
  return {
    recorded: outbox.length,
    received: got.length,
    delivered: [...receivedIds].filter((id) => inOutbox.has(id)).length,
    duplicates: got.length - receivedIds.size,
    missing: missingIds.length,
    unknown,
    gaps,
    outboxGaps,
    subscriptionsWithEvents: recordedSeqs.size,
    byType,
    deliveries: Object.fromEntries(deliveriesRows.map((r) => [r.status, r.n])),
    malformed,
    unsigned: got.filter((e) => !e.signed).length,
    missingSample: missingIds.slice(0, 10),
    gapSample,
  };
}

async function main(): Promise<number> {
  const subs = intEnv('CHAOS_SUBS', 1000, 1, 100_000);
  const kills = intEnv('CHAOS_KILLS', 20, 0, 1000);
  const pgKillsWanted = intEnv('CHAOS_PG_KILLS', 3, 0, 100);
  const pgDownMs = intEnv('CHAOS_PG_DOWN_MS', 2000, 0, 120_000);
  const restartDelayMs = intEnv('CHAOS_RESTART_DELAY_MS', 1000, 0, 60_000);
  const instancesN = intEnv('CHAOS_INSTANCES', 3, 1, 16);
  const latencyMs = intEnv('CHAOS_LATENCY_MS', 100, 0, 10_000);
  const timeoutRate = numEnv('CHAOS_TIMEOUT_RATE', 0.1, 0, 1);
  const lookup5xxRate = numEnv('CHAOS_LOOKUP_5XX_RATE', 0.2, 0, 1);
  const bootpayWebhooks = boolEnv('CHAOS_BOOTPAY_WEBHOOKS', true);
  const webhooks = boolEnv('CHAOS_WEBHOOKS', true);
  const webhookSettleS = intEnv('CHAOS_WEBHOOK_SETTLE_TIMEOUT_S', 300, 10);
  const stallS = intEnv('CHAOS_STALL_S', 120, 10);
  const mutationsPerS = numEnv('CHAOS_MUTATIONS_PER_S', 5, 0, 1000);
  const mutationSubs = intEnv('CHAOS_MUTATION_SUBS', 50, 1, 100_000);
  const concurrency = intEnv('CHAOS_CONCURRENCY', 4, 1, 1024);
  const rate = intEnv('CHAOS_RATE', 10, 1, 100_000);
  const batch = intEnv('CHAOS_BATCH', 50, 1, 10_000);
  const killMin = intEnv('CHAOS_KILL_MIN_MS', 500, 0);
  const killMax = intEnv('CHAOS_KILL_MAX_MS', 2500, killMin);
  const cleanFaults = boolEnv('CHAOS_CLEAN_FAULTS', true);
  const cleanTimeoutS = intEnv('CHAOS_CLEAN_TIMEOUT_S', 480, 10);
  const seed = intEnv('CHAOS_SEED', randomInt(1, 1_000_000), 0);
  const t0 = Date.now();

  const db = await startRestartableDatabaseServer();
  let pgKills = pgKillsWanted;
  if (pgKills > 0 && !db.restartable) {
    log(`note: BENCH_DATABASE_URL names an external server, which this bench does not kill: the ${pgKills} PostgreSQL kills are skipped`);
    pgKills = 0;
  }
  const fresh = await db.fresh('chaos');
  const fake = await startFake(latencyMs, { FAKE_BOOTPAY_SEED: String(seed) });
  const key = newEncryptionKey();
  const seeded = await seedDueSubscriptions(fresh.url, fake.url, key, subs);
  log(`seeded ${subs} due subscriptions in ${seeded.seconds.toFixed(1)} s`);
  const proxy = await startCountingProxy(fake.url);
  const setFaults = (on: boolean) =>
    fakeJson(
      fake.url,
      'PUT',
      '/__fake/faults',
      on
        ? {
            ...(timeoutRate > 0 ? { timeout_after_charge: { rate: timeoutRate, mode: 'drop' } } : {}),
            ...(lookup5xxRate > 0 ? { fail_rate: { rate: lookup5xxRate, status: 500, route: LOOKUP_ROUTES } } : {}),
            seed,
          }
        : {},
    );
  await setFaults(true);

  const adminKey = `bsk_chaos_adm_${randomBytes(16).toString('hex')}`;
  const logDir = tmpdir();
  const instances: Instance[] = [];
  for (let i = 0; i < instancesN; i++) {
    const port = await freePort();
    instances.push({
      slot: i,
      port,
      url: `http://127.0.0.1:${port}`,
      child: null,
      up: false,
      inRun: false,
      starts: 0,
      runsCompleted: 0,
      runsCut: 0,
      selfExits: 0,
    });
  }
  // Bootpay's webhooks reach the instances through a balancer; the outbound ones go to the receiver.
  const balancer = await startInboundBalancer(() => instances.filter((i) => i.up).map((i) => i.url));
  if (bootpayWebhooks) await fakeJson(fake.url, 'PUT', '/__fake/webhook-url', { url: `${balancer.url}/v1/webhooks/bootpay` });
  const receiver = webhooks ? await startOutboundReceiver() : null;

  const logFiles = instances.map((i) => join(logDir, `chaos-instance-${process.pid}-${i.slot}.log`));
  const env = (inst: Instance): Record<string, string> =>
    serviceEnv(
      {
        nodeEnv: 'production',
        port: inst.port,
        databaseUrl: fresh.url,
        poolSize: 10,
        encryptionKey: key,
        fakeApiBaseUrl: `${proxy.url}/v2`,
        adminKey,
        logLevel: 'warn',
      },
      {
        BOOTPAY_CHARGE_TIMEOUT_MS: '2000',
        BOOTPAY_TIMEOUT_MS: '2000',
        CHARGE_RUN_CONCURRENCY: String(concurrency),
        CHARGE_RUN_RATE_PER_SECOND: String(rate),
        CHARGE_RUN_BATCH_SIZE: String(batch),
        OUTBOUND_WEBHOOK_POLL_MS: webhooks ? '1000' : '0',
        OUTBOUND_WEBHOOKS_ALLOW_PRIVATE: webhooks ? 'true' : 'false',
      },
    );

  // The bench is the instances' supervisor: an exit it did not cause is counted and the instance started again.
  let supervising = true;
  let pgDown = false;
  const benchKilled = new WeakSet<Child>();
  const selfExitLog: { at: number; slot: number; code: number | null; pgDown: boolean }[] = [];
  const start = (inst: Instance) => {
    const fd = openSync(logFiles[inst.slot], 'a');
    inst.child = spawnNode(join(DIST, 'bench', 'server.js'), [], env(inst), { stdout: fd });
    // Registered after the child's own stop, so it runs first at cleanup: nothing is restarted while stopping.
    onCleanup(() => {
      supervising = false;
    });
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
    void child.exited.then((code) => {
      if (!supervising || benchKilled.has(child) || inst.child !== child) return;
      inst.up = false;
      inst.selfExits++;
      selfExitLog.push({ at: Date.now() - t0, slot: inst.slot, code, pgDown });
      log(
        `instance ${inst.slot} (pid ${child.proc.pid}) exited by itself (code ${code})${pgDown ? ' while PostgreSQL is down' : ''}; restarting it in ${restartDelayMs} ms`,
      );
      setTimeout(() => {
        if (supervising && inst.child === child) start(inst);
      }, restartDelayMs);
    });
  };
  for (const inst of instances) start(inst);

  // A service that stops making progress (sessions idle in a transaction or waiting for a lock for over CHAOS_STALL_S)
  // ends the bench with a snapshot, instead of runs waiting until the deadline.
  const watchdog = watchStalls(fresh.url, stallS, () => instances.map((i) => i.child?.proc.pid));
  const STALLED = Symbol('stalled');
  let stall: StallReport | null = null;
  const stalled = watchdog.stalled.then((r) => {
    stall = r;
    return STALLED;
  });
  const orStall = async <T>(p: Promise<T>): Promise<T> => {
    const r = await Promise.race([p, stalled]);
    if (r === STALLED) throw new Error('stalled');
    return r as T;
  };
  const failStalled = (r: StallReport): number => {
    process.stdout.write(`\nFAIL: ${describeStall(r)}\n`);
    const file = writeResults('chaos', { at: new Date().toISOString(), seed, stall: r, runOutcomes, killLog, pgKillLog, selfExitLog });
    process.stdout.write(`results: ${file}\ninstance logs kept: ${logFiles.join(', ')}\n`);
    return 1;
  };

  // The receiver is registered before the first charge, so every event has a delivery to it.
  let endpointId = '';
  if (receiver) {
    while (!instances[0].up) await sleep(200);
    const res = await fetch(`${instances[0].url}/v1/webhook-endpoints`, {
      method: 'POST',
      headers: { authorization: `Bearer ${adminKey}`, 'content-type': 'application/json' },
      body: JSON.stringify({ url: receiver.url, events: ['*'], description: 'chaos bench receiver' }),
    });
    const body = (await res.json()) as { id?: string };
    if (res.status !== 201 || !body.id) throw new Error(`registering the webhook endpoint: HTTP ${res.status} ${JSON.stringify(body).slice(0, 300)}`);
    endpointId = body.id;
    log(`outbound webhook endpoint ${endpointId} → ${receiver.url}`);
  }

  // Each instance runs charge runs back to back while `driving`.
  let driving = true;
  const runOutcomes: Record<string, number> = {};
  const runOnce = async (inst: Instance): Promise<'completed' | 'cut' | string> => {
    inst.inRun = true;
    try {
      const res = await fetch(`${inst.url}/v1/charge-runs`, {
        method: 'POST',
        headers: { authorization: `Bearer ${adminKey}`, 'content-type': 'application/json' },
        body: JSON.stringify({ wait: true }),
        signal: AbortSignal.timeout(600_000),
      });
      const body = (await res.json()) as { status?: string; code?: string };
      return body.status ?? `HTTP ${res.status}${body.code ? ` ${body.code}` : ''}`;
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
      runOutcomes[outcome] = (runOutcomes[outcome] ?? 0) + 1;
      if (outcome === 'cut') inst.runsCut++;
      else inst.runsCompleted++;
      await sleep(outcome === 'cut' ? 100 : 250);
    }
  });

  // Changes through the API, so subscriptions have more events than their payment's (sequences 2, 3, …): on a few
  // subscriptions already charged (their next charge a period ahead), cancel at period end and reactivate, in turn.
  // Neither changes what is charged in this bench.
  const mutations: Record<string, number> = {};
  const mutationPool = seeded.subscriptionIds.slice(0, Math.min(mutationSubs, seeded.subscriptionIds.length));
  let mutating = true;
  const mutator = (async () => {
    if (mutationsPerS <= 0) return;
    const count = (k: string) => (mutations[k] = (mutations[k] ?? 0) + 1);
    const inFlight = new Set<Promise<void>>();
    const mutate = async (inst: Instance, id: string) => {
      const headers = { authorization: `Bearer ${adminKey}`, 'content-type': 'application/json' };
      try {
        const got = await fetch(`${inst.url}/v1/subscriptions/${id}`, { headers, signal: AbortSignal.timeout(10_000) });
        const sub = (await got.json()) as { status?: string; next_charge_at?: string | null; cancel_at_period_end?: boolean };
        if (!got.ok || sub.status !== 'active' || !sub.next_charge_at || Date.parse(sub.next_charge_at) < Date.now() + 86_400_000) {
          count(got.ok ? 'skipped (not charged yet)' : `read HTTP ${got.status}`);
          return;
        }
        const [path, body] = sub.cancel_at_period_end ? ['reactivate', { reason: 'chaos bench' }] : ['cancel', { at_period_end: true, reason: 'chaos bench' }];
        const res = await fetch(`${inst.url}/v1/subscriptions/${id}/${path}`, {
          method: 'POST',
          headers,
          body: JSON.stringify(body),
          signal: AbortSignal.timeout(10_000),
        });
        await res.arrayBuffer();
        count(`${path} ${res.status}`);
      } catch {
        count('cut');
      }
    };
    while (mutating) {
      await sleep(1000 / mutationsPerS);
      const ups = instances.filter((i) => i.up);
      if (!ups.length || inFlight.size >= 16) continue;
      const p = mutate(ups[randomInt(0, ups.length)], mutationPool[randomInt(0, mutationPool.length)]);
      inFlight.add(p);
      void p.finally(() => inFlight.delete(p));
    }
    await Promise.all(inFlight);
  })();

  // The killer: instance kills, and PostgreSQL kills spread evenly among them.
  const killLog: { at: number; slot: number; inRun: boolean }[] = [];
  const pgKillLog: { at: number; pid: number; runsInFlight: number; downMs: number; startTries: number }[] = [];
  const totalEvents = kills + pgKills;
  const pgAt = new Set<number>();
  for (let i = 0; i < pgKills; i++) pgAt.add(Math.floor(((i + 1) * totalEvents) / (pgKills + 1)));
  log(
    `chaos: ${instancesN} instances, ${kills} SIGKILLs and ${pgKills} PostgreSQL SIGKILLs every ${killMin}..${killMax} ms, ` +
      `${Math.round(timeoutRate * 100)}% charge time-outs, ${Math.round(lookup5xxRate * 100)}% lookups 5xx (seed ${seed})`,
  );
  while (killLog.length + pgKillLog.length < totalEvents) {
    await sleep(randomInt(killMin, killMax + 1));
    if (pgAt.has(killLog.length + pgKillLog.length)) {
      const at = Date.now() - t0;
      const runsInFlight = instances.filter((i) => i.inRun).length;
      pgDown = true;
      const k = await db.kill();
      log(
        `PostgreSQL kill ${pgKillLog.length + 1}/${pgKills}: postmaster pid ${k.pid} (SIGKILL; its ${k.children} processes gone after ${k.childrenLeftMs} ms), ${runsInFlight} runs in flight; down for ${pgDownMs} ms`,
      );
      await sleep(pgDownMs);
      const s = await db.start(120_000);
      pgDown = false;
      pgKillLog.push({ at, pid: k.pid, runsInFlight, downMs: Date.now() - t0 - at, startTries: s.tries });
      log(`PostgreSQL up again after ${((Date.now() - t0 - at) / 1000).toFixed(1)} s (start ${s.ms} ms, ${s.tries} tries)`);
      continue;
    }
    const candidates = instances.filter((i) => i.up && i.inRun);
    const pool = candidates.length ? candidates : instances.filter((i) => i.up);
    if (!pool.length) continue;
    const victim = pool[randomInt(0, pool.length)];
    const child = victim.child!;
    killLog.push({ at: Date.now() - t0, slot: victim.slot, inRun: victim.inRun });
    victim.up = false;
    benchKilled.add(child);
    child.proc.kill('SIGKILL');
    await child.exited;
    log(
      `kill ${killLog.length}/${kills}: instance ${victim.slot} (pid ${child.proc.pid})${killLog[killLog.length - 1].inRun ? ' during a run' : ''}; restarting`,
    );
    start(victim);
  }
  driving = false;
  try {
    await orStall(Promise.all(drivers));
  } catch (err) {
    if (stall) return failStalled(stall);
    throw err;
  }
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
    while (!runner.up && Date.now() < cleanDeadline) await sleep(200);
    let outcome: string;
    try {
      outcome = await orStall(runOnce(runner));
    } catch (err) {
      if (stall) return failStalled(stall);
      throw err;
    }
    cleanRuns++;
    const after = await state();
    log(`clean run ${cleanRuns}: ${outcome}; open ${after.open}, due ${after.due}`);
  }

  mutating = false;
  try {
    await orStall(mutator);
  } catch (err) {
    if (stall) return failStalled(stall);
    throw err;
  }

  // Outbound deliveries settle: none pending (a delivery whose instance died holds its lease for a minute; a failed
  // attempt is retried after 30 s, doubling).
  let settleSeconds = 0;
  if (receiver) {
    const settleStart = Date.now();
    const settleDeadline = settleStart + webhookSettleS * 1000;
    let lastLog = 0;
    for (;;) {
      const r = (
        await c.query(
          `SELECT count(*)::int AS pending, min(next_attempt_at) AS next_at FROM webhook_deliveries WHERE endpoint_id = $1 AND status = 'pending'`,
          [endpointId],
        )
      ).rows[0] as { pending: number; next_at: Date | null };
      if (r.pending === 0) break;
      if (stall) return failStalled(stall);
      if (Date.now() > settleDeadline) {
        log(`webhook settle deadline reached with ${r.pending} deliveries pending`);
        break;
      }
      if (Date.now() - lastLog > 10_000) {
        lastLog = Date.now();
        const next = r.next_at ? Math.max(0, Math.ceil((r.next_at.getTime() - Date.now()) / 1000)) : 0;
        log(`${r.pending} outbound deliveries pending (next due in ${next} s), ${receiver.events.length} received so far`);
      }
      await sleep(500);
    }
    settleSeconds = (Date.now() - settleStart) / 1000;
  }
  watchdog.stop();
  await setFaults(false);
  supervising = false;
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
  const wh = receiver ? await checkWebhooks(c, endpointId, receiver.events, receiver.malformed) : null;
  const bootpayHooks = (
    (await fakeJson<{ webhooks?: { delivered: boolean; done: boolean; attempts: number }[] }>(fake.url, 'GET', '/__fake/ledger')).webhooks ?? []
  ).reduce((a, w) => ({ sent: a.sent + 1, delivered: a.delivered + (w.delivered ? 1 : 0), attempts: a.attempts + w.attempts }), {
    sent: 0,
    delivered: 0,
    attempts: 0,
  });

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
  const selfExitsPgDown = selfExitLog.filter((e) => e.pgDown).length;
  const sum = (f: (i: Instance) => number) => instances.map(f).reduce((a, b) => a + b, 0);

  const lines: string[] = [];
  lines.push(
    `\nchaos  ${subs} subscriptions, ${instancesN} instances, fake latency ${latencyMs} ms, ${Math.round(timeoutRate * 100)}% charges time out, ` +
      `${Math.round(lookup5xxRate * 100)}% lookups 5xx (seed ${seed})\n`,
  );
  const rows: (string | number)[][] = [
    ['subscriptions', subs],
    ['successful charges at the fake', ledger.charges.length],
    ['charge requests sent (incl. re-sends)', proxy.stats.chargeRequests],
    ['kills (SIGKILL)', `${killLog.length} (${killLog.filter((k) => k.inRun).length} during a run)`],
    [
      'PostgreSQL kills (SIGKILL of the postmaster, restarted)',
      db.restartable
        ? `${pgKillLog.length} (${pgKillLog.filter((k) => k.runsInFlight > 0).length} during runs; down ${pgKillLog.map((k) => (k.downMs / 1000).toFixed(1)).join(', ') || '-'} s)`
        : 'skipped (BENCH_DATABASE_URL)',
    ],
    ['instances exiting by themselves (restarted by the bench)', `${selfExitLog.length} (${selfExitsPgDown} while PostgreSQL was down)`],
    ['instance starts', sum((i) => i.starts)],
    ['time-outs (answer dropped after the charge)', proxy.stats.timeouts],
    ['Bootpay lookups / answered 5xx', `${proxy.stats.lookups} / ${proxy.stats.lookup5xx}`],
    [
      "Bootpay's webhooks: sent / delivered / attempts",
      bootpayWebhooks
        ? `${bootpayHooks.sent} / ${bootpayHooks.delivered} / ${bootpayHooks.attempts} (instances answered ${JSON.stringify(balancer.stats.byStatus)}; 502 from the balancer: ${balancer.stats.noneUp} none up, ${balancer.stats.noAnswer} no answer)`
        : 'off',
    ],
    ['runs: completed / cut by a kill', `${sum((i) => i.runsCompleted)} / ${sum((i) => i.runsCut)}`],
    [
      'run answers during the chaos',
      Object.entries(runOutcomes)
        .map(([k, v]) => `${k} ${v}`)
        .join(', '),
    ],
    [
      'API changes during chaos and clean runs (cancel at period end / reactivate)',
      Object.entries(mutations)
        .map(([k, v]) => `${k} ${v}`)
        .join(', ') || '-',
    ],
    ['charge_runs rows by status', runsRows.map((r) => `${r.status} ${r.n}`).join(', ')],
    ['payments by status', attemptsRows.map((r) => `${r.status} ${r.n}`).join(', ')],
    ['DONE without a receipt (settled by re-send, no webhook since)', resent],
    ['clean runs', cleanRuns],
    ['still open / still due', `${finalState.open} / ${finalState.due}`],
    ['doubles (subscriptions charged twice at the fake | DONE twice)', `${doubles} (${doublesAtFake} | ${doublesLocal})`],
    ['lost (never charged | charged, not DONE | DONE, not charged)', `${lost} (${neverCharged} | ${chargedNotRecorded} | ${recordedNotCharged})`],
  ];
  if (wh) {
    rows.push(
      [
        'webhook events recorded (outbox)',
        `${wh.recorded} (${Object.entries(wh.byType)
          .map(([k, v]) => `${k} ${v}`)
          .join(', ')}) on ${wh.subscriptionsWithEvents} subscriptions`,
      ],
      ['webhook events delivered (distinct, received)', `${wh.delivered} (${wh.received} requests)`],
      ['webhook duplicates received (allowed: at least once)', wh.duplicates],
      ['webhook events missing (in the outbox, never received)', wh.missing],
      ['webhook sequence gaps (subscriptions) | outbox gaps', `${wh.gaps} | ${wh.outboxGaps}`],
      ['received, not in the outbox | malformed', `${wh.unknown} | ${wh.malformed}`],
      [
        'deliveries to the receiver by status',
        Object.entries(wh.deliveries)
          .map(([k, v]) => `${k} ${v}`)
          .join(', '),
      ],
    );
  }
  rows.push(['time: chaos phase / webhook settle / total', `${chaosSeconds.toFixed(0)} s / ${settleSeconds.toFixed(0)} s / ${totalSeconds.toFixed(0)} s`]);
  lines.push(table(['count', 'value'], rows));
  const webhooksOk =
    !wh ||
    (wh.missing === 0 && wh.gaps === 0 && wh.outboxGaps === 0 && wh.unknown === 0 && (wh.deliveries.pending ?? 0) === 0 && (wh.deliveries.failed ?? 0) === 0);
  const ok = doubles === 0 && lost === 0 && finalState.open === 0 && webhooksOk;
  lines.push(
    `\n${ok ? 'PASS' : 'FAIL'}: ${doubles} doubles, ${lost} lost, ${finalState.open} open` +
      (wh
        ? `; webhooks: ${wh.missing} missing, ${wh.gaps} gaps, ${wh.duplicates} duplicates, ${wh.deliveries.pending ?? 0} pending, ${wh.deliveries.failed ?? 0} given up`
        : ''),
  );
  if (wh && (wh.missingSample.length || wh.gapSample.length)) lines.push(`missing: ${wh.missingSample.join(', ')}\n${wh.gapSample.join('\n')}`);
  const file = writeResults('chaos', {
    at: new Date().toISOString(),
    settings: {
      subs,
      kills,
      pgKills,
      pgKillsWanted,
      pgDownMs,
      restartDelayMs,
      instances: instancesN,
      latencyMs,
      timeoutRate,
      lookup5xxRate,
      bootpayWebhooks,
      webhooks,
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
      pgKills: pgKillLog.length,
      selfExits: selfExitLog.length,
      selfExitsWhilePgDown: selfExitsPgDown,
      timeouts: proxy.stats.timeouts,
      lookups: proxy.stats.lookups,
      lookup5xx: proxy.stats.lookup5xx,
      bootpayWebhooks: bootpayHooks,
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
    webhooks: wh,
    runs: runsRows,
    runOutcomes,
    mutations,
    payments: attemptsRows,
    killLog,
    pgKillLog,
    selfExitLog,
    chaosSeconds,
    settleSeconds,
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

runMain(main, intEnv('CHAOS_TIMEOUT_S', 1800, 30));
