import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { waitUntil } from './utils/child-run';
import { createPlan, createSubscription, customerWithKey } from './utils/fixtures';
import { startTestApp, TestApp } from './utils/test-app';

interface Cli {
  child: ReturnType<typeof spawn>;
  output(): string;
  exited: Promise<number | null>;
}

/** `npm run cli -- <args>` in a child process, on the test app's database and fake Bootpay. */
function cli(t: TestApp, args: string[], env: Record<string, string> = {}): Cli {
  const root = join(__dirname, '..');
  const [file, argv] = env.CLI_COMMAND
    ? ['script', ['-qec', env.CLI_COMMAND, '/dev/null']]
    : [process.execPath, ['-r', 'ts-node/register/transpile-only', 'src/cli.ts', ...args]];
  const child = spawn(file, argv, {
    cwd: root,
    env: {
      PATH: process.env.PATH ?? '',
      HOME: process.env.HOME ?? root,
      NODE_ENV: 'test',
      DATABASE_URL: t.databaseUrl,
      BOOTPAY_CLIENT_KEY: t.fake.credentials.clientKey,
      BOOTPAY_SECRET_KEY: t.fake.credentials.secretKey,
      BOOTPAY_API_BASE_URL: t.fake.apiBaseUrl,
      BILLING_KEY_ENCRYPTION_KEY: t.encryptionKey.toString('hex'),
      LOG_LEVEL: 'error',
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout.on('data', (c: Buffer) => (out += c.toString('utf8')));
  child.stderr.on('data', (c: Buffer) => (out += c.toString('utf8')));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return { child, output: () => out, exited };
}

async function run(t: TestApp, args: string[], env: Record<string, string> = {}) {
  const c = cli(t, args, env);
  const code = await c.exited;
  return { code, out: c.output() };
}

describe('npm run cli: commands, --help, --json and exit codes', () => {
  let t: TestApp;

  beforeAll(async () => {
    t = await startTestApp({ now: new Date() });
  });
  afterAll(async () => {
    t.fake.setFaults({});
    await t.fake.webhooksIdle();
    await t.close();
  });

  it('should show help for the CLI and for each command (exit 0), and refuse wrong usage with exit 2', async () => {
    const all = await run(t, ['--help']);
    expect(all.code).toBe(0);
    for (const command of [
      'migrate',
      'api-keys:create',
      'api-keys:list',
      'api-keys:revoke',
      'charge-run',
      'reconcile',
      'operators:create',
      'operators:list',
      'operators:reset-password',
    ]) {
      expect(all.out).toContain(command);
    }
    const chargeRun = await run(t, ['charge-run', '--help']);
    expect(chargeRun.code).toBe(0);
    expect(chargeRun.out).toMatch(/--json/);
    expect(chargeRun.out).toMatch(/--no-progress/);
    expect(chargeRun.out).toMatch(/3 when unknown outcomes/);
    const create = await run(t, ['api-keys:create', '--help']);
    expect(create.out).toMatch(/--role <role>/);

    expect((await run(t, ['no-such-command'])).code).toBe(2);
    expect((await run(t, ['charge-run', '--no-such-option'])).code).toBe(2);
    const badRole = await run(t, ['api-keys:create', '--role', 'root', '--name', 'x']);
    expect(badRole.code).toBe(2);
    expect(badRole.out).toMatch(/admin/);
    const noName = await run(t, ['api-keys:create', '--role', 'admin']);
    expect(noName.code).toBe(2);
    expect(noName.out).toContain('api-keys:create needs --role admin|service and --name');
    expect((await run(t, ['api-keys:revoke'])).code).toBe(2);
    // Nine child processes, each loading the whole service through ts-node: minutes on a loaded 2-core machine.
  }, 300_000);

  it('should answer --json with one object per line, and create, list and revoke a key', async () => {
    const created = await run(t, ['api-keys:create', '--role', 'service', '--name', 'cli test', '--json']);
    expect(created.code).toBe(0);
    const key = JSON.parse(created.out.trim()) as { id: string; role: string; name: string; key: string };
    expect(key).toMatchObject({ role: 'service', name: 'cli test' });
    expect(key.key).toMatch(/^bsk_svc_/);

    const listed = await run(t, ['api-keys:list', '--json']);
    expect(listed.code).toBe(0);
    const keys = listed.out
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { id: string; name: string; revoked_at: string | null });
    expect(keys).toEqual(expect.arrayContaining([expect.objectContaining({ id: key.id, name: 'cli test', revoked_at: null })]));
    expect(listed.out).not.toContain(key.key);

    const revoked = await run(t, ['api-keys:revoke', key.id, '--json']);
    expect(revoked.code).toBe(0);
    expect(JSON.parse(revoked.out.trim())).toEqual({ id: key.id, revoked: true });
    const again = await run(t, ['api-keys:revoke', key.id, '--json']);
    expect(again.code).toBe(1);
    expect(JSON.parse(again.out.trim())).toEqual({ id: key.id, revoked: false });

    const migrate = await run(t, ['migrate', '--json']);
    expect(migrate.code).toBe(0);
    expect(JSON.parse(migrate.out.trim())).toEqual({ applied: [] });
  }, 120_000);

  it('should stop a charge run on SIGTERM: no more claims, every charge sent recorded, the run interrupted, exit 4', async () => {
    const plan = await createPlan(t, { amount: 11000 });
    const ids: string[] = [];
    for (let i = 0; i < 20; i++) {
      const c = await customerWithKey(t);
      ids.push(((await createSubscription(t, { customer_id: c.customer.id, plan_id: plan.id, billing_key_id: c.key.id })) as { id: string }).id);
    }
    const before = t.fake.ledger().charges.length;
    await t.db.query(`UPDATE subscriptions SET next_charge_at = now() - interval '1 minute' WHERE id = ANY($1)`, [ids]);
    t.fake.setFaults({ latency_ms: 300 });
    const c = cli(t, ['charge-run'], { CHARGE_RUN_CONCURRENCY: '2', CHARGE_RUN_BATCH_SIZE: '4' });
    let ended = false;
    void c.exited.then(() => (ended = true));
    await waitUntil(
      'the CLI has made 4 charges',
      () => {
        if (ended) throw new Error(`the CLI ended before the signal:\n${c.output()}`);
        return t.fake.ledger().charges.length - before >= 4;
      },
      { intervalMs: 5 },
    );
    c.child.kill('SIGTERM');
    expect(await c.exited).toBe(4);
    t.fake.setFaults({});
    expect(c.output()).toMatch(/Run interrupted/);
    // Progress without a terminal: a line of counts per batch.
    expect(c.output()).toMatch(/ {2}due \d+ {2}charged \d+/);

    const [runRow] = (await t.db.query(`SELECT id, status, due, charged FROM charge_runs WHERE trigger = 'cli' ORDER BY started_at DESC LIMIT 1`)).rows;
    expect(runRow.status).toBe('interrupted');
    const rows = (await t.db.query(`SELECT order_id, status FROM payments WHERE charge_run_id = $1`, [runRow.id])).rows as {
      order_id: string;
      status: string;
    }[];
    expect(rows.every((r) => r.status === 'DONE')).toBe(true);
    expect(rows.map((r) => r.order_id).sort()).toEqual(
      t.fake
        .ledger()
        .charges.slice(before)
        .map((x) => x.order_id)
        .sort(),
    );
    expect(rows.length).toBeLessThan(20);
    expect(runRow).toMatchObject({ due: rows.length, charged: rows.length });

    // The next run charges the rest.
    const next = await run(t, ['charge-run', '--json']);
    expect(next.code).toBe(0);
    const report = JSON.parse(next.out.trim().split('\n').pop()!);
    expect(report.run).toMatchObject({ status: 'completed', counts: expect.objectContaining({ due: 20 - rows.length, charged: 20 - rows.length }) });
    expect(t.fake.ledger().charges.length - before).toBe(20);
  }, 120_000);

  it('should draw a progress bar when run on a terminal', async () => {
    const plan = await createPlan(t, { amount: 11000 });
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) {
      const c = await customerWithKey(t);
      ids.push(((await createSubscription(t, { customer_id: c.customer.id, plan_id: plan.id, billing_key_id: c.key.id })) as { id: string }).id);
    }
    await t.db.query(`UPDATE subscriptions SET next_charge_at = now() - interval '1 minute' WHERE id = ANY($1)`, [ids]);
    // script(1) gives the CLI a pseudo-terminal, as an operator's shell would.
    const command = `${process.execPath} -r ts-node/register/transpile-only src/cli.ts charge-run`;
    const { code, out } = await run(t, [], { CLI_COMMAND: command });
    expect(code).toBe(0);
    expect(out).toMatch(/[\u2588\u2591]+ 3\/3 claimed \| charged 3 {2}failed 0 {2}unknown 0/);
    expect(out).not.toMatch(/ {2}due \d+ {2}charged/);
    expect(out).toMatch(/Run completed \(exit code 0\)/);
  }, 120_000);
});
