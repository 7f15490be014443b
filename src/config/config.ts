import { isIP } from 'node:net';

/**
 * Settings are read once from the environment and validated before anything starts.
 * A missing or wrong setting stops the start with one line naming it (ConfigError).
 */
export class ConfigError extends Error {
  constructor(
    readonly setting: string,
    problem: string,
  ) {
    super(`Invalid setting ${setting}: ${problem}`);
    this.name = 'ConfigError';
  }
}

export type NodeEnv = 'development' | 'test' | 'production';
export type BootpayMode = 'development' | 'stage' | 'production';

export interface BootpayCredentials {
  clientKey?: string;
  secretKey?: string;
  applicationId?: string;
  privateKey?: string;
}

export interface AppConfig {
  nodeEnv: NodeEnv;
  host: string;
  port: number;
  /** Absent outside production: the start uses an embedded PostgreSQL. */
  databaseUrl?: string;
  databasePoolSize: number;
  /** Connections of the pool kept for the charge run while one executes (see database/pool-share.ts). */
  databasePoolRunReserve: number;
  dataDir: string;
  embeddedPostgresPort: number;
  /** 32 bytes; absent outside production: generated and kept in dataDir. */
  encryptionKey?: Buffer;
  bootpay: {
    /** Absent outside production: the in-process fake Bootpay is used. */
    credentials?: BootpayCredentials;
    mode: BootpayMode;
    apiBaseUrl?: string;
    timeoutMs: number;
    chargeTimeoutMs: number;
    maxSockets: number;
  };
  fakeBootpayPort: number;
  adminApiKey?: string;
  serviceApiKey?: string;
  businessTimeZone: string;
  logLevel: 'debug' | 'info' | 'warn' | 'error';
  /** Bearer token that may read /metrics (besides an admin API key); absent: admin keys only. */
  metricsToken?: string;
  /** SIGTERM: how long in-flight charges may take to finish before the process exits anyway. */
  shutdownTimeoutMs: number;
  skipMigrations: boolean;
  /** Where Bootpay can reach this service's webhook (used as feedback_url); optional. */
  publicBaseUrl?: string;
  chargeRun: {
    cronEnabled: boolean;
    cron: string;
    timeZone: string;
    batchSize: number;
    concurrency: number;
    ratePerSecond: number;
    leaseSeconds: number;
  };
  /** Nightly reconciliation with Bootpay (fired like the charge run, by instances with CHARGE_RUN_CRON_ENABLED). */
  reconcile: {
    cron: string;
    /** Payments approved or changed in this many days before the run are checked. */
    windowDays: number;
  };
  dunning: {
    retryDays: number[];
    finalAction: 'cancel' | 'unpaid';
  };
  reservations: {
    horizon: number;
  };
  /** Consent before a paid conversion or a price increase (전자상거래법 제13조 제6항), and the notices before them. */
  consent: {
    required: boolean;
    /** What a trial end or a price increase without a valid consent does instead of the charge. */
    missingAction: 'cancel' | 'pause';
    /** Days before each renewal when subscription.renewal_upcoming is sent; 0 turns it off. */
    renewalNoticeDays: number;
    /** When the notice task runs (in CHARGE_RUN_TIME_ZONE, on instances with CHARGE_RUN_CRON_ENABLED). */
    noticeCron: string;
  };
  testEndpoints: boolean;
  /** How often each instance sends due outbound webhooks; 0 turns the loop off. */
  outboundWebhookPollMs: number;
  outboundWebhooks: {
    /** Endpoints on loopback, private, link-local or unique-local addresses are refused unless this is on. */
    allowPrivate: boolean;
    /** Deliveries to one endpoint in flight at once, per instance. */
    endpointConcurrency: number;
    /** Time-out of one delivery; a claim's lease is always longer. */
    timeoutMs: number;
  };
  /** Whether /docs and /docs/openapi.json are served (default: outside production only). */
  docsEnabled: boolean;
  /** Calls to Bootpay's webhook route per source address and minute; 0 turns the limit off. */
  bootpayWebhookRatePerMinute: number;
  /** Express `trust proxy`: how many proxies in front set X-Forwarded-For (0: the peer address is the source). */
  trustProxyHops: number;
}

