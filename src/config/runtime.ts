import type { AppConfig } from './config';
import type { Clock } from '../common/clock';
import type { JsonLogger } from '../common/json-logger';
import type { GatewayConfig } from '../gateway/gateway.types';

/**
 * Everything resolved before Nest starts: the database URL (given or embedded), the encryption key (given or
 * generated), the Bootpay endpoint (real or the in-process fake), the clock and the logger.
 * main.ts, the CLI and the tests build it; AppModule.forRoot takes it.
 */
export interface Runtime {
  config: AppConfig;
  databaseUrl: string;
  encryptionKey: Buffer;
  gateway: GatewayConfig;
  clock: Clock;
  logger: JsonLogger;
  /** Set when the fake Bootpay runs in this process (never in production). */
  fakeBootpayUrl?: string;
}

export const RUNTIME = Symbol('RUNTIME');
