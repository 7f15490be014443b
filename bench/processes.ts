/**
 * The processes the benchmarks start (bench/charge.ts, bench/api.ts, bench/chaos.ts, bench/scale.ts, bench/load.ts,
 * bench/bigtable.ts): Node child processes and the messages of a bench child script, the fake Bootpay, the service's
 * settings for a service process, and a PostgreSQL to make fresh databases on (embedded in a temp dir, or
 * BENCH_DATABASE_URL). Nothing here changes the service.
 */
import { ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client } from 'pg';
import { startEmbeddedPostgres } from '../src/database/embedded-postgres';
import { runMigrations } from '../src/database/database';
import { DIST, FAKE_CREDENTIALS, freePort, log, onCleanup, ROOT, sleep } from './lib';

// ------------------------------------------------------------------------------------------------ child processes

export interface Child {
  proc: ChildProcess;
  /** SIGTERM, then SIGKILL after `graceMs`; resolves when it has exited. */
  stop(graceMs?: number): Promise<void>;
  exited: Promise<number | null>;
}

/** Runs `script` with this Node, its env on top of this process's; stopped at cleanup. */
export function spawnNode(
  script: string,
  args: string[],
  env: Record<string, string>,
  opts: { ipc?: boolean; stdout?: 'inherit' | 'pipe' | 'ignore' | number; nodeArgs?: string[] } = {},
): Child {
  const proc = spawn(process.execPath, [...(opts.nodeArgs ?? []), script, ...args], {
    cwd: ROOT,
    env: { ...process.env, ...env },
    stdio: ['ignore', opts.stdout ?? 'pipe', 'inherit', ...(opts.ipc ? (['ipc'] as const) : [])],
  });
  const exited = new Promise<number | null>((res) => proc.once('exit', (code, signal) => res(code ?? (signal ? 128 : null))));
  const child: Child = {
    proc,
    exited,
    stop: async (graceMs = 5000) => {
      if (proc.exitCode !== null || proc.signalCode !== null) return;
      proc.kill('SIGTERM');
      const t = setTimeout(() => proc.kill('SIGKILL'), graceMs);
      await exited;
      clearTimeout(t);
    },
  };
  onCleanup(() => child.stop(2000));
  return child;
}

const running = new Set<Child>();
process.on('exit', () => {
  for (const c of running) if (c.proc.exitCode === null && c.proc.signalCode === null) c.proc.kill('SIGKILL');
});

/**
 * Kills `c` with SIGKILL if this process exits while `c` still runs, so that none is left behind when the deadline or
 * a signal ends the bench while it is still starting things (cleanup stops what was registered until then).
 */
export function killAtExit<T extends Child>(c: T): T {
  running.add(c);
  void c.exited.then(() => running.delete(c));
  return c;
}

/** Resolves with the first stdout line matching `re` (rejects when the child exits first or after `timeoutMs`). */
export function waitForLine(child: Child, re: RegExp, timeoutMs = 30_000): Promise<RegExpExecArray> {
  return new Promise((res, rej) => {
    let buf = '';
    const stdout = child.proc.stdout;
    if (!stdout) return rej(new Error('child has no piped stdout'));
    const t = setTimeout(() => rej(new Error(`no line matching ${re} within ${timeoutMs} ms`)), timeoutMs);
    const onData = (d: Buffer) => {
      buf += d.toString('utf8');
      const m = re.exec(buf);
      if (m) {
        clearTimeout(t);
        stdout.off('data', onData);
        stdout.resume(); // keep draining
        res(m);
      }
    };
    stdout.on('data', onData);
    void child.exited.then((code) => {
      clearTimeout(t);
      rej(new Error(`child exited (${code}) before printing ${re}`));
    });
  });
}

/** Polls `url` until it answers 2xx (rejects when `child` exits first or after `timeoutMs`). */
export async function waitForHttp(url: string, child: Child, timeoutMs = 60_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  let exited = false;
  void child.exited.then(() => (exited = true));
  for (;;) {
    if (exited) throw new Error(`process exited before ${url} answered`);
    try {
      const res = await fetch(url, { signal: AbortSignal.timeout(2000) });
      await res.arrayBuffer();
      if (res.ok) return;
    } catch {
      /* not yet */
    }
    if (Date.now() > until) throw new Error(`${url} did not answer within ${timeoutMs} ms`);
    await sleep(200);
  }
}