type Env = Record<string, string | undefined>;

function str(env: Env, name: string): string | undefined {
  const v = env[name];
  if (v === undefined) return undefined;
  const t = v.trim();
  return t === '' ? undefined : t;
}

function int(env: Env, name: string, def: number, min: number, max: number): number {
  const v = str(env, name);
  if (v === undefined) return def;
  if (!/^-?\d+$/.test(v)) throw new ConfigError(name, `must be a whole number, got ${JSON.stringify(v)}`);
  const n = Number(v);
  if (n < min || n > max) throw new ConfigError(name, `must be between ${min} and ${max}, got ${n}`);
  return n;
}

function bool(env: Env, name: string, def: boolean): boolean {
  const v = str(env, name);
  if (v === undefined) return def;
  if (/^(1|true|yes|on)$/i.test(v)) return true;
  if (/^(0|false|no|off)$/i.test(v)) return false;
  throw new ConfigError(name, `must be true or false, got ${JSON.stringify(v)}`);
}

function oneOf<T extends string>(env: Env, name: string, values: readonly T[], def: T): T {
  const v = str(env, name);
  if (v === undefined) return def;
  if (!(values as readonly string[]).includes(v)) {
    throw new ConfigError(name, `must be one of ${values.join(', ')}, got ${JSON.stringify(v)}`);
  }
  return v as T;
}

function url(env: Env, name: string, protocols: string[]): string | undefined {
  const v = str(env, name);
  if (v === undefined) return undefined;
  let parsed: URL;
  try {
    parsed = new URL(v);
  } catch {
    throw new ConfigError(name, 'must be a URL');
  }
  if (!protocols.includes(parsed.protocol)) {
    throw new ConfigError(name, `must be a ${protocols.join(' or ')} URL`);
  }
  return v;
}

export function parseEncryptionKey(raw: string, name = 'BILLING_KEY_ENCRYPTION_KEY'): Buffer {
  let key: Buffer | undefined;
  if (/^[0-9a-fA-F]{64}$/.test(raw)) key = Buffer.from(raw, 'hex');
  else if (/^[A-Za-z0-9+/_-]{43}=?$/.test(raw)) key = Buffer.from(raw.replace(/-/g, '+').replace(/_/g, '/'), 'base64');
  if (!key || key.length !== 32) {
    throw new ConfigError(name, 'must be 32 bytes, as 64 hex characters or base64 (openssl rand -base64 32)');
  }
  return key;
}

export function isValidTimeZoneName(tz: string): boolean {
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: tz });
    return true;
  } catch {
    return false;
  }
}

function timeZone(env: Env, name: string, def: string): string {
  const v = str(env, name) ?? def;
  if (!isValidTimeZoneName(v)) throw new ConfigError(name, `must be an IANA time zone such as Asia/Seoul, got ${JSON.stringify(v)}`);
  return v;
}

const CRON_FIELD = /^(\*|\d+(-\d+)?)(\/\d+)?(,(\*|\d+(-\d+)?)(\/\d+)?)*$/;

function cron(env: Env, name: string, def: string): string {
  const v = str(env, name) ?? def;
  const fields = v.split(/\s+/);
  if ((fields.length !== 5 && fields.length !== 6) || !fields.every((f) => CRON_FIELD.test(f))) {
    throw new ConfigError(name, `must be a cron expression of 5 or 6 numeric fields, got ${JSON.stringify(v)}`);
  }
  return v;
}

function apiKey(env: Env, name: string): string | undefined {
  const v = str(env, name);
  if (v === undefined) return undefined;
  if (v.length < 24 || v.length > 200 || !/^[\x21-\x7e]+$/.test(v)) {
    throw new ConfigError(name, 'must be 24 to 200 printable characters without spaces');
  }
  return v;
}

