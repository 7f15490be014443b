import type { Pool, QueryResultRow } from 'pg';
import type { DataSource } from 'typeorm';

/**
 * Runs a statement as a named prepared statement on pg's pool under TypeORM: each connection parses and plans it
 * once, not on every call. For the charge run's per-charge statements, where planning a multi-CTE statement would
 * cost more than executing it. `name` must be unique per statement text.
 */
export async function preparedQuery<R extends QueryResultRow = QueryResultRow>(db: DataSource, name: string, text: string, values: unknown[]): Promise<R[]> {
  const pool = (db.driver as unknown as { master: Pool }).master;
  const result = await pool.query<R>({ name, text, values });
  return result.rows;
}
