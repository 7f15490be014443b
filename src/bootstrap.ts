import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { randomBytes } from 'node:crypto';
import { Socket } from 'node:net';
import { AppConfig, parseEncryptionKey } from './config/config';
import { Clock, SystemClock, TestClock } from './common/clock';
import { JsonLogger } from './common/json-logger';
import { startEmbeddedPostgres } from './database/embedded-postgres';
import { DEFAULT_FAKE_CREDENTIALS, FakeBootpayServer } from './fake-bootpay/fake-bootpay.server';
import { Runtime } from './config/runtime';
import type { INestApplication } from '@nestjs/common';
import { OperatorsService } from './operators/operators.service';

export interface ResolvedRuntime {
  runtime: Runtime;
  embeddedDatabase: boolean;
  fake?: FakeBootpayServer;
  /** Stops what this process started (embedded PostgreSQL, fake Bootpay). */
  stop(): Promise<void>;
}

function portAnswers(port: number): Promise<boolean> {
  return new Promise((res) => {
    const s = new Socket();
    s.setTimeout(500);
    s.once('connect', () => {
      s.destroy();
      res(true);
    });
    s.once('error', () => res(false));
    s.once('timeout', () => {
      s.destroy();
      res(false);
    });
    s.connect(port, '127.0.0.1');
  });
}

/**
 * Resolves what the settings leave open: with no DATABASE_URL an embedded PostgreSQL (data in DATA_DIR, kept across
 * restarts), with no encryption key one generated beside it, with no Bootpay credentials the fake Bootpay in this
 * process. Production settings were already checked to name all three (loadConfig).
 */
export async function resolveRuntime(
  config: AppConfig,
  logger: JsonLogger,
  opts: { startFake?: boolean; clock?: Clock; useRunningFake?: boolean } = {},
): Promise<ResolvedRuntime> {
  const stops: (() => Promise<void>)[] = [];
  const dataDir = resolve(config.dataDir);
  const clock = opts.clock ?? (config.nodeEnv === 'production' ? new SystemClock() : new TestClock());

  let databaseUrl = config.databaseUrl;
  let embeddedDatabase = false;
  if (!databaseUrl) {
    embeddedDatabase = true;
    const pgDir = join(dataDir, 'postgres');
    const passwordFile = join(pgDir, '.password');
    if (existsSync(join(pgDir, 'postmaster.pid')) && existsSync(passwordFile) && (await portAnswers(config.embeddedPostgresPort))) {
      // Another process of this project (the server, or a CLI) already runs the embedded database: share it.
      const password = readFileSync(passwordFile, 'utf8').trim();
      databaseUrl = `postgres://postgres:${encodeURIComponent(password)}@127.0.0.1:${config.embeddedPostgresPort}/billing`;
    } else {
      logger.log({ message: 'starting embedded PostgreSQL', dir: pgDir, port: config.embeddedPostgresPort }, 'Bootstrap');
      const db = await startEmbeddedPostgres({ dir: pgDir, port: config.embeddedPostgresPort, database: 'billing', persistent: true });
      databaseUrl = db.url;
      stops.push(() => db.stop());
    }
  }

  let encryptionKey = config.encryptionKey;
  if (!encryptionKey) {
    const keyFile = join(dataDir, 'encryption.key');
    mkdirSync(dataDir, { recursive: true });
    if (!existsSync(keyFile)) writeFileSync(keyFile, randomBytes(32).toString('base64') + '\n', { mode: 0o600 });
    encryptionKey = parseEncryptionKey(readFileSync(keyFile, 'utf8').trim(), keyFile);
    logger.warn(
      { message: 'BILLING_KEY_ENCRYPTION_KEY is not set: using a key generated for this machine; set one before storing real billing keys', key_file: keyFile },
      'Bootstrap',
    );
  }

  let gateway: Runtime['gateway'];
  let fake: FakeBootpayServer | undefined;
  let fakeBootpayUrl: string | undefined;
  const b = config.bootpay;
  if (b.credentials) {
    gateway = {
      ...b.credentials,
      mode: b.mode,
      apiBaseUrl: b.apiBaseUrl,
      timeoutMs: b.timeoutMs,
      chargeTimeoutMs: b.chargeTimeoutMs,
      maxSockets: b.maxSockets,
    };
  } else if (opts.useRunningFake) {
    // A CLI next to a running service: use that service's fake Bootpay, which holds the billing keys.
    if (!(await portAnswers(config.fakeBootpayPort))) {
      throw new Error(`no fake Bootpay answers on port ${config.fakeBootpayPort}: start the service first (npm start), or set Bootpay credentials`);
    }
    fakeBootpayUrl = `http://127.0.0.1:${config.fakeBootpayPort}`;
    gateway = {
      ...DEFAULT_FAKE_CREDENTIALS,
      mode: 'development',
      apiBaseUrl: `${fakeBootpayUrl}/v2`,
      timeoutMs: b.timeoutMs,
      chargeTimeoutMs: b.chargeTimeoutMs,
      maxSockets: b.maxSockets,
    };
  } else {
    if (config.nodeEnv === 'production') throw new Error('the fake Bootpay is never used in production');
    fake = new FakeBootpayServer({ now: () => clock.now() });
    fakeBootpayUrl = await fake.start(opts.startFake === false ? 0 : config.fakeBootpayPort, '127.0.0.1');
    const started = fake;
    stops.push(() => started.stop());
    gateway = {
      clientKey: fake.credentials.clientKey,
      secretKey: fake.credentials.secretKey,
      mode: 'development',
      apiBaseUrl: fake.apiBaseUrl,
      timeoutMs: b.timeoutMs,
      chargeTimeoutMs: b.chargeTimeoutMs,
      maxSockets: b.maxSockets,
    };
  }

  return {
    runtime: { config, databaseUrl, encryptionKey, gateway, clock, logger, fakeBootpayUrl },
    embeddedDatabase,
    fake,
    stop: async () => {
      // Each is stopped even when another fails; a failure is logged, and the process goes on stopping.
      for (const s of stops.reverse()) {
        await s().catch((err: unknown) =>
          logger.error({ message: 'could not stop what this process started', error: err instanceof Error ? err.message : String(err) }, 'Bootstrap'),
        );
      }
    },
  };
}

/**
 * The console's lines of the start-up banner. The first start on the embedded (development) database creates one
 * finance operator and keeps its email and password in DATA_DIR/initial-operator.json (mode 0600), like the first API
 * keys, so every start can print them, as long as that password still signs in (it is not printed once changed).
 */
export async function consoleStartLines(app: INestApplication, config: AppConfig, embeddedDatabase: boolean, base: string): Promise<string[]> {
  const lines = [`  Console    ${base}/console`];
  const operators = app.get(OperatorsService);
  if (!embeddedDatabase) {
    if (!(await operators.list()).length) lines.push('  Operators  create one with: npm run cli -- operators:create --email you@example.com --role finance');
    return lines;
  }
  const file = join(resolve(config.dataDir), 'initial-operator.json');
  const created = await operators.ensureInitialOperator();
  if (created) {
    mkdirSync(resolve(config.dataDir), { recursive: true });
    writeFileSync(file, JSON.stringify(created, null, 2) + '\n', { mode: 0o600 });
  }
  if (existsSync(file)) {
    const known = JSON.parse(readFileSync(file, 'utf8')) as { email?: string; password?: string };
    if (known.email && known.password && (await operators.passwordStillValid(known.email, known.password))) {
      lines.push(`  Operator   ${known.email}  password ${known.password}  (finance; sign in at ${base}/console)`);
    }
  }
  return lines;
}