function retryDays(env: Env, name: string, def: number[]): number[] {
  const v = str(env, name);
  if (v === undefined) return def;
  const parts = v.split(',').map((p) => p.trim());
  const days = parts.map(Number);
  if (parts.some((p) => !/^\d+$/.test(p)) || days.some((d) => d < 1 || d > 365)) {
    throw new ConfigError(name, `must be a comma-separated list of whole days between 1 and 365, got ${JSON.stringify(v)}`);
  }
  for (let i = 1; i < days.length; i++) {
    if (days[i] <= days[i - 1]) throw new ConfigError(name, 'must be strictly increasing (days after the first failure)');
  }
  if (days.length > 20) throw new ConfigError(name, 'may hold at most 20 retries');
  return days;
}

export function loadConfig(env: Env = process.env): AppConfig {
  const nodeEnv = oneOf(env, 'NODE_ENV', ['development', 'test', 'production'] as const, 'development');
  const production = nodeEnv === 'production';

  const host = str(env, 'HOST') ?? '0.0.0.0';
  if (host !== 'localhost' && isIP(host) === 0) throw new ConfigError('HOST', `must be an IP address or localhost, got "${host}"`);

  const databaseUrl = url(env, 'DATABASE_URL', ['postgres:', 'postgresql:']);
  if (production && !databaseUrl) throw new ConfigError('DATABASE_URL', 'is required when NODE_ENV=production');

  const rawKey = str(env, 'BILLING_KEY_ENCRYPTION_KEY');
  const encryptionKey = rawKey ? parseEncryptionKey(rawKey) : undefined;
  if (production && !encryptionKey) throw new ConfigError('BILLING_KEY_ENCRYPTION_KEY', 'is required when NODE_ENV=production');

  const clientKey = str(env, 'BOOTPAY_CLIENT_KEY');
  const secretKey = str(env, 'BOOTPAY_SECRET_KEY');
  const applicationId = str(env, 'BOOTPAY_APPLICATION_ID');
  const privateKey = str(env, 'BOOTPAY_PRIVATE_KEY');
  if (!!clientKey !== !!secretKey) {
    throw new ConfigError(clientKey ? 'BOOTPAY_SECRET_KEY' : 'BOOTPAY_CLIENT_KEY', 'must be set together with its pair');
  }
  if (!!applicationId !== !!privateKey) {
    throw new ConfigError(applicationId ? 'BOOTPAY_PRIVATE_KEY' : 'BOOTPAY_APPLICATION_ID', 'must be set together with its pair');
  }
  const hasCredentials = !!(clientKey || applicationId);
  if (production && !hasCredentials) {
    throw new ConfigError('BOOTPAY_CLIENT_KEY', 'Bootpay credentials (BOOTPAY_CLIENT_KEY/BOOTPAY_SECRET_KEY) are required when NODE_ENV=production');
  }
  const apiBaseUrl = url(env, 'BOOTPAY_API_BASE_URL', ['http:', 'https:']);
  if (apiBaseUrl && !hasCredentials) {
    throw new ConfigError('BOOTPAY_API_BASE_URL', 'needs Bootpay credentials too (BOOTPAY_CLIENT_KEY/BOOTPAY_SECRET_KEY)');
  }

  const retries = retryDays(env, 'DUNNING_RETRY_DAYS', [1, 3, 5, 7]);

  // Bootpay's webhooks come to this URL: in production they must not travel in clear.
  const publicBaseUrl = url(env, 'PUBLIC_BASE_URL', production ? ['https:'] : ['http:', 'https:']);

  const databasePoolSize = int(env, 'DATABASE_POOL_SIZE', 20, 2, 500);
  return {
    nodeEnv,
    host,
    port: int(env, 'PORT', 3000, 0, 65535),
    databaseUrl,
    databasePoolSize,
    databasePoolRunReserve: int(env, 'DATABASE_POOL_RUN_RESERVE', Math.floor(databasePoolSize / 5), 0, databasePoolSize - 1),
    dataDir: str(env, 'DATA_DIR') ?? '.data',
    embeddedPostgresPort: int(env, 'EMBEDDED_PG_PORT', 54320, 1024, 65535),
    encryptionKey,
    bootpay: {
      credentials: hasCredentials ? { clientKey, secretKey, applicationId, privateKey } : undefined,
      mode: oneOf(env, 'BOOTPAY_MODE', ['development', 'stage', 'production'] as const, 'production'),
      apiBaseUrl,
      timeoutMs: int(env, 'BOOTPAY_TIMEOUT_MS', 10_000, 100, 120_000),
      chargeTimeoutMs: int(env, 'BOOTPAY_CHARGE_TIMEOUT_MS', 30_000, 100, 120_000),
      maxSockets: int(env, 'BOOTPAY_MAX_SOCKETS', 128, 1, 4096),
    },
    fakeBootpayPort: int(env, 'FAKE_BOOTPAY_PORT', 7070, 0, 65535),
    adminApiKey: apiKey(env, 'ADMIN_API_KEY'),
    serviceApiKey: apiKey(env, 'SERVICE_API_KEY'),
    businessTimeZone: timeZone(env, 'BUSINESS_TIME_ZONE', 'Asia/Seoul'),
    logLevel: oneOf(env, 'LOG_LEVEL', ['debug', 'info', 'warn', 'error'] as const, 'info'),
    metricsToken: apiKey(env, 'METRICS_TOKEN'),
    shutdownTimeoutMs: int(env, 'SHUTDOWN_TIMEOUT_MS', 25_000, 1000, 600_000),
    skipMigrations: bool(env, 'SKIP_MIGRATIONS', false),
    publicBaseUrl,
    chargeRun: {
      cronEnabled: bool(env, 'CHARGE_RUN_CRON_ENABLED', true),
      cron: cron(env, 'CHARGE_RUN_CRON', '0 3 * * *'),
      timeZone: timeZone(env, 'CHARGE_RUN_TIME_ZONE', 'Asia/Seoul'),
      batchSize: int(env, 'CHARGE_RUN_BATCH_SIZE', 200, 1, 10_000),
      concurrency: int(env, 'CHARGE_RUN_CONCURRENCY', 16, 1, 1024),
      ratePerSecond: int(env, 'CHARGE_RUN_RATE_PER_SECOND', 100, 1, 100_000),
      leaseSeconds: int(env, 'CHARGE_RUN_LEASE_SECONDS', 300, 10, 86_400),
    },
    reconcile: {
      cron: cron(env, 'RECONCILE_CRON', '0 4 * * *'),
      windowDays: int(env, 'RECONCILE_WINDOW_DAYS', 35, 1, 400),
    },
    dunning: {
      retryDays: retries,
      finalAction: oneOf(env, 'DUNNING_FINAL_ACTION', ['cancel', 'unpaid'] as const, 'cancel'),
    },
    reservations: {
      horizon: int(env, 'RESERVATION_HORIZON', 1, 1, 10),
    },
    consent: {
      required: bool(env, 'CONSENT_REQUIRED', true),
      missingAction: oneOf(env, 'CONSENT_MISSING_ACTION', ['cancel', 'pause'] as const, 'cancel'),
      renewalNoticeDays: int(env, 'RENEWAL_NOTICE_DAYS', 7, 0, 60),
      noticeCron: cron(env, 'CONSENT_NOTICE_CRON', '10 * * * *'),
    },
    testEndpoints: bool(env, 'TEST_ENDPOINTS', true) && !production,
    outboundWebhookPollMs: int(env, 'OUTBOUND_WEBHOOK_POLL_MS', 1000, 0, 3_600_000),
    outboundWebhooks: {
      allowPrivate: bool(env, 'OUTBOUND_WEBHOOKS_ALLOW_PRIVATE', false),
      endpointConcurrency: int(env, 'OUTBOUND_WEBHOOK_ENDPOINT_CONCURRENCY', 4, 1, 64),
      timeoutMs: int(env, 'OUTBOUND_WEBHOOK_TIMEOUT_MS', 5000, 100, 60_000),
    },
    docsEnabled: bool(env, 'DOCS_ENABLED', !production),
    bootpayWebhookRatePerMinute: int(env, 'BOOTPAY_WEBHOOK_RATE_PER_MINUTE', 6000, 0, 1_000_000),
    trustProxyHops: int(env, 'TRUST_PROXY_HOPS', 0, 0, 10),
  };
}
