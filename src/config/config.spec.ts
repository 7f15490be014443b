import { randomBytes } from 'node:crypto';
import { ConfigError, loadConfig, parseEncryptionKey } from './config';

const HEX_KEY = '00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff';
const ADMIN_KEY = 'adm_0123456789abcdefghijklmnop';

/** Everything production insists on, and nothing else. */
const PRODUCTION = {
  NODE_ENV: 'production',
  DATABASE_URL: 'postgres://billing:pw@db.internal:5432/billing',
  BILLING_KEY_ENCRYPTION_KEY: HEX_KEY,
  BOOTPAY_CLIENT_KEY: 'client-key-1',
  BOOTPAY_SECRET_KEY: 'secret-key-1',
};

/** Runs loadConfig and returns the ConfigError it must throw. */
function configError(env: Record<string, string | undefined>): ConfigError {
  let caught: unknown;
  try {
    loadConfig(env);
  } catch (err) {
    caught = err;
  }
  if (!(caught instanceof ConfigError)) {
    throw new Error(`expected a ConfigError, got ${caught === undefined ? 'no error' : String(caught)}`);
  }
  return caught;
}

function expectRefused(env: Record<string, string | undefined>, setting: string): ConfigError {
  const err = configError(env);
  expect(err.name).toBe('ConfigError');
  expect(err.setting).toBe(setting);
  expect(err.message.startsWith(`Invalid setting ${setting}: `)).toBe(true);
  expect(err.message).not.toMatch(/[\r\n]/);
  return err;
}