// ------------------------------------------------------------------------------------------------ bench child scripts

/**
 * The body of a bench script started as a child (`--child <options>`): sends what `work` returns as `{result}` (or
 * `{error}`) over IPC, then exits; exits at once when the orchestrator goes away.
 */
export function runChild(work: () => Promise<unknown>, name = 'bench child'): void {
  process.on('disconnect', () => process.exit(1));
  work().then(
    (result) => process.send!({ result }, () => process.exit(0)),
    (err: unknown) => {
      const msg = err instanceof Error ? (err.stack ?? err.message) : String(err);
      process.stderr.write(`${name} failed: ${msg}\n`);
      process.send!({ error: msg }, () => process.exit(1));
    },
  );
}

/**
 * The `{result}` a child started with runChild sends; `onPhase` gets each `{phase}` it sends before. Rejects with the
 * child's `{error}`, or when `label`'s child exits without a result.
 */
export function childResult<T>(c: Child, label: string, onPhase: (phase: string) => void): Promise<T> {
  return new Promise<T>((res, rej) => {
    c.proc.on('message', (m: { phase?: string; result?: T; error?: string }) => {
      if (m.phase) onPhase(m.phase);
      else if (m.result) res(m.result);
      else if (m.error) rej(new Error(m.error));
    });
    void c.exited.then((code) => rej(new Error(`${label} child exited (${code}) without a result`)));
  });
}

// ------------------------------------------------------------------------------------------------ fake Bootpay

export interface FakeProcess {
  url: string;
  apiBaseUrl: string;
  child: Child;
  stop(): Promise<void>;
}

/** The fake Bootpay as its own process (dist/src/fake-bootpay/main.js), on an ephemeral port. */
export async function startFake(latencyMs: number, extraEnv: Record<string, string> = {}): Promise<FakeProcess> {
  const child = spawnNode(join(DIST, 'src', 'fake-bootpay', 'main.js'), [], {
    FAKE_BOOTPAY_PORT: '0',
    FAKE_BOOTPAY_HOST: '127.0.0.1',
    FAKE_BOOTPAY_LATENCY_MS: String(latencyMs),
    ...extraEnv,
  });
  const m = await waitForLine(child, /listening on (http:\/\/[\d.]+:\d+)/);
  const url = m[1];
  return { url, apiBaseUrl: `${url}/v2`, child, stop: () => child.stop() };
}

// ------------------------------------------------------------------------------------------------ service processes

export interface ServiceProcessSettings {
  nodeEnv: 'production' | 'development';
  port: number;
  databaseUrl: string;
  poolSize: number;
  encryptionKey: Buffer;
  fakeApiBaseUrl: string;
  adminKey: string;
  logLevel: string;
}

/**
 * The environment of a service process (bench/server.js, bench/load-server.js) on 127.0.0.1: the fake's credentials,
 * the charge cron off, migrations skipped (the bench's fresh databases are migrated); `extra` adds or overrides.
 */
export function serviceEnv(s: ServiceProcessSettings, extra: Record<string, string> = {}): Record<string, string> {
  return {
    NODE_ENV: s.nodeEnv,
    HOST: '127.0.0.1',
    PORT: String(s.port),
    DATABASE_URL: s.databaseUrl,
    DATABASE_POOL_SIZE: String(s.poolSize),
    BILLING_KEY_ENCRYPTION_KEY: s.encryptionKey.toString('base64'),
    BOOTPAY_CLIENT_KEY: FAKE_CREDENTIALS.clientKey,
    BOOTPAY_SECRET_KEY: FAKE_CREDENTIALS.secretKey,
    BOOTPAY_MODE: 'development',
    BOOTPAY_API_BASE_URL: s.fakeApiBaseUrl,
    ADMIN_API_KEY: s.adminKey,
    CHARGE_RUN_CRON_ENABLED: 'false',
    SKIP_MIGRATIONS: 'true',
    LOG_LEVEL: s.logLevel,
    ...extra,
  };
}

