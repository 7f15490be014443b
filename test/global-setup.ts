import { mkdtempSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client } from 'pg';
import { runMigrations } from '../src/database/database';
import { startEmbeddedPostgres } from '../src/database/embedded-postgres';

function freePort(): Promise<number> {
  return new Promise((res, rej) => {
    const s = createServer();
    s.once('error', rej);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => res(port));
    });
  });
}

/**
 * Tests run on a real PostgreSQL: TEST_DATABASE_URL when given (any database on the server to use), otherwise an
 * embedded PostgreSQL started here in a temporary folder. Migrations run once into a template database; each test
 * file gets its own database cloned from it (see test/utils/test-app.ts).
 */
export default async function globalSetup(): Promise<void> {
  let adminUrl: string;
  if (process.env.TEST_DATABASE_URL) {
    adminUrl = process.env.TEST_DATABASE_URL;
  } else {
    const dir = mkdtempSync(join(tmpdir(), 'billing-test-pg-'));
    const db = await startEmbeddedPostgres({ dir, port: await freePort(), database: 'postgres', persistent: false });
    (globalThis as { __embeddedPg?: { stop(): Promise<void> } }).__embeddedPg = db;
    adminUrl = db.url;
  }
  const template = `bt_template_${process.pid}`;
  const admin = new Client({ connectionString: adminUrl });
  await admin.connect();
  try {
    await admin.query(`DROP DATABASE IF EXISTS ${template}`);
    await admin.query(`CREATE DATABASE ${template}`);
  } finally {
    await admin.end();
  }
  const templateUrl = new URL(adminUrl);
  templateUrl.pathname = `/${template}`;
  await runMigrations(templateUrl.toString());
  process.env.BT_TEST_ADMIN_URL = adminUrl;
  process.env.BT_TEST_TEMPLATE = template;
}
