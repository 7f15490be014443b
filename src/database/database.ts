import { DataSource, DataSourceOptions } from 'typeorm';
import { MIGRATIONS } from '../../migrations';
import { ENTITIES } from './entities';
import { DatabaseLock } from '../common/locks';

export function dataSourceOptions(url: string, poolSize = 20): DataSourceOptions {
  return {
    type: 'postgres',
    url,
    entities: ENTITIES,
    migrations: MIGRATIONS,
    synchronize: false,
    migrationsRun: false,
    logging: false,
    extra: {
      max: poolSize,
      application_name: 'bootpay-billing-scheduler',
      // Safety nets against a stuck pool: waiting longer than this for a connection is an error (the work is retried
      // or resolved later) rather than a wait forever, and the server ends a transaction left idle this long (its
      // locks are released; nothing of the service keeps a transaction open across a call to Bootpay).
      connectionTimeoutMillis: 30_000,
      options: '-c idle_in_transaction_session_timeout=300000',
    },
  };
}

const MIN_SERVER_VERSION = 130000;

/**
 * Applies pending migrations once, under an advisory lock, so several instances starting together do not race.
 * Checks the server version first with an actionable message.
 */
export async function runMigrations(url: string, log: (msg: string) => void = () => {}): Promise<string[]> {
  const ds = new DataSource({ ...dataSourceOptions(url, 2) });
  await ds.initialize();
  const runner = ds.createQueryRunner();
  try {
    const [{ server_version_num }] = await runner.query(`SELECT current_setting('server_version_num')::int AS server_version_num`);
    if (server_version_num < MIN_SERVER_VERSION) {
      throw new Error(`PostgreSQL 13 or newer is needed; this server is ${server_version_num}. Upgrade it or unset DATABASE_URL to use the embedded one.`);
    }
    await runner.query('SELECT pg_advisory_lock($1)', [DatabaseLock.Migrations]);
    try {
      const applied = await ds.runMigrations({ transaction: 'each' });
      for (const m of applied) log(`applied migration ${m.name}`);
      return applied.map((m) => m.name);
    } finally {
      await runner.query('SELECT pg_advisory_unlock($1)', [DatabaseLock.Migrations]);
    }
  } finally {
    await runner.release();
    await ds.destroy();
  }
}
