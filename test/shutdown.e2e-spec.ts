import { ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { waitUntil } from './utils/child-run';
import { createPlan, createSubscription, customerWithKey, listPayments, runCharges } from './utils/fixtures';
import { bearer, startTestApp, TestApp } from './utils/test-app';

const SHUTDOWN_TIMEOUT_MS = 10_000;
const ADMIN_KEY = 'bsk_admin_' + 'shutdown'.repeat(4);
const N = 30;

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}

/** `main.ts` in a child process, as `npm start` runs it, on the test app's database and fake Bootpay. */
function spawnService(t: TestApp, port: number, env: Record<string, string>) {
  const root = join(__dirname, '..');
  const child: ChildProcess = spawn(process.execPath, ['-r', 'ts-node/register/transpile-only', 'src/main.ts'], {
    cwd: root,
    env: {
      PATH: process.env.PATH ?? '',
      HOME: process.env.HOME ?? root,
      NODE_ENV: 'test',
      HOST: '127.0.0.1',
      PORT: String(port),
      DATA_DIR: mkdtempSync(join(tmpdir(), 'billing-shutdown-')),
      DATABASE_URL: t.databaseUrl,
      BOOTPAY_CLIENT_KEY: t.fake.credentials.clientKey,
      BOOTPAY_SECRET_KEY: t.fake.credentials.secretKey,
      BOOTPAY_API_BASE_URL: t.fake.apiBaseUrl,
      BILLING_KEY_ENCRYPTION_KEY: t.encryptionKey.toString('hex'),
      ADMIN_API_KEY: ADMIN_KEY,
      CHARGE_RUN_CRON_ENABLED: 'false',
      OUTBOUND_WEBHOOK_POLL_MS: '0',
      LOG_LEVEL: 'info',
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout?.on('data', (c: Buffer) => (out += c.toString('utf8')));
  child.stderr?.on('data', (c: Buffer) => (out += c.toString('utf8')));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null; at: number }>((resolve) => {
    child.once('exit', (code, signal) => resolve({ code, signal, at: Date.now() }));
  });
  return { child, output: () => out, exited };
}

/** Resolves once the service in the child process listens; fails with its output if it ends first. */
async function listening(svc: ReturnType<typeof spawnService>): Promise<void> {
  let exited = false;
  void svc.exited.then(() => (exited = true));
  await waitUntil(
    'the service listens',
    () => {
      if (exited) throw new Error(`the service ended at start:\n${svc.output()}`);
      return svc.output().includes('  API ');
    },
    { timeoutMs: 60_000 },
  );
}

describe('Graceful shutdown: SIGTERM during a charge run', () => {
  let t: TestApp;
  let service: ReturnType<typeof spawnService> | undefined;

  beforeAll(async () => {
    // The service in the child process charges by the system clock: this app starts at the real now.
    t = await startTestApp({ now: new Date() });
  });
  afterAll(async () => {
    if (service && service.child.exitCode === null && service.child.signalCode === null) service.child.kill('SIGKILL');
    t.fake.setFaults({});
    await t.fake.webhooksIdle();
    await t.close();
  });

  it('should stop claiming, record every charge it sent, exit within SHUTDOWN_TIMEOUT_MS, and leave the rest to the next run', async () => {
    const plan = await createPlan(t, { amount: 11000 });
    const ids: string[] = [];
    for (let i = 0; i < N; i += 10) {
      const batch = await Promise.all(
        Array.from({ length: Math.min(10, N - i) }, async () => {
          const c = await customerWithKey(t);
          return (await createSubscription(t, { customer_id: c.customer.id, plan_id: plan.id, billing_key_id: c.key.id })) as { id: string };
        }),
      );
      ids.push(...batch.map((s) => s.id));
    }
    const firstCharges = t.fake.ledger().charges.length;
    // Their renewal falls due now, in real time.
    await t.db.query(`UPDATE subscriptions SET next_charge_at = now() - interval '1 minute' WHERE id = ANY($1)`, [ids]);
    const renewalsAtFake = () => t.fake.ledger().charges.slice(firstCharges);

    const port = await freePort();
    service = spawnService(t, port, { SHUTDOWN_TIMEOUT_MS: String(SHUTDOWN_TIMEOUT_MS), CHARGE_RUN_CONCURRENCY: '3', CHARGE_RUN_BATCH_SIZE: '6' });
    const svc = service;
    await listening(svc);

    // Batches of 6, 3 at a time, 300 ms each at Bootpay: the run is mid-way when the signal comes.
    t.fake.setFaults({ latency_ms: 300 });
    const started = await fetch(`http://127.0.0.1:${port}/v1/charge-runs`, {
      method: 'POST',
      headers: { ...bearer(ADMIN_KEY), 'Content-Type': 'application/json' },
      body: '{}',
    });
    expect(started.status).toBe(202);
    const runId = ((await started.json()) as { id: string }).id;
    await waitUntil('the run has made 7 charges', () => renewalsAtFake().length >= 7, { intervalMs: 5 });

    const signalledAt = Date.now();
    svc.child.kill('SIGTERM');
    const end = await svc.exited;
    expect({ code: end.code, signal: end.signal }).toEqual({ code: 0, signal: null });
    expect(end.at - signalledAt).toBeLessThan(SHUTDOWN_TIMEOUT_MS);
    t.fake.setFaults({});

    // Every attempt it sent has its outcome: nothing is left open, and each charge at Bootpay is a DONE payment.
    const rows = (await t.db.query(`SELECT order_id, status FROM payments WHERE charge_run_id = $1`, [runId])).rows as { order_id: string; status: string }[];
    expect(rows.filter((r) => r.status !== 'DONE')).toEqual([]);
    expect(rows.map((r) => r.order_id).sort()).toEqual(
      renewalsAtFake()
        .map((c) => c.order_id)
        .sort(),
    );
    expect(rows.length).toBeGreaterThanOrEqual(7);
    expect(rows.length).toBeLessThan(N);
    const open = await t.db.query(`SELECT count(*)::int AS n FROM payments WHERE status IN ('IN_PROGRESS', 'UNKNOWN')`);
    expect(open.rows[0].n).toBe(0);

    // The run says it was interrupted, with its counts.
    const run = await t.http.get(`/v1/charge-runs/${runId}`).set(bearer(t.adminKey));
    expect(run.body).toMatchObject({ status: 'interrupted', counts: expect.objectContaining({ due: rows.length, charged: rows.length, unknown: 0 }) });
    expect(run.body.finished_at).not.toBeNull();
    expect(svc.output()).toContain('charge run interrupted by a shutdown');
    // A quiet start at info: no line per module or mapped route.
    expect(svc.output()).toContain('Nest application successfully started');
    expect(svc.output()).not.toMatch(/Mapped \{|dependencies initialized/);

    // A normal next run charges the rest, and nothing twice.
    t.clock.set(new Date());
    const next = await runCharges(t);
    expect(next).toMatchObject({
      status: 'completed',
      counts: expect.objectContaining({ due: N - rows.length, charged: N - rows.length, resolved: 0, unknown: 0 }),
    });
    const renewals = renewalsAtFake().map((c) => c.order_id);
    expect(renewals).toHaveLength(N);
    expect(new Set(renewals).size).toBe(N);
    for (const id of ids) {
      const paid = (await listPayments(t, id)).filter((p) => p.period.index === 1);
      expect(paid.map((p) => p.status)).toEqual(['DONE']);
    }
  });
});

describe('Graceful shutdown: a reconciliation run cut off', () => {
  let t: TestApp;
  let service: ReturnType<typeof spawnService> | undefined;

  beforeAll(async () => {
    t = await startTestApp({ now: new Date() });
    const plan = await createPlan(t, { amount: 11000 });
    // Approved payments in the window, so that the run has lookups to make at Bootpay.
    for (let i = 0; i < 24; i++) {
      const c = await customerWithKey(t);
      await createSubscription(t, { customer_id: c.customer.id, plan_id: plan.id, billing_key_id: c.key.id });
    }
  });
  afterEach(() => {
    if (service && service.child.exitCode === null && service.child.signalCode === null) service.child.kill('SIGKILL');
    t.fake.setFaults({});
  });
  afterAll(async () => {
    await t.fake.webhooksIdle();
    await t.close();
  });

  async function startedService() {
    const port = await freePort();
    const svc = spawnService(t, port, { SHUTDOWN_TIMEOUT_MS: String(SHUTDOWN_TIMEOUT_MS) });
    service = svc;
    await listening(svc);
    // 500 ms a lookup, 8 at a time: the run is still looking up when the signal comes.
    t.fake.setFaults({ latency_ms: 500 });
    const started = await fetch(`http://127.0.0.1:${port}/v1/reports/reconciliation/runs`, {
      method: 'POST',
      headers: { ...bearer(ADMIN_KEY), 'Content-Type': 'application/json' },
      body: '{}',
    });
    expect(started.status).toBe(202);
    const run = (await started.json()) as { id: string; status: string };
    expect(run.status).toBe('running');
    await waitUntil('the run is looking up receipts', () => t.fake.stats().requests > requestsBefore, { intervalMs: 5 });
    return { svc, runId: run.id };
  }
  let requestsBefore = 0;
  const runOf = async (id: string) => (await t.http.get(`/v1/reports/reconciliation/runs/${id}`).set(bearer(t.adminKey))).body;

  it('should end the run failed with the reason on SIGTERM, not leave it running, and exit in time', async () => {
    requestsBefore = t.fake.stats().requests;
    const { svc, runId } = await startedService();
    const signalledAt = Date.now();
    svc.child.kill('SIGTERM');
    const end = await svc.exited;
    expect({ code: end.code, signal: end.signal }).toEqual({ code: 0, signal: null });
    expect(end.at - signalledAt).toBeLessThan(SHUTDOWN_TIMEOUT_MS);
    expect(await runOf(runId)).toMatchObject({
      status: 'failed',
      error: expect.stringContaining('interrupted by a shutdown'),
      finished_at: expect.any(String),
    });
  });

  it('should mark a run left running by a killed process failed when the next run starts, once it is 6 hours old, and not before', async () => {
    requestsBefore = t.fake.stats().requests;
    const { svc, runId } = await startedService();
    svc.child.kill('SIGKILL');
    await svc.exited;
    t.fake.setFaults({});
    expect(await runOf(runId)).toMatchObject({ status: 'running' });

    t.clock.set(new Date(Date.now() + 5 * 3600_000));
    expect((await t.http.post('/v1/reports/reconciliation/runs').set(bearer(t.adminKey)).send({ wait: true })).body.status).toBe('completed');
    expect(await runOf(runId)).toMatchObject({ status: 'running' });

    t.clock.set(new Date(Date.now() + 6 * 3600_000 + 60_000));
    expect((await t.http.post('/v1/reports/reconciliation/runs').set(bearer(t.adminKey)).send({ wait: true })).body.status).toBe('completed');
    expect(await runOf(runId)).toMatchObject({ status: 'failed', error: expect.stringContaining('no result was recorded within 6 hours') });
  });
});
