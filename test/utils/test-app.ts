import { INestApplication } from '@nestjs/common';
import { randomBytes } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client } from 'pg';
import request from 'supertest';
import TestAgent from 'supertest/lib/agent';
import { createApp } from '../../src/app.factory';
import { ApiKeysService } from '../../src/auth/api-keys.service';
import { TestClock } from '../../src/common/clock';
import { JsonLogger } from '../../src/common/json-logger';
import { loadConfig } from '../../src/config/config';
import { FakeBootpayServer } from '../../src/fake-bootpay/fake-bootpay.server';
import { Runtime } from '../../src/config/runtime';

export interface TestApp {
  app: INestApplication;
  http: TestAgent;
  url: string;
  fake: FakeBootpayServer;
  clock: TestClock;
  /** Every log line the service wrote. */
  logs: string[];
  /** A direct connection to this test file's database, for assertions on stored rows. */
  db: Client;
  databaseUrl: string;
  encryptionKey: Buffer;
  adminKey: string;
  serviceKey: string;
  runtime: Runtime;
  close(): Promise<void>;
}

export const T0 = new Date('2026-01-15T01:00:00.000Z');

/** Creates a database cloned from the migrated template; only names this harness made are ever dropped. */
export async function createTestDatabase(): Promise<{ url: string; drop(): Promise<void> }> {
  const adminUrl = process.env.BT_TEST_ADMIN_URL;
  const template = process.env.BT_TEST_TEMPLATE;
  if (!adminUrl || !template) throw new Error('test/global-setup.ts did not run');
  const name = `bt_test_${randomBytes(6).toString('hex')}`;
  const admin = new Client({ connectionString: adminUrl });
  await admin.connect();
  try {
    await admin.query(`CREATE DATABASE ${name} TEMPLATE ${template}`);
  } finally {
    await admin.end();
  }
  const url = new URL(adminUrl);
  url.pathname = `/${name}`;
  return {
    url: url.toString(),
    drop: async () => {
      const a = new Client({ connectionString: adminUrl });
      await a.connect();
      try {
        await a.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      } finally {
        await a.end();
      }
    },
  };
}

/**
 * The real application (same createApp as main.ts) on its own database, with the real Bootpay SDK talking over
 * HTTP to a fake Bootpay on an ephemeral port, and a test clock shared by both.
 */
export async function startTestApp(opts: { env?: Record<string, string>; now?: Date; databaseUrl?: string; encryptionKey?: Buffer } = {}): Promise<TestApp> {
  const database = opts.databaseUrl ? { url: opts.databaseUrl, drop: async () => undefined } : await createTestDatabase();
  const clock = new TestClock();
  clock.set(opts.now ?? T0);
  const fake = new FakeBootpayServer({ now: () => clock.now(), webhookBaseDelayMs: 5 });
  await fake.start(0, '127.0.0.1');
  const logs: string[] = [];
  const config = loadConfig({
    NODE_ENV: 'test',
    DATA_DIR: mkdtempSync(join(tmpdir(), 'billing-test-data-')),
    CHARGE_RUN_CRON_ENABLED: 'false',
    LOG_LEVEL: 'debug',
    // Tests send outbound webhooks by calling the dispatcher, not on a timer.
    OUTBOUND_WEBHOOK_POLL_MS: '0',
    // Trials convert without a recorded consent, except in the tests of that rule (test/consents.e2e-spec.ts turns it on).
    CONSENT_REQUIRED: 'false',
    ...opts.env,
  });
  const encryptionKey = opts.encryptionKey ?? randomBytes(32);
  const runtime: Runtime = {
    config,
    databaseUrl: database.url,
    encryptionKey,
    gateway: {
      clientKey: fake.credentials.clientKey,
      secretKey: fake.credentials.secretKey,
      mode: 'development',
      apiBaseUrl: fake.apiBaseUrl,
      // Generous: on a busy 2-core machine (the browser test, the model test) a short time-out would turn a slow answer
      // into an unknown outcome. Tests that need a lost answer drop it at the fake.
      timeoutMs: 10000,
      chargeTimeoutMs: 10000,
      maxSockets: 64,
    },
    clock,
    logger: new JsonLogger(
      'debug',
      (line) => logs.push(line),
      () => clock.now(),
    ),
    fakeBootpayUrl: fake.url,
  };
  let app: INestApplication;
  try {
    app = await createApp(runtime);
  } catch (err) {
    // A start the service refuses (a test of that) leaves nothing running.
    await fake.stop();
    await database.drop();
    throw err;
  }
  await app.listen(0, '127.0.0.1');
  const address = app.getHttpServer().address() as { port: number };
  // Bootpay's webhooks (feedback_url) come to this app, as they would in a deployment with PUBLIC_BASE_URL.
  config.publicBaseUrl = `http://127.0.0.1:${address.port}`;
  const keys = app.get(ApiKeysService);
  const adminKey = (await keys.create('test admin', 'admin')).key;
  const serviceKey = (await keys.create('test service', 'service')).key;
  const db = new Client({ connectionString: database.url });
  await db.connect();
  return {
    app,
    http: request(app.getHttpServer()),
    url: `http://127.0.0.1:${address.port}`,
    fake,
    clock,
    logs,
    db,
    databaseUrl: database.url,
    encryptionKey,
    adminKey,
    serviceKey,
    runtime,
    close: async () => {
      await db.end();
      await app.close();
      await fake.stop();
      await database.drop();
    },
  };
}

export const bearer = (key: string) => ({ Authorization: `Bearer ${key}` });

/** Row counts of the business tables, to show that a refused request stored nothing. */
export async function tableCounts(db: Client): Promise<Record<string, number>> {
  const tables: { tablename: string }[] = (
    await db.query(
      `SELECT tablename FROM pg_tables WHERE schemaname = 'public' AND tablename NOT IN ('migrations', 'api_keys', 'typeorm_metadata') ORDER BY tablename`,
    )
  ).rows;
  const out: Record<string, number> = {};
  for (const { tablename } of tables) {
    out[tablename] = Number((await db.query(`SELECT count(*)::int AS n FROM "${tablename}"`)).rows[0].n);
  }
  return out;
}
