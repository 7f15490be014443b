import { QueryFailedError } from 'typeorm';

/** PostgreSQL's unique_violation, optionally for one named constraint. */
export function isUniqueViolation(err: unknown, constraint?: string): boolean {
  if (!(err instanceof QueryFailedError)) return false;
  const driverError = (err as QueryFailedError & { driverError?: { code?: string; constraint?: string } }).driverError;
  if (driverError?.code !== '23505') return false;
  return constraint === undefined || driverError.constraint === constraint;
}

/** PostgreSQL's deadlock_detected or serialization_failure: the transaction may simply be run again. */
export function isRetryableConflict(err: unknown): boolean {
  if (!(err instanceof QueryFailedError)) return false;
  const code = (err as QueryFailedError & { driverError?: { code?: string } }).driverError?.code;
  return code === '40P01' || code === '40001';
}

/**
 * Runs a transaction that re-reads what it changes under its locks, again when PostgreSQL aborted it for a deadlock
 * or a serialization failure (a few times, after a short random pause): such a transaction is safe to repeat.
 */
export async function withRetries<T>(run: () => Promise<T>, attempts = 4): Promise<T> {
  for (let i = 1; ; i++) {
    try {
      return await run();
    } catch (err) {
      if (i >= attempts || !isRetryableConflict(err)) throw err;
      await new Promise((resolve) => setTimeout(resolve, 5 + Math.floor(Math.random() * 20 * i)));
    }
  }
}

/**
 * TypeORM's query() answers an UPDATE or DELETE with `[rows, affectedCount]` but a SELECT or INSERT with `rows`;
 * this gives the rows either way.
 */
export function returnedRows<T>(result: unknown): T[] {
  if (Array.isArray(result) && result.length === 2 && Array.isArray(result[0]) && typeof result[1] === 'number') {
    return result[0] as T[];
  }
  return result as T[];
}
