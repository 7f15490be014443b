import { ApiPropertyOptional } from '@nestjs/swagger';
import { Type } from 'class-transformer';
import { IsInt, IsString, Matches, Max, MaxLength, Min } from 'class-validator';
import { Optional } from './validators';
import { ObjectLiteral, SelectQueryBuilder } from 'typeorm';
import { InvalidInputError } from './errors';
import { isUuid } from './uuid.pipe';

/** Every list endpoint takes `limit` and an opaque `cursor`, and answers `{data, has_more, next_cursor}`. */
export class PageQueryDto {
  @ApiPropertyOptional({ type: 'integer', minimum: 1, maximum: 100, default: 20 })
  @Optional()
  @Type(() => Number)
  @IsInt()
  @Min(1)
  @Max(100)
  limit?: number;

  @ApiPropertyOptional({ description: 'next_cursor of the previous page', pattern: '^[A-Za-z0-9_-]+$', maxLength: 200 })
  @Optional()
  @IsString()
  @MaxLength(200)
  @Matches(/^[A-Za-z0-9_-]+$/, { message: 'cursor must be a next_cursor value from a previous page' })
  cursor?: string;
}

export interface Page<T> {
  data: T[];
  has_more: boolean;
  next_cursor: string | null;
}

/**
 * Whether a cursor's time is an instant as next_cursor writes it (`toISOString()`) that PostgreSQL can read:
 * `YYYY-MM-DDTHH:mm:ss.sssZ`, a real calendar day (JavaScript reads 2024-02-30 as March 1st; PostgreSQL refuses it)
 * and a year from 1 to 9999 (PostgreSQL has no year 0). Every cursor decoder checks its times with this.
 */
export function isCursorInstant(t: unknown): t is string {
  if (typeof t !== 'string' || !/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/.test(t)) return false;
  const ms = Date.parse(t);
  if (Number.isNaN(ms)) return false;
  const d = new Date(ms);
  return d.getUTCFullYear() >= 1 && d.toISOString() === t;
}

export interface CursorValue {
  t: string;
  id: string;
}

/** Reads a next_cursor value (a time and an id); anything else is a 400 naming the field. */
export function decodeCursor(cursor: string): CursorValue {
  try {
    const v = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8')) as CursorValue;
    if (typeof v.t !== 'string' || typeof v.id !== 'string') throw new Error('bad');
    // Exactly what next_cursor holds: a UTC ISO instant and a UUID (anything looser could reach PostgreSQL).
    if (!isCursorInstant(v.t) || !isUuid(v.id)) throw new Error('bad');
    return v;
  } catch {
    throw new InvalidInputError([{ field: 'cursor', message: 'cursor must be a next_cursor value from a previous page' }]);
  }
}

/**
 * Keyset pagination ordered by (created_at, id), oldest first: stable under inserts.
 * `createdAtColumn` and `idColumn` are the qualified column names, e.g. `c.created_at`.
 */
export async function paginate<E extends ObjectLiteral & { id: string; createdAt: Date }, R>(
  qb: SelectQueryBuilder<E>,
  query: PageQueryDto,
  map: (e: E) => R,
  alias: string,
): Promise<Page<R>> {
  const limit = query.limit ?? 20;
  if (query.cursor) {
    const c = decodeCursor(query.cursor);
    qb.andWhere(`(${alias}.created_at, ${alias}.id) > (:cursorT::timestamptz, :cursorId::uuid)`, {
      cursorT: c.t,
      cursorId: c.id,
    });
  }
  qb.orderBy(`${alias}.created_at`, 'ASC')
    .addOrderBy(`${alias}.id`, 'ASC')
    .limit(limit + 1);
  const rows = await qb.getMany();
  const hasMore = rows.length > limit;
  const page = rows.slice(0, limit);
  const last = page[page.length - 1];
  return {
    data: page.map(map),
    has_more: hasMore,
    next_cursor: hasMore && last ? encodeCursor(last.createdAt, last.id) : null,
  };
}

/** The next_cursor of a page whose last row was created at `t` with id `id`. */
export function encodeCursor(t: Date, id: string): string {
  return Buffer.from(JSON.stringify({ t: t.toISOString(), id })).toString('base64url');
}
