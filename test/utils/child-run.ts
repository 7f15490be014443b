import { ChildProcess, spawn } from 'node:child_process';
import { join } from 'node:path';
import { TestApp } from './test-app';

export interface ChildChargeRun {
  child: ChildProcess;
  /** Everything the CLI wrote so far (stdout and stderr). */
  output(): string;
  /** Resolves when the process has exited, however it ended. */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/**
 * `cli.ts charge-run` in a child process, as an operator would start it, against the test app's database and fake
 * Bootpay. The CLI uses the system clock (not t.clock): what it charges must be due in real time.
 */
export function spawnChargeRun(t: TestApp, env: Record<string, string> = {}): ChildChargeRun {
  const root = join(__dirname, '..', '..');
  const child = spawn(process.execPath, ['-r', 'ts-node/register/transpile-only', 'src/cli.ts', 'charge-run'], {
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
      LOG_LEVEL: 'warn',
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout?.on('data', (c: Buffer) => (out += c.toString('utf8')));
  child.stderr?.on('data', (c: Buffer) => (out += c.toString('utf8')));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.once('exit', (code, signal) => resolve({ code, signal }));
  });
  return { child, output: () => out, exited };
}

/** Polls `check` (every `intervalMs`, default 20) until it answers true; fails after `timeoutMs` naming `what`. */
export async function waitUntil(what: string, check: () => boolean | Promise<boolean>, opts: { intervalMs?: number; timeoutMs?: number } = {}): Promise<void> {
  const deadline = Date.now() + (opts.timeoutMs ?? 30_000);
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}`);
    await new Promise((r) => setTimeout(r, opts.intervalMs ?? 20));
  }
}
