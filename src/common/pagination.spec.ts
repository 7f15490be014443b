import { plainToInstance } from 'class-transformer';
import { validateSync } from 'class-validator';
import { SelectQueryBuilder } from 'typeorm';
import { InvalidInputError } from './errors';
import { PageQueryDto, paginate } from './pagination';

interface Row {
  id: string;
  createdAt: Date;
  name: string;
}

function row(n: number): Row {
  return {
    id: `00000000-0000-4000-8000-${String(n).padStart(12, '0')}`,
    createdAt: new Date(Date.UTC(2025, 2, 1, 0, 0, n)),
    name: `row ${n}`,
  };
}

/** A stand-in for the query builder: records the calls and answers `rows` from getMany. */
function fakeQb(rows: Row[]) {
  const qb = {
    andWhere: jest.fn(),
    orderBy: jest.fn(),
    addOrderBy: jest.fn(),
    limit: jest.fn(),
    getMany: jest.fn(async () => rows),
  };
  qb.andWhere.mockReturnValue(qb);
  qb.orderBy.mockReturnValue(qb);
  qb.addOrderBy.mockReturnValue(qb);
  qb.limit.mockReturnValue(qb);
  return { qb, asBuilder: qb as unknown as SelectQueryBuilder<Row> };
}

const cursorOf = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');

describe(paginate.name, () => {
  it('should order by (created_at, id) and fetch one row more than the default limit of 20', async () => {
    const { qb, asBuilder } = fakeQb([]);
    await paginate(asBuilder, {}, (r) => r.id, 'c');
    expect(qb.orderBy).toHaveBeenCalledWith('c.created_at', 'ASC');
    expect(qb.addOrderBy).toHaveBeenCalledWith('c.id', 'ASC');
    expect(qb.limit).toHaveBeenCalledWith(21);
    expect(qb.andWhere).not.toHaveBeenCalled();
  });

  it('should answer the last page without a cursor', async () => {
    const rows = [row(1), row(2)];
    const { asBuilder } = fakeQb(rows);
    const page = await paginate(asBuilder, { limit: 2 }, (r) => r.name, 'c');
    expect(page).toEqual({ data: ['row 1', 'row 2'], has_more: false, next_cursor: null });
  });

  it('should answer an empty page', async () => {
    const { asBuilder } = fakeQb([]);
    expect(await paginate(asBuilder, { limit: 5 }, (r) => r.name, 'c')).toEqual({
      data: [],
      has_more: false,
      next_cursor: null,
    });
  });

  it('should drop the extra row and point the cursor at the last row shown', async () => {
    const { qb, asBuilder } = fakeQb([row(1), row(2), row(3)]);
    const page = await paginate(asBuilder, { limit: 2 }, (r) => r.name, 'c');
    expect(qb.limit).toHaveBeenCalledWith(3);
    expect(page.data).toEqual(['row 1', 'row 2']);
    expect(page.has_more).toBe(true);
    expect(page.next_cursor).toMatch(/^[A-Za-z0-9_-]+$/);
    expect(JSON.parse(Buffer.from(page.next_cursor!, 'base64url').toString('utf8'))).toEqual({
      t: row(2).createdAt.toISOString(),
      id: row(2).id,
    });
  });

  it('should continue after the row a next_cursor points at', async () => {
    const first = fakeQb([row(1), row(2), row(3)]);
    const { next_cursor } = await paginate(first.asBuilder, { limit: 2 }, (r) => r, 's');

    const second = fakeQb([row(3)]);
    const page = await paginate(second.asBuilder, { limit: 2, cursor: next_cursor! }, (r) => r.name, 's');
    expect(second.qb.andWhere).toHaveBeenCalledTimes(1);
    expect(second.qb.andWhere).toHaveBeenCalledWith('(s.created_at, s.id) > (:cursorT::timestamptz, :cursorId::uuid)', {
      cursorT: '2025-03-01T00:00:02.000Z',
      cursorId: row(2).id,
    });
    expect(page).toEqual({ data: ['row 3'], has_more: false, next_cursor: null });
  });

  it.each([
    ['text that is not base64 JSON', 'not-a-cursor'],
    ['a cursor without id', cursorOf({ t: '2025-03-01T00:00:00.000Z' })],
    ['a cursor with a bad date', cursorOf({ t: 'yesterday', id: row(1).id })],
    ['a cursor with an id that is not a uuid', cursorOf({ t: '2025-03-01T00:00:00.000Z', id: "1' OR '1'='1" })],
    ['a cursor with a numeric time', cursorOf({ t: 0, id: row(1).id })],
    ['a cursor of JSON null', cursorOf(null)],
  ])('should refuse %s as an invalid cursor', async (_label, cursor) => {
    const { qb, asBuilder } = fakeQb([row(1)]);
    const result = paginate(asBuilder, { cursor }, (r) => r, 'c');
    await expect(result).rejects.toBeInstanceOf(InvalidInputError);
    await expect(result).rejects.toMatchObject({
      code: 'invalid_request',
      details: [{ field: 'cursor', message: 'cursor must be a next_cursor value from a previous page' }],
    });
    expect(qb.getMany).not.toHaveBeenCalled();
  });
});

describe(PageQueryDto.name, () => {
  const errorsFor = (query: Record<string, unknown>) => validateSync(plainToInstance(PageQueryDto, query)).map((e) => e.property);

  it('should accept no parameters, limits 1 and 100 and a cursor of base64url characters', () => {
    expect(errorsFor({})).toEqual([]);
    expect(errorsFor({ limit: '1' })).toEqual([]);
    expect(errorsFor({ limit: '100', cursor: 'eyJ0IjoiMjAyNSJ9_-' })).toEqual([]);
  });

  it('should turn the limit query string into a number', () => {
    expect(plainToInstance(PageQueryDto, { limit: '25' }).limit).toBe(25);
  });

  it.each([['0'], ['101'], ['2.5'], ['ten']])('should refuse limit=%s', (limit) => {
    expect(errorsFor({ limit })).toEqual(['limit']);
  });

  it.each([['abc='], ['a b'], ['x'.repeat(201)]])('should refuse the cursor %j', (cursor) => {
    expect(errorsFor({ cursor })).toEqual(['cursor']);
  });
});
