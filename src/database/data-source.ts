import { DataSource } from 'typeorm';
import { dataSourceOptions } from './database';

/**
 * For the TypeORM CLI (migration:generate, migration:show). The service itself applies migrations at start
 * (see runMigrations) unless SKIP_MIGRATIONS=true.
 */
if (!process.env.DATABASE_URL) throw new Error('Set DATABASE_URL to use the TypeORM CLI');
export default new DataSource(dataSourceOptions(process.env.DATABASE_URL));