describe(loadConfig.name, () => {
  describe('with an empty environment', () => {
    const config = loadConfig({});

    it('should start in development on port 3000 on all interfaces', () => {
      expect(config.nodeEnv).toBe('development');
      expect(config.port).toBe(3000);
      expect(config.host).toBe('0.0.0.0');
    });

    it('should use Asia/Seoul as the business time zone and for the charge run', () => {
      expect(config.businessTimeZone).toBe('Asia/Seoul');
      expect(config.chargeRun.timeZone).toBe('Asia/Seoul');
    });

    it('should run charges daily at 03:00 with the cron enabled', () => {
      expect(config.chargeRun.cron).toBe('0 3 * * *');
      expect(config.chargeRun.cronEnabled).toBe(true);
    });

    it('should retry on days 1, 3, 5 and 7 and then cancel', () => {
      expect(config.dunning).toEqual({ retryDays: [1, 3, 5, 7], finalAction: 'cancel' });
    });

    it('should turn the test endpoints on', () => {
      expect(config.testEndpoints).toBe(true);
    });

    it('should leave the database, encryption key, Bootpay credentials and API keys unset', () => {
      expect(config.databaseUrl).toBeUndefined();
      expect(config.encryptionKey).toBeUndefined();
      expect(config.bootpay.credentials).toBeUndefined();
      expect(config.bootpay.apiBaseUrl).toBeUndefined();
      expect(config.adminApiKey).toBeUndefined();
      expect(config.serviceApiKey).toBeUndefined();
    });

    it('should log at info level', () => {
      expect(config.logLevel).toBe('info');
    });
  });

  it('should treat blank values as unset', () => {
    const config = loadConfig({ PORT: '  ', DUNNING_RETRY_DAYS: '', BUSINESS_TIME_ZONE: ' ' });
    expect(config.port).toBe(3000);
    expect(config.dunning.retryDays).toEqual([1, 3, 5, 7]);
    expect(config.businessTimeZone).toBe('Asia/Seoul');
  });

  it('should accept valid overrides', () => {
    const config = loadConfig({
      PORT: '8080',
      BUSINESS_TIME_ZONE: 'UTC',
      CHARGE_RUN_CRON: '*/15 1-5 * * *',
      DUNNING_RETRY_DAYS: '2, 4,9',
      DUNNING_FINAL_ACTION: 'unpaid',
      ADMIN_API_KEY: ADMIN_KEY,
      TEST_ENDPOINTS: 'false',
    });
    expect(config.port).toBe(8080);
    expect(config.businessTimeZone).toBe('UTC');
    expect(config.chargeRun.cron).toBe('*/15 1-5 * * *');
    expect(config.dunning).toEqual({ retryDays: [2, 4, 9], finalAction: 'unpaid' });
    expect(config.adminApiKey).toBe(ADMIN_KEY);
    expect(config.testEndpoints).toBe(false);
  });

  describe('refusing a wrong setting with one line naming it', () => {
    it.each<[string, Record<string, string>, string]>([
      ['PORT that is not a number', { PORT: 'abc' }, 'PORT'],
      ['PORT above 65535', { PORT: '70000' }, 'PORT'],
      ['a DATABASE_URL that is not PostgreSQL', { DATABASE_URL: 'mysql://x' }, 'DATABASE_URL'],
      ['a DATABASE_URL that is not a URL', { DATABASE_URL: 'not a url' }, 'DATABASE_URL'],
      ['a too short BILLING_KEY_ENCRYPTION_KEY', { BILLING_KEY_ENCRYPTION_KEY: 'abc123' }, 'BILLING_KEY_ENCRYPTION_KEY'],
      ['an unknown BUSINESS_TIME_ZONE', { BUSINESS_TIME_ZONE: 'Mars/Base' }, 'BUSINESS_TIME_ZONE'],
      ['a CHARGE_RUN_CRON in words', { CHARGE_RUN_CRON: 'every day' }, 'CHARGE_RUN_CRON'],
      ['DUNNING_RETRY_DAYS out of order', { DUNNING_RETRY_DAYS: '3,1' }, 'DUNNING_RETRY_DAYS'],
      ['DUNNING_RETRY_DAYS with a repeated day', { DUNNING_RETRY_DAYS: '1,3,3' }, 'DUNNING_RETRY_DAYS'],
      ['DUNNING_RETRY_DAYS with a non-number', { DUNNING_RETRY_DAYS: '1,x' }, 'DUNNING_RETRY_DAYS'],
      ['DUNNING_RETRY_DAYS with day 0', { DUNNING_RETRY_DAYS: '0,2' }, 'DUNNING_RETRY_DAYS'],
      ['an unknown DUNNING_FINAL_ACTION', { DUNNING_FINAL_ACTION: 'delete' }, 'DUNNING_FINAL_ACTION'],
      ['a too short ADMIN_API_KEY', { ADMIN_API_KEY: 'short-key' }, 'ADMIN_API_KEY'],
      ['an unknown NODE_ENV', { NODE_ENV: 'staging' }, 'NODE_ENV'],
      ['BOOTPAY_CLIENT_KEY without BOOTPAY_SECRET_KEY', { BOOTPAY_CLIENT_KEY: 'client-key-1' }, 'BOOTPAY_SECRET_KEY'],
      ['BOOTPAY_SECRET_KEY without BOOTPAY_CLIENT_KEY', { BOOTPAY_SECRET_KEY: 'secret-key-1' }, 'BOOTPAY_CLIENT_KEY'],
      ['BOOTPAY_APPLICATION_ID without BOOTPAY_PRIVATE_KEY', { BOOTPAY_APPLICATION_ID: 'app-1' }, 'BOOTPAY_PRIVATE_KEY'],
      ['BOOTPAY_API_BASE_URL without credentials', { BOOTPAY_API_BASE_URL: 'https://api.bootpay.co.kr/v2' }, 'BOOTPAY_API_BASE_URL'],
    ])('should refuse %s', (_label, env, setting) => {
      expectRefused(env, setting);
    });

    it('should say what is wrong with PORT and echo the value', () => {
      expect(expectRefused({ PORT: '70000' }, 'PORT').message).toBe('Invalid setting PORT: must be between 0 and 65535, got 70000');
      expect(expectRefused({ PORT: 'abc' }, 'PORT').message).toBe('Invalid setting PORT: must be a whole number, got "abc"');
    });

    it("should keep the charge run's share of the pool below the pool's size, a fifth of it by default", () => {
      expect(loadConfig({}).databasePoolRunReserve).toBe(4);
      expect(loadConfig({ DATABASE_POOL_SIZE: '50' }).databasePoolRunReserve).toBe(10);
      expect(loadConfig({ DATABASE_POOL_SIZE: '10', DATABASE_POOL_RUN_RESERVE: '0' }).databasePoolRunReserve).toBe(0);
      expect(expectRefused({ DATABASE_POOL_SIZE: '10', DATABASE_POOL_RUN_RESERVE: '10' }, 'DATABASE_POOL_RUN_RESERVE').message).toBe(
        'Invalid setting DATABASE_POOL_RUN_RESERVE: must be between 0 and 9, got 10',
      );
    });

    it('should not echo secret values in the message', () => {
      const key = 'deadbeefdeadbeef';
      expect(expectRefused({ BILLING_KEY_ENCRYPTION_KEY: key }, 'BILLING_KEY_ENCRYPTION_KEY').message).not.toContain(key);
      const admin = 'short-admin-key';
      expect(expectRefused({ ADMIN_API_KEY: admin }, 'ADMIN_API_KEY').message).not.toContain(admin);
      const dbUrl = 'mysql://root:hunter2@db/x';
      expect(expectRefused({ DATABASE_URL: dbUrl }, 'DATABASE_URL').message).not.toContain('hunter2');
    });

    it('should refuse an ADMIN_API_KEY containing a space', () => {
      expectRefused({ ADMIN_API_KEY: 'adm 0123456789abcdefghijklmnop' }, 'ADMIN_API_KEY');
    });
  });

  describe('in production', () => {
    it('should refuse to start without DATABASE_URL', () => {
      const err = expectRefused({ ...PRODUCTION, DATABASE_URL: undefined }, 'DATABASE_URL');
      expect(err.message).toContain('NODE_ENV=production');
    });

    it('should refuse to start without BILLING_KEY_ENCRYPTION_KEY', () => {
      expectRefused({ ...PRODUCTION, BILLING_KEY_ENCRYPTION_KEY: undefined }, 'BILLING_KEY_ENCRYPTION_KEY');
    });

    it('should refuse to start without Bootpay credentials', () => {
      const err = expectRefused({ ...PRODUCTION, BOOTPAY_CLIENT_KEY: undefined, BOOTPAY_SECRET_KEY: undefined }, 'BOOTPAY_CLIENT_KEY');
      expect(err.message).toContain('BOOTPAY_SECRET_KEY');
    });

    it('should start with all three set and keep test endpoints off even when TEST_ENDPOINTS=true', () => {
      const config = loadConfig({ ...PRODUCTION, TEST_ENDPOINTS: 'true' });
      expect(config.nodeEnv).toBe('production');
      expect(config.testEndpoints).toBe(false);
      expect(config.databaseUrl).toBe(PRODUCTION.DATABASE_URL);
      expect(config.encryptionKey).toEqual(Buffer.from(HEX_KEY, 'hex'));
      expect(config.bootpay.credentials).toEqual({
        clientKey: 'client-key-1',
        secretKey: 'secret-key-1',
        applicationId: undefined,
        privateKey: undefined,
      });
    });

    it('should accept the application id / private key pair as Bootpay credentials', () => {
      const config = loadConfig({
        ...PRODUCTION,
        BOOTPAY_CLIENT_KEY: undefined,
        BOOTPAY_SECRET_KEY: undefined,
        BOOTPAY_APPLICATION_ID: 'app-1',
        BOOTPAY_PRIVATE_KEY: 'private-1',
      });
      expect(config.bootpay.credentials).toEqual({
        clientKey: undefined,
        secretKey: undefined,
        applicationId: 'app-1',
        privateKey: 'private-1',
      });
    });
  });

  it('should accept BOOTPAY_API_BASE_URL together with credentials', () => {
    const config = loadConfig({
      BOOTPAY_CLIENT_KEY: 'client-key-1',
      BOOTPAY_SECRET_KEY: 'secret-key-1',
      BOOTPAY_API_BASE_URL: 'https://api.bootpay.co.kr/v2',
    });
    expect(config.bootpay.apiBaseUrl).toBe('https://api.bootpay.co.kr/v2');
  });

  describe('BILLING_KEY_ENCRYPTION_KEY', () => {
    const bytes = randomBytes(32);

    it('should be accepted as 64 hex characters', () => {
      expect(loadConfig({ BILLING_KEY_ENCRYPTION_KEY: bytes.toString('hex') }).encryptionKey).toEqual(bytes);
      expect(loadConfig({ BILLING_KEY_ENCRYPTION_KEY: bytes.toString('hex').toUpperCase() }).encryptionKey).toEqual(bytes);
    });

    it('should be accepted as base64 of 32 bytes', () => {
      const b64 = bytes.toString('base64');
      expect(b64).toHaveLength(44);
      expect(loadConfig({ BILLING_KEY_ENCRYPTION_KEY: b64 }).encryptionKey).toEqual(bytes);
    });

    it('should be accepted as unpadded base64url of 32 bytes', () => {
      expect(loadConfig({ BILLING_KEY_ENCRYPTION_KEY: bytes.toString('base64url') }).encryptionKey).toEqual(bytes);
    });
  });
});

describe(parseEncryptionKey.name, () => {
  it.each([
    ['31 bytes in base64', randomBytes(31).toString('base64')],
    ['33 bytes in base64', randomBytes(33).toString('base64')],
    ['63 hex characters', 'a'.repeat(63)],
    ['65 hex characters', 'a'.repeat(65)],
    ['64 characters that are not hex', 'g'.repeat(64)],
  ])('should refuse %s', (_label, raw) => {
    expect(() => parseEncryptionKey(raw)).toThrow(ConfigError);
    expect(() => parseEncryptionKey(raw)).toThrow(/^Invalid setting BILLING_KEY_ENCRYPTION_KEY: must be 32 bytes/);
  });

  it('should name the setting it is given', () => {
    expect(() => parseEncryptionKey('short', 'OTHER_KEY')).toThrow(/^Invalid setting OTHER_KEY: /);
  });
});
