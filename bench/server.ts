/**
 * The service as one process, like `node dist/src/main.js` (same loadConfig, resolveRuntime, runMigrations, createApp,
 * ensureInitialKeys, listen), for bench:api and chaos: settings come from the environment (DATABASE_URL,
 * BILLING_KEY_ENCRYPTION_KEY, BOOTPAY_* pointing at a fake Bootpay in another process, ADMIN_API_KEY, SERVICE_API_KEY,
 * PORT, ...). Prints `bench-server listening on http://HOST:PORT pid=PID` once it answers, and stops on SIGTERM/SIGINT.
 */
import 'reflect-metadata';
import { createApp } from '../src/app.factory';
import { ApiKeysService } from '../src/auth/api-keys.service';
import { resolveRuntime } from '../src/bootstrap';
import { JsonLogger } from '../src/common/json-logger';
import { ConfigError, loadConfig } from '../src/config/config';
import { runMigrations } from '../src/database/database';
import { appendFileSync } from 'node:fs';
import { QueryCounter } from './lib';

/**
 * With BENCH_SQL_STATS_FILE set, pg's queries are counted; each SIGUSR2 appends the counts since the previous one
 * (round trips, statements, the most frequent statements) as a JSON line to that file and starts counting afresh.
 */
function sqlStats(file: string): void {
  const counter = new QueryCounter();
  counter.install([require('pg')]);
  counter.on = true;
  process.on('SIGUSR2', () => {
    const s = counter.stats;
    const top = [...s.byText.entries()]
      .sort((a, b) => b[1] - a[1])
      .slice(0, 30)
      .map(([sql, calls]) => ({ calls, sql }));
    appendFileSync(file, JSON.stringify({ roundTrips: s.roundTrips, statements: s.statements, byKind: s.byKind, top }) + '\n');
    counter.reset();
  });
}

async function main(): Promise<void> {
  if (process.env.BENCH_SQL_STATS_FILE) sqlStats(process.env.BENCH_SQL_STATS_FILE);
  const config = loadConfig();
  const logger = new JsonLogger(config.logLevel);
  const resolved = await resolveRuntime(config, logger, { startFake: false });
  if (!config.skipMigrations) await runMigrations(resolved.runtime.databaseUrl);
  const app = await createApp(resolved.runtime);
  await app.get(ApiKeysService).ensureInitialKeys({ adminKey: config.adminApiKey, serviceKey: config.serviceApiKey, generateWhenEmpty: false });
  await app.listen(config.port, config.host);
  const shown = config.host === '0.0.0.0' ? '127.0.0.1' : config.host;
  process.stdout.write(`bench-server listening on http://${shown}:${config.port} pid=${process.pid}\n`);
  let stopping = false;
  const shutdown = async () => {
    if (stopping) return;
    stopping = true;
    await app.close().catch((err: unknown) => console.warn(`closing the service: ${String(err)}`));
    await resolved.stop();
    process.exit(0);
  };
  process.once('SIGINT', () => void shutdown());
  process.once('SIGTERM', () => void shutdown());
}

main().catch((err: unknown) => {
  process.stderr.write(`bench-server failed: ${err instanceof ConfigError ? err.message : err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exit(1);
});
