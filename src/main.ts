import 'reflect-metadata';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { createApp } from './app.factory';
import { ApiKeysService } from './auth/api-keys.service';
import { consoleStartLines, resolveRuntime } from './bootstrap';
import { ConfigError, loadConfig } from './config/config';
import { JsonLogger } from './common/json-logger';
import { runMigrations } from './database/database';

async function main(): Promise<void> {
  let config;
  try {
    config = loadConfig();
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`${err.message}\n`);
      process.exit(1);
    }
    throw err;
  }
  const logger = new JsonLogger(config.logLevel);
  const resolved = await resolveRuntime(config, logger);
  const { runtime } = resolved;
  if (!config.skipMigrations) await runMigrations(runtime.databaseUrl, (m) => logger.log(m, 'Migrations'));

  const app = await createApp(runtime);
  const generated = await app.get(ApiKeysService).ensureInitialKeys({
    adminKey: config.adminApiKey,
    serviceKey: config.serviceApiKey,
    generateWhenEmpty: resolved.embeddedDatabase,
  });
  // The embedded default keeps the keys it generated beside its data, so every start can print them.
  const keyFile = join(resolve(config.dataDir), 'initial-api-keys.json');
  if (generated.admin || generated.service) writeFileSync(keyFile, JSON.stringify(generated, null, 2) + '\n', { mode: 0o600 });
  const known: { admin?: string; service?: string } = resolved.embeddedDatabase && existsSync(keyFile) ? JSON.parse(readFileSync(keyFile, 'utf8')) : {};

  await app.listen(config.port, config.host);
  const shown = config.host === '0.0.0.0' ? '127.0.0.1' : config.host;
  const base = `http://${shown}:${config.port}`;
  // The in-process fake delivers its webhooks (as Bootpay's admin-configured URL would) to this service.
  resolved.fake?.setWebhookUrl(`${base}/v1/webhooks/bootpay`);
  const lines = [
    '',
    `  API        ${base}/v1`,
    config.docsEnabled ? `  Docs       ${base}/docs   (OpenAPI JSON: ${base}/docs/openapi.json)` : '  Docs       off (DOCS_ENABLED=false)',
    `  Health     ${base}/health`,
    `  Database   ${resolved.embeddedDatabase ? `embedded PostgreSQL in ${resolve(config.dataDir, 'postgres')}` : 'DATABASE_URL'}`,
    `  Bootpay    ${runtime.fakeBootpayUrl ? `fake Bootpay at ${runtime.fakeBootpayUrl} (control API: ${runtime.fakeBootpayUrl}/__fake/ledger)` : `Bootpay (${config.bootpay.mode})`}`,
  ];
  const admin = config.adminApiKey ? '(ADMIN_API_KEY)' : known.admin;
  const service = config.serviceApiKey ? '(SERVICE_API_KEY)' : known.service;
  if (admin) lines.push(`  Admin key   ${admin}`);
  if (service) lines.push(`  Service key ${service}`);
  if (!admin && !service) lines.push('  API keys   create one with: npm run cli -- api-keys:create --role admin --name finance');
  lines.push(...(await consoleStartLines(app, config, resolved.embeddedDatabase, base)));
  process.stdout.write(lines.join('\n') + '\n\n');

  // SIGTERM (or SIGINT): app.close() runs Nest's shutdown hooks, the same as enableShutdownHooks() would: runs stop
  // claiming and record the outcome of every charge already sent, then the pool closes. Then what this process
  // started outside Nest (embedded PostgreSQL, fake Bootpay) stops. Whatever is still going at SHUTDOWN_TIMEOUT_MS
  // is left to the next run, as after a crash, and the process exits.
  let stopping = false;
  const shutdown = async (signal: NodeJS.Signals) => {
    if (stopping) return;
    stopping = true;
    logger.log({ message: 'shutting down', signal, timeout_ms: config.shutdownTimeoutMs }, 'Shutdown');
    const deadline = setTimeout(() => {
      logger.error({ message: 'shutdown time-out: exiting; the next run resolves what is left open', timeout_ms: config.shutdownTimeoutMs }, 'Shutdown');
      process.exit(1);
    }, config.shutdownTimeoutMs);
    deadline.unref();
    try {
      await app.close();
      await resolved.stop();
    } catch (err) {
      logger.error({ message: 'shutdown failed', error: err instanceof Error ? err.message : String(err) }, 'Shutdown');
      process.exit(1);
    }
    logger.log({ message: 'stopped', signal }, 'Shutdown');
    process.exit(0);
  };
  process.once('SIGINT', () => void shutdown('SIGINT'));
  process.once('SIGTERM', () => void shutdown('SIGTERM'));
}

main().catch((err: unknown) => {
  process.stderr.write(`Start failed: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