/** A charge run's settings (CHARGE_RUN_*) with as many sockets to Bootpay as it has charges in flight (at least 128). */
export function chargeRunEnv(concurrency: number, batchSize: number, ratePerSecond = 100_000): Record<string, string> {
  return {
    CHARGE_RUN_CONCURRENCY: String(concurrency),
    CHARGE_RUN_RATE_PER_SECOND: String(ratePerSecond),
    CHARGE_RUN_BATCH_SIZE: String(batchSize),
    BOOTPAY_MAX_SOCKETS: String(Math.max(128, concurrency)),
  };
}

// ------------------------------------------------------------------------------------------------ databases

export interface DatabaseServer {
  /** A URL to an existing database of the server, used to create and drop the fresh ones. */
  adminUrl: string;
  embedded: boolean;
  /** A new, migrated, empty database; dropped at cleanup. */
  fresh(label: string): Promise<FreshDatabase>;
  stop(): Promise<void>;
}

export interface FreshDatabase {
  url: string;
  name: string;
  drop(): Promise<void>;
}

/** `url` with its database name replaced by `name`. */
export function withDatabase(url: string, name: string): string {
  const u = new URL(url);
  u.pathname = `/${name}`;
  return u.toString();
}

/** Runs one statement on its own connection (CREATE DATABASE and DROP DATABASE cannot run in a transaction). */
export async function adminQuery(adminUrl: string, sql: string): Promise<void> {
  const c = new Client({ connectionString: adminUrl });
  await c.connect();
  try {
    await c.query(sql);
  } finally {
    await c.end();
  }
}

/** A new database's name, `bench_<label>_<8 hex digits>`. */
export function freshDatabaseName(label: string): string {
  return `bench_${label.replace(/[^a-z0-9_]/gi, '').toLowerCase()}_${randomBytes(4).toString('hex')}`;
}

/** Drops the database `name` once (a second call does nothing), also at cleanup; a failure is only warned of. */
export function dropAtCleanup(adminUrl: string, name: string): () => Promise<void> {
  let dropped = false;
  const drop = async () => {
    if (dropped) return;
    dropped = true;
    await adminQuery(adminUrl, `DROP DATABASE IF EXISTS ${name} WITH (FORCE)`).catch((err: unknown) =>
      console.warn(`dropping a bench database: ${String(err)}`),
    );
  };
  onCleanup(drop);
  return drop;
}

/**
 * With BENCH_DATABASE_URL: that server (fresh databases `bench_<label>_<hex>` are created and dropped there; the role
 * needs CREATEDB). Without: an embedded PostgreSQL (the service's own embedded-postgres) in a temp dir, removed at exit.
 */
export async function startDatabaseServer(): Promise<DatabaseServer> {
  let adminUrl = process.env.BENCH_DATABASE_URL?.trim();
  let embedded = false;
  let stopServer = async () => {};
  if (!adminUrl) {
    embedded = true;
    const dir = mkdtempSync(join(tmpdir(), 'bench-pg-'));
    const port = await freePort();
    log(`starting embedded PostgreSQL in ${dir} on port ${port}`);
    const db = await startEmbeddedPostgres({ dir, port, database: 'bench_admin', persistent: false });
    adminUrl = db.url;
    let stopped = false;
    stopServer = async () => {
      if (stopped) return;
      stopped = true;
      await db.stop().catch((err: unknown) => console.warn(`stopping the embedded PostgreSQL: ${String(err)}`));
      rmSync(dir, { recursive: true, force: true });
    };
    onCleanup(stopServer);
  }
  const server: DatabaseServer = {
    adminUrl,
    embedded,
    stop: stopServer,
    fresh: async (label) => {
      const name = freshDatabaseName(label);
      await adminQuery(adminUrl!, `CREATE DATABASE ${name}`);
      const drop = dropAtCleanup(adminUrl!, name);
      const url = withDatabase(adminUrl!, name);
      await runMigrations(url);
      return { url, name, drop };
    },
  };
  return server;
}
