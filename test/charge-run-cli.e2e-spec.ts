import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { createPlan, createSubscription, customerWithKey } from './utils/fixtures';
import { startTestApp, TestApp } from './utils/test-app';

/**
 * `npm run charge-run` as an operator runs it, in a child process against the test app's database and fake Bootpay.
 * The CLI uses the system clock: subscriptions created at the test clock's T0 (in the past) are due.
 */
async function chargeRunCli(t: TestApp, args: string[] = [], env: Record<string, string> = {}): Promise<{ code: number | null; out: string }> {
  const root = join(__dirname, '..');
  const child = spawn(process.execPath, ['-r', 'ts-node/register/transpile-only', 'src/cli.ts', 'charge-run', ...args], {
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
  const code = await new Promise<number | null>((resolve) => child.once('exit', (c) => resolve(c)));
  return { code, out };
}

describe('npm run charge-run: exit codes and the failures it names', () => {
  let t: TestApp;

  beforeEach(async () => {
    t = await startTestApp();
  });
  afterEach(async () => {
    await t.fake.webhooksIdle();
    await t.close();
  });

  async function subscribe(card: Record<string, string> = {}) {
    const plan = await createPlan(t);
    const { customer, key } = await customerWithKey(t, card);
    return createSubscription(t, { customer_id: customer.id, plan_id: plan.id, billing_key_id: key.id });
  }

  it('should exit 0 when every due subscription was charged or declined, naming the declined one', async () => {
    await subscribe();
    const declining = await subscribe({ card_no: '4111110000002051' }); // approved once, then declined
    const { code, out } = await chargeRunCli(t);
    expect(out).toMatch(/Declined: 1/);
    expect(out).toContain(`subscription ${declining.id}`);
    expect(out).toMatch(/F051|잔액부족|RC_CONFIRM_FAILED/);
    expect(out).not.toMatch(/Needs attention/);
    expect(code).toBe(0);
  }, 60_000);

  it('should exit 3 when an outcome is unknown, and name the subscription; --json lists every failure', async () => {
    const sub = await subscribe();
    t.fake.setFaults({ timeout_after_charge: { count: 1, mode: 'drop' } });
    const { code, out } = await chargeRunCli(t, ['--json']);
    expect(code).toBe(3);
    const report = JSON.parse(out.trim().split('\n').pop()!);
    expect(report.exit_code).toBe(3);
    expect(report.run.status).toBe('completed');
    expect(report.failures).toEqual([expect.objectContaining({ subscription_id: sub.id, kind: 'unknown', status: 'UNKNOWN' })]);
  }, 60_000);

  it('should exit 3 when attempts were aborted with nothing charged (Bootpay refused the credentials)', async () => {
    const sub = await subscribe();
    const { code, out } = await chargeRunCli(t, [], { BOOTPAY_SECRET_KEY: 'sk_wrong_secret' });
    expect(out).toMatch(/Needs attention \(unknown outcome or nothing charged\): 1/);
    expect(out).toContain(`subscription ${sub.id}`);
    expect(out).toMatch(/aborted/);
    expect(code).toBe(3);
  }, 60_000);

  it('should exit 4 when the run failed: a billing key it cannot decrypt is a local fault, never a decline, and nothing is sent', async () => {
    const good = await subscribe();
    const broken = await subscribe();
    // The broken key's row holds a ciphertext made for another row: this instance cannot decrypt it.
    await t.db.query(`UPDATE billing_keys SET billing_key_ciphertext = (SELECT billing_key_ciphertext FROM billing_keys WHERE id = $1) WHERE id = $2`, [
      good.billing_key_id,
      broken.billing_key_id,
    ]);
    const { code, out } = await chargeRunCli(t, ['--json']);
    expect(code).toBe(4);
    const report = JSON.parse(out.trim().split('\n').pop()!);
    expect(report.run.status).toBe('failed');
    expect(report.run.error).toMatch(/BILLING_KEY_ENCRYPTION_KEY/);
    expect(report.failures).toEqual(expect.arrayContaining([expect.objectContaining({ subscription_id: broken.id })]));
    const [row] = (await t.db.query(`SELECT status, dunning_attempts FROM subscriptions WHERE id = $1`, [broken.id])).rows;
    expect(row).toEqual({ status: 'active', dunning_attempts: 0 });
    expect(t.fake.ledger().failed_charges).toEqual([]);
  }, 60_000);
});
