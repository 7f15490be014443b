/**
 * A Runtime for the benchmarks, assembled like test/utils/test-app.ts assembles one: a given database, a given
 * encryption key, the real gateway (the @bootpay/backend-js SDK over HTTP) pointed at a fake Bootpay running in
 * another process, the system clock and a quiet logger. Settings go through the service's own loadConfig.
 */
import { SystemClock } from '../src/common/clock';
import { JsonLogger } from '../src/common/json-logger';
import { loadConfig } from '../src/config/config';
import { Runtime } from '../src/config/runtime';
import { FAKE_CREDENTIALS } from './lib';
import { chargeRunEnv } from './processes';

export interface BenchRuntimeOptions {
  databaseUrl: string;
  encryptionKeyHex: string;
  fakeApiBaseUrl: string;
  /** Service settings (names as in README's configuration table), on top of the bench defaults below. */
  env?: Record<string, string>;
  logLevel?: 'debug' | 'info' | 'warn' | 'error';
}

export function benchRuntime(o: BenchRuntimeOptions): Runtime {
  const config = loadConfig({
    NODE_ENV: 'development',
    DATABASE_URL: o.databaseUrl,
    CHARGE_RUN_CRON_ENABLED: 'false',
    TEST_ENDPOINTS: 'false',
    LOG_LEVEL: o.logLevel ?? 'warn',
    ...o.env,
  });
  return {
    config,
    databaseUrl: o.databaseUrl,
    encryptionKey: Buffer.from(o.encryptionKeyHex, 'hex'),
    gateway: {
      clientKey: FAKE_CREDENTIALS.clientKey,
      secretKey: FAKE_CREDENTIALS.secretKey,
      mode: 'development',
      apiBaseUrl: o.fakeApiBaseUrl,
      timeoutMs: config.bootpay.timeoutMs,
      chargeTimeoutMs: config.bootpay.chargeTimeoutMs,
      maxSockets: config.bootpay.maxSockets,
    },
    clock: new SystemClock(),
    logger: new JsonLogger(o.logLevel ?? 'warn'),
  };
}

/** The settings of a bench child that runs one charge run in its own process (bench:charge, bench:bigtable). */
export interface ChargeRunChildOptions {
  databaseUrl: string;
  encryptionKeyHex: string;
  fakeApiBaseUrl: string;
  concurrency: number;
  batchSize: number;
  poolSize: number;
}

/**
 * A Runtime for one charge run in this process: CHARGE_RUN_CONCURRENCY, rate 100000/s, batch and pool as given, and
 * the outbound-webhook loop off (it polls the outbox every second: off, so the counted SQL is the charge run's alone).
 */
export function chargeRunRuntime(o: ChargeRunChildOptions): Runtime {
  return benchRuntime({
    databaseUrl: o.databaseUrl,
    encryptionKeyHex: o.encryptionKeyHex,
    fakeApiBaseUrl: o.fakeApiBaseUrl,
    env: { ...chargeRunEnv(o.concurrency, o.batchSize), DATABASE_POOL_SIZE: String(o.poolSize), OUTBOUND_WEBHOOK_POLL_MS: '0' },
  });
}
