/**
 * Fuzzing of every POST and PATCH route (and the query strings of every list), with fast-check:
 * malformed input must get a 4xx in the common error shape, and must store nothing, at home or at Bootpay.
 *
 * Every generated request is invalid by construction: at least one field gets a value its DTO refuses (or a
 * required field is dropped, or an unknown field is added), or the body is not a JSON object, or the path id is
 * not a UUID, or a header is bad. So a 2xx is never a correct answer. Each run compares a fingerprint of every
 * business table (row counts and content) and the fake Bootpay's ledger before and after the request.
 *
 * Known product bugs found by this fuzzing are pinned as explicit regression tests at the end of the file.
 *
 * Run: npx jest test/fuzz.e2e-spec.ts --selectProjects e2e   (the path first: --selectProjects takes several values)
 * FUZZ_RUNS=300 raises the runs of every property (fast-check prints the seed of a failure to replay it).
 */
import fc from 'fast-check';
import { createBillingKey, createCustomer, createPlan, createSubscription } from './utils/fixtures';
import { OpenApiContract } from './utils/openapi-contract';
import { bearer, startTestApp, T0, tableCounts, TestApp } from './utils/test-app';

const RUNS = 40;
const PROPERTY_TIMEOUT = 60_000;
const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

type Body = Record<string, unknown>;
type Role = 'admin' | 'service' | 'none';

interface Req {
  method: 'GET' | 'POST' | 'PATCH' | 'DELETE';
  path: string;
  /** The raw body text (or bytes: no Content-Type is then sent). */
  body?: string | Uint8Array;
  /** Content-Type of a body; application/json unless given. */
  contentType?: string;
  /** The Authorization header; absent when null. */
  authorization: string | null;
  headers?: Record<string, string>;
  /** What was corrupted, for the failure report. */
  why: string;
}

interface Res {
  status: number;
  text: string;
  body: unknown;
}

interface Fixtures {
  customerId: string;
  keyId: string;
  otherCustomerId: string;
  otherKeyId: string;
  planId: string;
  otherPlanId: string;
  inactivePlanId: string;
  subId: string;
  paymentId: string;
  receiptId: string;
  endpointId: string;
  deliveryId: string;
}

// ------------------------------------------------------------------------------------------------ value arbitraries

const CONTROL_CHARS = ['\u0000', '\u0001', '\u0007', '\b', '\t', '\n', '\u000b', '\f', '\r', '\u001b', '\u001f', '\u007f'];

const shortString = fc.string({ maxLength: 8 });
const someArray = fc.array(fc.oneof(shortString, fc.integer(), fc.boolean(), fc.constant(null)), { maxLength: 3 });
const someObject = fc.dictionary(fc.string({ minLength: 1, maxLength: 6 }), fc.oneof(shortString, fc.integer(), fc.boolean()), { maxKeys: 3 });
const hugeNumber = fc.constantFrom(1e21, 2 ** 53, 2 ** 53 + 2, 1e308, -1e308, Number.MAX_SAFE_INTEGER, Number.MIN_SAFE_INTEGER, 9.999999999999999e22);
const anyDouble = fc.double({ noNaN: true, noDefaultInfinity: true });
const fraction = fc.double({ min: -1e9, max: 1e9, noNaN: true }).filter((n) => !Number.isInteger(n));

/** Any JSON value that is not a string (never null: null is added where it is invalid). */
const nonString = fc.oneof(fc.integer(), anyDouble, hugeNumber, fc.boolean(), someArray, someObject);
/** Any JSON value that is not a boolean. */
const nonBoolean = fc.oneof(fc.integer(), anyDouble, fc.constantFrom('true', 'false', 'TRUE', '1', '0', 'yes', 'no', 'on', ''), someArray, someObject);
const anyJson = fc.oneof(shortString, fc.integer(), anyDouble, fc.boolean(), fc.constant(null), someArray, someObject);

const nullIf = (invalid: boolean) => (invalid ? [fc.constant(null)] : []);

/** Strings longer than `max` (now and then far over the 100 kB body limit). */
const overLong = (max: number, unit = 'a') =>
  fc.oneof(
    { arbitrary: fc.integer({ min: max + 1, max: max + 300 }).map((n) => unit.repeat(n)), weight: 8 },
    { arbitrary: fc.integer({ min: max + 1, max: max + 300 }).map((n) => '가'.repeat(n)), weight: 3 },
    { arbitrary: fc.constant('a'.repeat(150_000)), weight: 1 },
  );

/** A short string with a NUL in it: never storable in PostgreSQL text or jsonb. */
const withNul = fc.tuple(fc.string({ maxLength: 4 }), fc.string({ maxLength: 4 })).map(([a, b]) => `x${a}\u0000${b}`);
/** A short string with some control character in it. */
const withControl = fc.tuple(fc.string({ maxLength: 4 }), fc.constantFrom(...CONTROL_CHARS), fc.string({ maxLength: 4 })).map(([a, c, b]) => `x${a}${c}${b}`);
const blank = fc.constantFrom('', ' ', '   ', '\t', '\n', ' \r\n ');

interface FieldSpec {
  valid: fc.Arbitrary<unknown>;
  invalid: fc.Arbitrary<unknown>;
  required?: boolean;
}

interface TextOpts {
  required?: boolean;
  /** null is refused (a required field, or a PATCH of a field that cannot be cleared). */
  nullInvalid?: boolean;
  /** Refuses blank text and control characters (IsPlainText). */
  plain?: boolean;
  extra?: fc.Arbitrary<unknown>[];
}

/** A string field of at most `max` characters. */
function text(valid: fc.Arbitrary<unknown>, max: number, o: TextOpts = {}): FieldSpec {
  return {
    required: o.required,
    valid,
    invalid: fc.oneof(
      nonString,
      ...nullIf(Boolean(o.required || o.nullInvalid)),
      overLong(max),
      withNul,
      ...(o.plain ? [blank, withControl] : []),
      ...(o.extra ?? []),
    ),
  };
}

/** A string that must match a format (ids, card data, phone numbers): wrong formats, types, lengths, control characters. */
function formatted(
  valid: fc.Arbitrary<unknown>,
  badFormats: fc.Arbitrary<unknown>,
  o: { required?: boolean; nullInvalid?: boolean; max?: number } = {},
): FieldSpec {
  return {
    required: o.required,
    valid,
    invalid: fc.oneof(nonString, ...nullIf(Boolean(o.required || o.nullInvalid)), badFormats, overLong(o.max ?? 64, '1'), withNul, withControl, blank),
  };
}

function integer(valid: fc.Arbitrary<number>, min: number, max: number, o: { required?: boolean; nullInvalid?: boolean } = {}): FieldSpec {
  return {
    required: o.required,
    valid,
    invalid: fc.oneof(
      fraction,
      fc.integer({ min: max + 1 }),
      hugeNumber,
      fc.integer({ min: -1_000_000_000, max: min - 1 }),
      fc.integer({ min, max }).map(String),
      fc.constantFrom('11000', '1e3', '0x10', '', 'NaN', 'Infinity', '1,000', '１０００'),
      fc.boolean(),
      fc.integer({ min, max }).map((n) => [n]),
      fc.integer({ min, max }).map((n) => ({ value: n })),
      ...nullIf(Boolean(o.required || o.nullInvalid)),
    ),
  };
}

function boolean(o: { required?: boolean; nullInvalid?: boolean } = {}): FieldSpec {
  return { required: o.required, valid: fc.boolean(), invalid: fc.oneof(nonBoolean, ...nullIf(Boolean(o.required || o.nullInvalid))) };
}

function oneOf(values: string[], o: { required?: boolean; nullInvalid?: boolean } = {}): FieldSpec {
  const near = values
    .flatMap((v) => [v.toUpperCase(), v[0].toUpperCase() + v.slice(1), ` ${v}`, `${v} `, `${v}s`, `${v}\u0000`])
    .filter((v) => !values.includes(v));
  return {
    required: o.required,
    valid: fc.constantFrom(...values),
    invalid: fc.oneof(
      fc.constantFrom(...near),
      fc.string({ maxLength: 12 }).filter((s) => !values.includes(s)),
      nonString,
      fc.constant(values),
      overLong(40),
      ...nullIf(Boolean(o.required || o.nullInvalid)),
    ),
  };
}

const badUuid = fc.oneof(
  fc.constantFrom(
    'abc',
    '1',
    '0',
    'null',
    "' OR '1'='1",
    '00000000-0000-0000-0000-00000000000g',
    '{00000000-0000-4000-8000-000000000000}',
    '00000000-0000-4000-8000-0000000000001',
    ' 00000000-0000-4000-8000-000000000000',
    '00000000_0000_4000_8000_000000000000',
    '------------------------------------',
  ),
  fc.uuid().map((u) => u.replace(/-/g, '')),
  fc.uuid().map((u) => `${u}x`),
  fc.uuid().map((u) => u.slice(1)),
  fc.string({ minLength: 1, maxLength: 40 }).filter((s) => !UUID_RE.test(s)),
);

function uuidField(valid: () => string, o: { required?: boolean; semantic?: fc.Arbitrary<string> } = {}): FieldSpec {
  return {
    required: o.required,
    valid: fc.constant(null).map(() => valid()),
    invalid: fc.oneof(
      badUuid,
      nonString,
      ...nullIf(Boolean(o.required)),
      fc.uuid().map((u) => [u]),
      withNul,
      // A well-formed UUID of nothing (404 or 422).
      fc.uuid(),
      ...(o.semantic ? [o.semantic] : []),
    ),
  };
}

const BAD_ISO = [
  'tomorrow',
  'now',
  '',
  '2026-13-01T00:00:00Z',
  '2026-02-30T00:00:00Z',
  '2026-01-15T25:00:00Z',
  '2026-01-15T01:00:60Z',
  '15/01/2026',
  '2026/01/15',
  'Thu, 15 Jan 2026 01:00:00 GMT',
  '1768438800000',
  '2026-01-15T01:00:00+24:00',
  '2026-01-15T01:00:00ZZ',
];
/** Instants JavaScript reads but the service cannot run at (PostgreSQL has no year 0; periods run past 9999). */
const OUT_OF_RANGE_ISO = ['9999-12-31T23:59:59Z', '0000-01-01T00:00:00Z', '0001-01-01T00:00:00Z', '9500-06-01T00:00:00Z', '1900-01-01T00:00:00Z'];
/** ISO-8601 forms that class-validator accepts but JavaScript's Date cannot read (Invalid Date). */
const UNREADABLE_ISO = [
  '+2026-01-15T00:00:00Z',
  '-2026-01-15T00:00:00Z',
  '2026-W03',
  '2026-W03-4T01:00:00Z',
  '2026-015',
  '20260115T010000Z',
  '2026-01-15T01:00:00,5Z',
  '2026-01-15T01',
];

function isoField(o: { required?: boolean; extra?: string[] } = {}): FieldSpec {
  return {
    required: o.required,
    valid: fc.constant('2026-03-01T00:00:00+09:00'),
    invalid: fc.oneof(
      fc.constantFrom(...BAD_ISO, ...UNREADABLE_ISO, ...(o.extra ?? [])),
      fc.integer(),
      fc.boolean(),
      someArray,
      someObject,
      withNul,
      overLong(40, '2'),
      ...nullIf(Boolean(o.required)),
    ),
  };
}

/** Metadata: a flat object of at most 20 string values (keys 1-40 of [A-Za-z0-9_], values up to 500 characters). */
function metadataField(o: { nullInvalid?: boolean } = {}): FieldSpec {
  return {
    valid: fc.constant({ team: 'growth' }),
    invalid: fc.oneof(
      shortString,
      fc.integer(),
      fc.boolean(),
      someArray,
      fc.constant([{ team: 'growth' }]),
      fc.constant({ a: { b: 'c' } }),
      fc.constant({ a: ['b'] }),
      fc.integer().map((n) => ({ a: n })),
      fc.constant({ a: null }),
      fc.constant({ a: true }),
      fc.constant(Object.fromEntries(Array.from({ length: 21 }, (_, i) => [`k${i}`, 'v']))),
      fc.constantFrom('a-b', '', 'a b', 'k'.repeat(41), 'ключ', 'a.b').map((k) => ({ [k]: 'v' })),
      fc.integer({ min: 501, max: 800 }).map((n) => ({ a: 'v'.repeat(n) })),
      withNul.map((v) => ({ a: v })),
      ...nullIf(Boolean(o.nullInvalid)),
    ),
  };
}

// ------------------------------------------------------------------------------------------------ corrupting bodies

type Op = { kind: 'invalid'; field: string; value: unknown } | { kind: 'drop'; field: string } | { kind: 'unknown'; name: string; value: unknown };

interface BodyRoute {
  name: string;
  method: 'POST' | 'PATCH';
  path: () => string;
  /** The same route with another id, when it has one. */
  pathWithId?: (id: string) => string;
  role: Role;
  fields: Record<string, FieldSpec>;
  /** Whole bodies that are invalid as a whole (a reference that does not fit, an amount over the balance). */
  semantic?: () => fc.Arbitrary<Body>;
  /** Bootpay's webhook: any other field is allowed and ignored. */
  allowUnknown?: boolean;
  /** A body that is valid in every way (for header and path-id corruptions). */
  validBody: () => Body;
}

const UNKNOWN_NAMES = [
  'id',
  'status',
  'created_at',
  'updated_at',
  'role',
  'is_admin',
  'amount',
  'customer_id',
  'external_id',
  'secret',
  'price',
  'toString',
  'hasOwnProperty',
  'valueOf',
];

function unknownName(known: string[]) {
  return fc
    .oneof(fc.constantFrom(...UNKNOWN_NAMES), fc.string({ minLength: 1, maxLength: 20 }))
    .filter((n) => !known.includes(n) && n !== '__proto__' && n !== 'constructor');
}

/** Sets a key even when it is named like an Object.prototype member. */
function setKey(body: Body, key: string, value: unknown) {
  Object.defineProperty(body, key, { value, enumerable: true, writable: true, configurable: true });
}

function corruptedBody(route: BodyRoute): fc.Arbitrary<{ body: Body; why: string }> {
  const names = Object.keys(route.fields);
  const required = names.filter((n) => route.fields[n].required);
  const base = names.length
    ? fc.record(Object.fromEntries(names.map((n) => [n, route.fields[n].valid])) as Record<string, fc.Arbitrary<unknown>>, { requiredKeys: required })
    : fc.constant({} as Record<string, unknown>);
  const ops: fc.Arbitrary<Op>[] = [];
  for (const n of names) ops.push(route.fields[n].invalid.map((value): Op => ({ kind: 'invalid', field: n, value })));
  for (const n of required) ops.push(fc.constant<Op>({ kind: 'drop', field: n }));
  if (!route.allowUnknown) ops.push(fc.tuple(unknownName(names), anyJson).map(([name, value]): Op => ({ kind: 'unknown', name, value })));
  const noise = route.allowUnknown
    ? fc.dictionary(
        fc.string({ minLength: 1, maxLength: 10 }).filter((k) => !names.includes(k) && k !== '__proto__'),
        anyJson,
        { maxKeys: 4 },
      )
    : fc.constant({});
  const byFields = fc.tuple(base, noise, fc.array(fc.oneof(...ops), { minLength: 1, maxLength: 3 })).map(([b, extra, list]) => {
    const body: Body = { ...extra, ...b };
    for (const op of list) {
      if (op.kind === 'invalid') setKey(body, op.field, op.value);
      else if (op.kind === 'drop') delete body[op.field];
      else setKey(body, op.name, op.value);
    }
    const why = list
      .map((op) => (op.kind === 'invalid' ? `invalid ${op.field}` : op.kind === 'drop' ? `missing ${op.field}` : `unknown field ${JSON.stringify(op.name)}`))
      .join(', ');
    return { body, why };
  });
  if (!route.semantic) return byFields;
  return fc.oneof({ arbitrary: byFields, weight: 5 }, { arbitrary: route.semantic().map((body) => ({ body, why: 'semantically invalid body' })), weight: 1 });
}

/** Bodies that are not a JSON object at all: malformed JSON, JSON arrays and scalars, other content types. */
function nonObjectBody(validBody: () => Body): fc.Arbitrary<{ body: string | Uint8Array; contentType?: string; why: string; expect: number }> {
  const malformed = fc.oneof(
    fc.constantFrom('{', '{"a":', '{"a":1,}', "{'a':1}", '{a:1}', 'NaN', 'undefined', '{"a":1}}', '{"a":"\\x"}', '\u0000', '{"a":01}', '[1,]', 'nul'),
    // Every proper prefix of a JSON object's text is malformed.
    fc.integer({ min: 1, max: 10_000 }).map((n) => {
      const json = JSON.stringify(validBody());
      return json.slice(0, 1 + (n % (json.length - 1)));
    }),
  );
  return fc.oneof(
    malformed.map((body) => ({ body, why: `malformed JSON ${JSON.stringify(body).slice(0, 60)}`, expect: 400 })),
    fc
      .oneof(
        fc.constantFrom('[]', '[{}]', '1', '0', '-1.5', '"text"', 'true', 'false', 'null', '""'),
        someArray.map((a) => JSON.stringify(a)),
      )
      .map((body) => ({ body, why: `JSON ${body} as the body`, expect: 400 })),
    fc
      .constantFrom(
        'text/plain',
        'application/x-www-form-urlencoded',
        'multipart/form-data; boundary=x',
        'application/xml',
        'text/json',
        'application/vnd.api+json',
        'application/octet-stream',
        'image/png',
      )
      .map((contentType) => ({ body: JSON.stringify(validBody()), contentType, why: `valid JSON sent as ${contentType}`, expect: 415 })),
    fc.constant(null).map(() => ({ body: new Uint8Array(Buffer.from(JSON.stringify(validBody()))), why: 'valid JSON without a Content-Type', expect: 415 })),
    // Nested far deeper than any body of this API: refused before validation (which would overflow its stack).
    fc.tuple(fc.integer({ min: 33, max: 5000 }), fc.boolean()).map(([depth, arrays]) => {
      const inner = arrays ? `${'['.repeat(depth)}1${']'.repeat(depth)}` : `${'{"a":'.repeat(depth)}1${'}'.repeat(depth)}`;
      return { body: `{"x":${inner}}`, why: `JSON nested ${depth + 1} deep`, expect: 400 };
    }),
  );
}

// ------------------------------------------------------------------------------------------------ the suite

describe('Fuzzing: malformed input gets a 4xx in the common error shape and stores nothing', () => {
  let t: TestApp;
  const F = {} as Fixtures;
  let fingerprintSql = '';
  /** The served OpenAPI document: every answer the fuzzing gets must be one it lists, in the shape it gives. */
  let contract: OpenApiContract;

  const keyFor = (role: Role) => (role === 'admin' ? `Bearer ${t.adminKey}` : role === 'service' ? `Bearer ${t.serviceKey}` : null);

  async function send(r: Req): Promise<Res> {
    const headers: Record<string, string> = { ...r.headers };
    if (r.authorization !== null) headers.Authorization = r.authorization;
    if (typeof r.body === 'string') headers['Content-Type'] = r.contentType ?? 'application/json';
    const res = await fetch(t.url + r.path, { method: r.method, headers, body: r.body });
    const textBody = await res.text();
    let body: unknown;
    try {
      body = JSON.parse(textBody);
    } catch {
      body = undefined;
    }
    const drift = contract.check(r.method, r.path, res.status, body);
    if (drift.length)
      throw new Error(
        `the answer is not in the OpenAPI document: ${describeReq(r)} -> ${res.status} ${textBody.slice(0, 200)}\n  ${drift.slice(0, 5).join('\n  ')}`,
      );
    return { status: res.status, text: textBody, body };
  }

  function describeReq(r: Req): string {
    const body = r.body === undefined ? '' : typeof r.body === 'string' ? r.body : Buffer.from(r.body).toString();
    const shown = body.length > 300 ? `${body.slice(0, 300)}…(${body.length} chars)` : body;
    const headers = Object.entries(r.headers ?? {})
      .map(([k, v]) => `${k}: ${JSON.stringify(v).slice(0, 80)}`)
      .join(', ');
    return `${r.method} ${r.path.slice(0, 200)} [${r.why}]${r.contentType ? ` Content-Type: ${r.contentType}` : ''}${headers ? ` ${headers}` : ''} ${shown}`;
  }

  /** The answer is a 4xx in the common error shape; a 400 names at least one field. */
  function assertRefused(res: Res, r: Req, o: { status?: number[]; field?: string } = {}) {
    const where = () => `${describeReq(r)}\n  -> ${res.status} ${res.text.slice(0, 400)}`;
    if (res.status >= 500) throw new Error(`5xx for bad input: ${where()}`);
    if (res.status < 400) throw new Error(`bad input was accepted: ${where()}`);
    const b = res.body as Record<string, unknown> | undefined;
    if (!b || typeof b !== 'object' || Array.isArray(b)) throw new Error(`error body is not a JSON object: ${where()}`);
    if (b.status_code !== res.status) throw new Error(`status_code ${String(b.status_code)} differs from HTTP ${res.status}: ${where()}`);
    for (const k of ['error', 'message', 'code'] as const) {
      if (typeof b[k] !== 'string' || !(b[k] as string).length) throw new Error(`error body has no ${k}: ${where()}`);
    }
    if (!Array.isArray(b.details)) throw new Error(`error body has no details array: ${where()}`);
    for (const d of b.details as unknown[]) {
      const dd = d as { field?: unknown; message?: unknown };
      if (!dd || typeof dd.field !== 'string' || !dd.field || typeof dd.message !== 'string' || !dd.message) {
        throw new Error(`a detail is not {field, message}: ${where()}`);
      }
    }
    if (res.status === 400 && b.details.length === 0) throw new Error(`a 400 without field details: ${where()}`);
    if (o.status && !o.status.includes(res.status)) throw new Error(`expected ${o.status.join(' or ')}: ${where()}`);
    const names = (d: { field: string }) => d.field === o.field || d.field.startsWith(`${o.field}.`);
    if (o.field && !(b.details as { field: string }[]).some(names)) throw new Error(`details do not name ${o.field}: ${where()}`);
  }

  function ledgerSizes(): Record<string, number> {
    const ledger = t.fake.ledger() as unknown as Record<string, unknown[]>;
    return Object.fromEntries(Object.entries(ledger).map(([k, v]) => [k, Array.isArray(v) ? v.length : -1]));
  }

  /** Row count and content hash of every business table, and the sizes of the fake Bootpay's ledger. */
  async function snapshot() {
    const rows: { t: string; n: number; h: string }[] = (await t.db.query(fingerprintSql)).rows;
    return { tables: Object.fromEntries(rows.map((r) => [r.t, `${r.n}:${r.h}`])), ledger: ledgerSizes() };
  }

  function diff(a: Record<string, unknown>, b: Record<string, unknown>): string[] {
    return [...new Set([...Object.keys(a), ...Object.keys(b)])].filter((k) => a[k] !== b[k]);
  }

  /** Whether some request was answered 2xx/3xx since the last settle(). */
  let accepted = true;
  /** Waits for what an earlier (wrongly accepted) request may have set going: a charge run, Bootpay's webhooks. */
  async function settle() {
    if (!accepted) return;
    accepted = false;
    for (let i = 0; i < 150; i++) {
      if (!(await t.db.query('SELECT 1 FROM charge_runs WHERE finished_at IS NULL LIMIT 1')).rows.length) break;
      await new Promise((r) => setTimeout(r, 20));
    }
    await t.fake.webhooksIdle();
  }

  /** One request: refused with a 4xx, and nothing changed in any table or at Bootpay. */
  async function checkRefused(r: Req, o: { status?: number[]; field?: string } = {}) {
    await settle();
    const before = await snapshot();
    const res = await send(r);
    if (res.status < 400) accepted = true;
    const after = await snapshot();
    const changed = [...diff(before.tables, after.tables).map((x) => `table ${x}`), ...diff(before.ledger, after.ledger).map((x) => `Bootpay ledger ${x}`)];
    const problems: string[] = [];
    try {
      assertRefused(res, r, o);
    } catch (e) {
      problems.push((e as Error).message);
    }
    if (changed.length) problems.push(`the request changed ${changed.join(', ')}: ${describeReq(r)} -> ${res.status}`);
    if (problems.length) throw new Error(problems.join('\n  and '));
  }

  /** Runs a property over requests; the table counts and the ledger are the same at the end. */
  async function fuzz(arb: fc.Arbitrary<Req>, check: (r: Req) => Promise<void> = (r) => checkRefused(r), numRuns = RUNS) {
    await settle();
    const counts = await tableCounts(t.db);
    const ledger = ledgerSizes();
    await fc.assert(fc.asyncProperty(arb, check), { numRuns: Number(process.env.FUZZ_RUNS ?? numRuns) });
    await settle();
    expect(await tableCounts(t.db)).toEqual(counts);
    expect(ledgerSizes()).toEqual(ledger);
  }

  beforeAll(async () => {
    t = await startTestApp();
    contract = new OpenApiContract((await t.http.get('/docs/openapi.json')).body);
    const endpoint = await t.http.post('/v1/webhook-endpoints').set(bearer(t.adminKey)).send({ url: 'https://fuzz.example.com/hooks', description: 'fuzz' });
    if (endpoint.status !== 201) throw new Error(`webhook endpoint: ${endpoint.status} ${JSON.stringify(endpoint.body)}`);
    F.endpointId = endpoint.body.id;
    const customer = await createCustomer(t);
    F.customerId = customer.id;
    F.keyId = (await createBillingKey(t, customer.id)).id;
    const other = await createCustomer(t);
    F.otherCustomerId = other.id;
    F.otherKeyId = (await createBillingKey(t, other.id, { card_no: '5555444433331111' })).id;
    F.planId = (await createPlan(t, { name: 'Fuzz monthly', amount: 11000 })).id;
    F.otherPlanId = (await createPlan(t, { name: 'Fuzz yearly', amount: 110000, interval: 'year' })).id;
    F.inactivePlanId = (await createPlan(t, { name: 'Fuzz retired', amount: 5000 })).id;
    const off = await t.http.patch(`/v1/plans/${F.inactivePlanId}`).set(bearer(t.adminKey)).send({ active: false });
    if (off.status !== 200) throw new Error(`deactivate plan: ${off.status}`);
    const sub = await createSubscription(t, { customer_id: F.customerId, plan_id: F.planId, billing_key_id: F.keyId });
    F.subId = sub.id;
    await t.fake.webhooksIdle();
    const payments = await t.http.get(`/v1/payments?subscription_id=${F.subId}`).set(bearer(t.adminKey));
    const payment = payments.body.data[0];
    if (!payment || payment.status !== 'DONE' || !payment.receipt_id) throw new Error(`payment: ${JSON.stringify(payments.body)}`);
    F.paymentId = payment.id;
    F.receiptId = payment.receipt_id;
    const deliveries = await t.http.get(`/v1/webhook-endpoints/${F.endpointId}/deliveries`).set(bearer(t.adminKey));
    if (!deliveries.body.data?.length) throw new Error(`deliveries: ${JSON.stringify(deliveries.body)}`);
    F.deliveryId = deliveries.body.data[0].id;

    const tables = Object.keys(await tableCounts(t.db));
    fingerprintSql = tables
      .map((name) => `SELECT '${name}' AS t, count(*)::int AS n, md5(coalesce(string_agg(x::text, '|' ORDER BY x::text), '')) AS h FROM "${name}" x`)
      .join(' UNION ALL ');
    // Let anything the fixtures set going settle, so that every later change is the fuzzing's.
    for (let i = 0; i < 20; i++) {
      const a = await snapshot();
      await new Promise((r) => setTimeout(r, 100));
      await t.fake.webhooksIdle();
      if (JSON.stringify(a) === JSON.stringify(await snapshot())) break;
    }
  }, 120_000);

  afterAll(async () => {
    await t?.close();
  });

  afterEach(() => {
    // A wrongly accepted POST /v1/test/clock must not shift the rest of the file.
    t.clock.set(T0);
  });

  // ---------------------------------------------------------------------------------------------- routes with a body

  const customerFields = (patch: boolean): Record<string, FieldSpec> => ({
    ...(patch
      ? {}
      : {
          external_id: formatted(
            fc.uuid().map((u) => `fz_${u}`),
            fc.oneof(
              fc.constantFrom('a b', 'a/b', 'a#b', '한글', 'a,b', "a'b"),
              fc.string({ minLength: 1, maxLength: 20 }).filter((s) => !/^[A-Za-z0-9._:@-]+$/.test(s)),
            ),
            { required: true, max: 128 },
          ),
        }),
    name: text(fc.constantFrom('홍길동', 'Kim Chul-soo'), 100, { required: !patch, nullInvalid: true, plain: true }),
    email: formatted(fc.constant('fz@example.com'), fc.constantFrom('not-mail', 'a@', '@b.com', 'a@b', 'a b@example.com', 'a@@example.com'), { max: 320 }),
    phone: formatted(fc.constant('010-1234-5678'), fc.constantFrom('12345', '010-1234-56789', 'phone', '+1-202-555-0100', '010 1234 5678', '0101234567890'), {
      max: 20,
    }),
    metadata: metadataField({ nullInvalid: patch }),
  });

  const cardFields: Record<string, FieldSpec> = {
    pg: text(fc.constant('nicepay'), 40, { required: true, nullInvalid: true, extra: [fc.constant('')] }),
    card_no: formatted(
      fc.constant('4242424242424242'),
      fc.constantFrom('4242', '42424242424242424', '4242-4242-4242-4242', '4242 4242 4242 4242', 'abcdabcdabcdabcd'),
      { required: true },
    ),
    card_pw: formatted(fc.constant('12'), fc.constantFrom('1', '123', 'ab', '1a'), { required: true }),
    card_expire_year: formatted(fc.constant('30'), fc.constantFrom('2030', '3', 'ab', '3a'), { required: true }),
    card_expire_month: formatted(fc.constant('12'), fc.constantFrom('00', '13', '1', '012', 'ab', '99'), { required: true }),
    card_identity_no: formatted(fc.constant('900101'), fc.constantFrom('90010', '9001011', '12345678901', 'abcdef', '900101-1234567'), { required: true }),
  };

  const reasonField = (required: boolean) => text(fc.constantFrom('fuzz', '고객 요청'), 500, { required, nullInvalid: required, plain: true });

  const routes: BodyRoute[] = [
    {
      name: 'POST /v1/customers',
      method: 'POST',
      path: () => '/v1/customers',
      role: 'service',
      fields: customerFields(false),
      validBody: () => ({ external_id: `fz_valid_${Math.random().toString(36).slice(2)}`, name: 'Fuzz' }),
    },
    {
      name: 'PATCH /v1/customers/:id',
      method: 'PATCH',
      path: () => `/v1/customers/${F.customerId}`,
      pathWithId: (id) => `/v1/customers/${id}`,
      role: 'service',
      fields: customerFields(true),
      validBody: () => ({ name: 'Renamed' }),
    },
    {
      name: 'POST /v1/customers/:id/billing-keys',
      method: 'POST',
      path: () => `/v1/customers/${F.customerId}/billing-keys`,
      pathWithId: (id) => `/v1/customers/${id}/billing-keys`,
      role: 'service',
      fields: {
        ...cardFields,
        receipt_id: formatted(
          fc.constant('0123456789abcdef01234567'),
          fc.constantFrom('abc', 'a'.repeat(65), 'abc def ghi', 'abc/def/ghi', '../../etc'),
          // null is not "no receipt_id": it must not switch the card checks off.
          { nullInvalid: true },
        ),
      },
      semantic: () =>
        fc.oneof(
          // receipt_id together with card data.
          fc.constant({ receipt_id: '0123456789abcdef01234567', card_no: '4242424242424242' }),
          // An explicit null receipt_id with or without (bad) card data.
          fc.constant({ receipt_id: null }),
          fc.constant({ receipt_id: null, card_no: 'not-a-card' }),
        ),
      validBody: () => ({
        pg: 'nicepay',
        card_no: '4242424242424242',
        card_pw: '12',
        card_expire_year: '30',
        card_expire_month: '12',
        card_identity_no: '900101',
      }),
    },
    {
      name: 'POST /v1/plans',
      method: 'POST',
      path: () => '/v1/plans',
      role: 'service',
      fields: {
        name: text(fc.constant('Fuzz plan'), 100, { required: true, plain: true }),
        description: text(fc.constant('desc'), 1000, {}),
        amount: integer(fc.constant(11000), 1, 100_000_000, { required: true }),
        tax_free_amount: integer(fc.constant(0), 0, 100_000_000),
        currency: oneOf(['KRW']),
        interval: oneOf(['day', 'week', 'month', 'year'], { required: true }),
        interval_count: integer(fc.constant(1), 1, 3650),
        trial_days: integer(fc.constant(0), 0, 730),
        charge_mode: oneOf(['scheduler', 'reservation']),
      },
      semantic: () =>
        fc.oneof(
          fc
            .integer({ min: 1, max: 99_999_999 })
            .chain((amount) => fc.integer({ min: amount + 1, max: 100_000_000 }).map((tf) => ({ name: 'p', amount, tax_free_amount: tf, interval: 'month' }))),
          fc
            .constantFrom<[string, number]>(['week', 520], ['month', 120], ['year', 10])
            .chain(([interval, max]) => fc.integer({ min: max + 1, max: 3650 }).map((n) => ({ name: 'p', amount: 1000, interval, interval_count: n }))),
        ),
      validBody: () => ({ name: 'Fuzz valid', amount: 1000, interval: 'month' }),
    },
    {
      name: 'PATCH /v1/plans/:id',
      method: 'PATCH',
      path: () => `/v1/plans/${F.planId}`,
      pathWithId: (id) => `/v1/plans/${id}`,
      role: 'service',
      fields: {
        name: text(fc.constant('Renamed plan'), 100, { nullInvalid: true, plain: true }),
        description: text(fc.constant('new description'), 1000, {}),
        active: boolean({ nullInvalid: true }),
      },
      semantic: () =>
        // The price never changes: amount and the other price fields are not fields of a PATCH.
        fc.constantFrom(
          { amount: 12000 },
          { tax_free_amount: 0 },
          { interval: 'year' },
          { currency: 'KRW' },
          { trial_days: 7 },
          { charge_mode: 'reservation' },
        ),
      validBody: () => ({ description: 'still the same' }),
    },
    {
      name: 'POST /v1/subscriptions',
      method: 'POST',
      path: () => '/v1/subscriptions',
      role: 'service',
      fields: {
        customer_id: uuidField(() => F.customerId, { required: true }),
        plan_id: uuidField(() => F.planId, { required: true, semantic: fc.constant(null).map(() => F.inactivePlanId) }),
        billing_key_id: uuidField(() => F.keyId, { required: true, semantic: fc.constant(null).map(() => F.otherKeyId) }),
        start_at: isoField({ extra: ['2020-01-01T00:00:00Z', '2026-01-01T00:00:00+09:00', '2030-01-01T00:00:00Z', '2099-12-31T23:59:59Z'] }),
        metadata: metadataField(),
      },
      validBody: () => ({ customer_id: F.customerId, plan_id: F.planId, billing_key_id: F.keyId }),
    },
    {
      name: 'POST /v1/subscriptions/:id/cancel',
      method: 'POST',
      path: () => `/v1/subscriptions/${F.subId}/cancel`,
      pathWithId: (id) => `/v1/subscriptions/${id}/cancel`,
      role: 'service',
      fields: { at_period_end: boolean({ required: true }), reason: reasonField(true) },
      validBody: () => ({ at_period_end: true, reason: 'fuzz' }),
    },
    {
      name: 'POST /v1/subscriptions/:id/reactivate',
      method: 'POST',
      path: () => `/v1/subscriptions/${F.subId}/reactivate`,
      pathWithId: (id) => `/v1/subscriptions/${id}/reactivate`,
      role: 'service',
      fields: { reason: reasonField(false) },
      validBody: () => ({ reason: 'fuzz' }),
    },
    {
      name: 'POST /v1/subscriptions/:id/pause',
      method: 'POST',
      path: () => `/v1/subscriptions/${F.subId}/pause`,
      pathWithId: (id) => `/v1/subscriptions/${id}/pause`,
      role: 'admin',
      fields: { reason: reasonField(true), resume_at: isoField({ extra: ['2020-01-01T00:00:00Z', '2026-01-15T00:00:00Z'] }) },
      validBody: () => ({ reason: 'fuzz', resume_at: '2026-03-01T00:00:00+09:00' }),
    },
    {
      name: 'POST /v1/subscriptions/:id/resume',
      method: 'POST',
      path: () => `/v1/subscriptions/${F.subId}/resume`,
      pathWithId: (id) => `/v1/subscriptions/${id}/resume`,
      role: 'admin',
      fields: { reason: reasonField(false) },
      validBody: () => ({ reason: 'fuzz' }),
    },
    {
      name: 'POST /v1/subscriptions/:id/change-plan',
      method: 'POST',
      path: () => `/v1/subscriptions/${F.subId}/change-plan`,
      pathWithId: (id) => `/v1/subscriptions/${id}/change-plan`,
      role: 'service',
      fields: {
        plan_id: uuidField(() => F.otherPlanId, { required: true, semantic: fc.constant(null).map(() => F.inactivePlanId) }),
        proration: oneOf(['now', 'period_end'], { required: true }),
        reason: reasonField(false),
      },
      validBody: () => ({ plan_id: F.otherPlanId, proration: 'period_end' }),
    },
    {
      name: 'POST /v1/subscriptions/:id/billing-key',
      method: 'POST',
      path: () => `/v1/subscriptions/${F.subId}/billing-key`,
      pathWithId: (id) => `/v1/subscriptions/${id}/billing-key`,
      role: 'service',
      fields: {
        billing_key_id: uuidField(() => F.keyId, { required: true, semantic: fc.constant(null).map(() => F.otherKeyId) }),
        reason: reasonField(false),
      },
      validBody: () => ({ billing_key_id: F.keyId }),
    },
    {
      name: 'POST /v1/subscriptions/:id/retry',
      method: 'POST',
      path: () => `/v1/subscriptions/${F.subId}/retry`,
      pathWithId: (id) => `/v1/subscriptions/${id}/retry`,
      role: 'admin',
      fields: {},
      validBody: () => ({}),
    },
    {
      name: 'POST /v1/charge-runs',
      method: 'POST',
      path: () => '/v1/charge-runs',
      role: 'admin',
      fields: { wait: boolean() },
      validBody: () => ({ wait: true }),
    },
    {
      name: 'POST /v1/test/clock',
      method: 'POST',
      path: () => '/v1/test/clock',
      role: 'admin',
      fields: { now: isoField({ required: true, extra: OUT_OF_RANGE_ISO }) },
      validBody: () => ({ now: '2026-01-15T01:00:00.000Z' }),
    },
    {
      name: 'POST /v1/webhook-endpoints',
      method: 'POST',
      path: () => '/v1/webhook-endpoints',
      role: 'admin',
      fields: webhookEndpointFields(false),
      validBody: () => ({ url: 'https://saas.example.com/hooks', events: ['*'] }),
    },
    {
      name: 'PATCH /v1/webhook-endpoints/:id',
      method: 'PATCH',
      path: () => `/v1/webhook-endpoints/${F.endpointId}`,
      pathWithId: (id) => `/v1/webhook-endpoints/${id}`,
      role: 'admin',
      fields: webhookEndpointFields(true),
      validBody: () => ({ description: 'fuzz' }),
    },
    {
      name: 'POST /v1/webhook-endpoints/:id/rotate-secret',
      method: 'POST',
      path: () => `/v1/webhook-endpoints/${F.endpointId}/rotate-secret`,
      pathWithId: (id) => `/v1/webhook-endpoints/${id}/rotate-secret`,
      role: 'admin',
      fields: {},
      validBody: () => ({}),
    },
    {
      name: 'POST /v1/webhook-deliveries/:id/resend',
      method: 'POST',
      path: () => `/v1/webhook-deliveries/${F.deliveryId}/resend`,
      pathWithId: (id) => `/v1/webhook-deliveries/${id}/resend`,
      role: 'admin',
      fields: {},
      validBody: () => ({}),
    },
    {
      name: 'POST /v1/payments/:id/refunds',
      method: 'POST',
      path: () => `/v1/payments/${F.paymentId}/refunds`,
      pathWithId: (id) => `/v1/payments/${id}/refunds`,
      role: 'admin',
      fields: {
        amount: integer(fc.constant(1000), 1, 100_000_000, { nullInvalid: true }),
        tax_free_amount: integer(fc.constant(0), 0, 100_000_000, { nullInvalid: true }),
        reason: reasonField(true),
      },
      semantic: () =>
        fc.oneof(
          // More than the payment's 11 000 won balance.
          fc.integer({ min: 11_001, max: 100_000_000 }).map((amount) => ({ amount, reason: 'too much' })),
          // A tax-free part larger than the refund (the payment has no tax-free part at all).
          fc.integer({ min: 1, max: 5000 }).map((amount) => ({ amount, tax_free_amount: amount + 1, reason: 'tax free' })),
        ),
      validBody: () => ({ amount: 1000, reason: 'fuzz' }),
    },
    {
      name: 'POST /v1/webhooks/bootpay',
      method: 'POST',
      path: () => '/v1/webhooks/bootpay',
      role: 'none',
      allowUnknown: true,
      fields: {
        receipt_id: formatted(
          fc.constant(null).map(() => F.receiptId),
          fc.oneof(
            fc.constantFrom('abc', 'abcde', 'a'.repeat(65), 'abc def ghi', 'abc/def/ghi', '../../etc/passwd', '62b1b0d1d01c7e001d7d8f2a!'),
            fc.string({ maxLength: 70 }).filter((s) => !/^[A-Za-z0-9_-]{6,64}$/.test(s)),
          ),
          { required: true },
        ),
      },
      validBody: () => ({ receipt_id: F.receiptId }),
    },
  ];

  function webhookEndpointFields(patch: boolean): Record<string, FieldSpec> {
    const events = ['*', 'subscription.created', 'payment.succeeded'];
    return {
      url: formatted(
        fc.constant('https://saas.example.com/hooks'),
        fc.oneof(
          fc.constantFrom(
            'ftp://example.com/x',
            'not a url',
            'javascript:alert(1)',
            'http://',
            '//example.com',
            'example.com/hook',
            'file:///etc/passwd',
            'http:// example.com',
          ),
          // Inside the service's network: refused unless OUTBOUND_WEBHOOKS_ALLOW_PRIVATE.
          fc.constantFrom(
            'http://127.0.0.1:5432/',
            'http://localhost:3000/v1/test/clock',
            'http://10.0.0.1/hooks',
            'http://172.20.0.1/hooks',
            'http://192.168.0.10/hooks',
            'http://169.254.169.254/latest/meta-data/',
            'http://0.0.0.0:7070/__fake/reset',
            'http://[::1]/hooks',
            'http://[fc00::1]/hooks',
            'http://[::ffff:10.0.0.1]/hooks',
          ),
          fc
            .ipV4()
            .filter((ip) => /^(10|127|0)\./.test(ip) || ip.startsWith('192.168.') || ip.startsWith('169.254.'))
            .map((ip) => `http://${ip}/hooks`),
        ),
        { required: !patch, nullInvalid: true, max: 2000 },
      ),
      description: text(fc.constant('fuzz endpoint'), 500, {}),
      events: {
        valid: fc.constantFrom(['*'], ['subscription.created', 'payment.succeeded']),
        invalid: fc.oneof(
          fc.constantFrom('*', 'payment.succeeded', 1, true, {}, { 0: '*' }),
          fc.constant([]),
          fc
            .string({ maxLength: 20 })
            .filter((s) => !events.includes(s) && !s.includes('.'))
            .map((s) => [s]),
          fc.constantFrom(['PAYMENT.SUCCEEDED'], ['payment.*'], ['*', 'nope'], [1], [null], [['*']], [{ type: '*' }]),
          fc.constant(Array.from({ length: 21 }, () => '*')),
          ...nullIf(patch),
        ),
      },
      ...(patch ? { active: boolean({ nullInvalid: true }) } : {}),
    };
  }

  describe.each(routes.map((r) => [r.name, r] as const))('%s', (_name, route) => {
    it(
      'should refuse corrupted bodies with a 4xx naming the field, and store nothing',
      async () => {
        const arb = corruptedBody(route).map(({ body, why }): Req => ({
          method: route.method,
          path: route.path(),
          body: JSON.stringify(body),
          authorization: keyFor(route.role),
          why,
        }));
        await fuzz(arb);
      },
      PROPERTY_TIMEOUT,
    );

    it(
      'should refuse bodies that are not a JSON object (malformed, arrays, scalars, other content types)',
      async () => {
        const arb = nonObjectBody(route.validBody).map(({ body, contentType, why, expect: status }): Req & { expect: number } => ({
          method: route.method,
          path: route.path(),
          body,
          contentType,
          authorization: keyFor(route.role),
          why,
          expect: status,
        }));
        await fuzz(arb, async (r) => checkRefused(r, { status: [(r as Req & { expect: number }).expect], field: 'body' }));
      },
      PROPERTY_TIMEOUT,
    );

    if (route.pathWithId) {
      const pathWithId = route.pathWithId;
      it(
        'should refuse a path id that is not a UUID with 400 naming id, even with a valid body',
        async () => {
          const arb = fc
            .tuple(
              badUuid.filter((s) => s !== '.' && s !== '..'),
              fc.boolean(),
            )
            .map(([id, valid]): Req => ({
              method: route.method,
              path: pathWithId(encodeURIComponent(id)),
              body: valid ? JSON.stringify(route.validBody()) : '{}',
              authorization: keyFor(route.role),
              why: `path id ${JSON.stringify(id)}`,
            }));
          await fuzz(arb, (r) => checkRefused(r, { status: [400], field: 'id' }));
        },
        PROPERTY_TIMEOUT,
      );

      it(
        'should answer 404 for a well-formed UUID of nothing, with a valid body, and store nothing',
        async () => {
          const arb = fc.uuid().map((id): Req => ({
            method: route.method,
            path: pathWithId(id),
            body: JSON.stringify(route.validBody()),
            authorization: keyFor(route.role),
            why: 'unknown id',
          }));
          await fuzz(arb, (r) => checkRefused(r, { status: [404] }), 10);
        },
        PROPERTY_TIMEOUT,
      );
    }
  });

  // ---------------------------------------------------------------------------------------------- headers

  const authenticated = routes.filter((r) => r.role !== 'none');

  it(
    'should refuse a missing or bad Authorization header with 401 (403 for the service key on admin routes), even with a valid body',
    async () => {
      // 'service' stands for the service key, which is refused (403) on admin routes only.
      const badAuth = fc.oneof(
        fc.constantFrom<string | null>(
          null,
          '',
          'Bearer',
          'Bearer ',
          'Basic dXNlcjpwYXNz',
          'Token abc',
          'bsk_admin_x',
          'Bearer bsk_admin_not-a-real-key-0000000000',
          'Bearer a b',
        ),
        fc.stringMatching(/^[!-~]{1,60}$/).map((s) => `Bearer ${s}`),
      );
      const adminRoutes = authenticated.filter((r) => r.role === 'admin');
      const arb = fc
        .oneof(
          fc.tuple(fc.constantFrom(...authenticated), badAuth).map(([route, auth]) => ({ route, authorization: auth, forbidden: false })),
          fc.constantFrom(...adminRoutes).map((route) => ({ route, authorization: 'service' as string | null, forbidden: true })),
        )
        .map(({ route, authorization, forbidden }): Req & { forbidden: boolean } => ({
          method: route.method,
          path: route.path(),
          body: JSON.stringify(route.validBody()),
          authorization: forbidden ? `Bearer ${t.serviceKey}` : authorization,
          why: forbidden ? 'service key on an admin route' : `Authorization ${JSON.stringify(authorization)}`,
          forbidden,
        }));
      await fuzz(arb, (r) => checkRefused(r, { status: [(r as Req & { forbidden: boolean }).forbidden ? 403 : 401] }), RUNS * 2);
    },
    PROPERTY_TIMEOUT,
  );

  it(
    'should refuse a bad Idempotency-Key with 400 naming it, even with a valid body',
    async () => {
      const badKey = fc.oneof(
        fc.constantFrom('', 'a b', 'key\twith-tab', 'clé', 'naïve-key', 'k'.repeat(256), 'two, keys'),
        fc.integer({ min: 256, max: 2000 }).map((n) => 'k'.repeat(n)),
        fc
          .tuple(fc.stringMatching(/^[!-~]{1,20}$/), fc.constantFrom(' ', '\t', '\u00a0', '\u00ff'), fc.stringMatching(/^[!-~]{1,20}$/))
          .map(([a, s, b]) => `${a}${s}${b}`),
      );
      const postRoutes = authenticated.filter((r) => r.method === 'POST');
      const arb = fc.tuple(fc.constantFrom(...postRoutes), badKey).map(([route, key]): Req => ({
        method: 'POST',
        path: route.path(),
        body: JSON.stringify(route.validBody()),
        authorization: keyFor(route.role),
        headers: { 'Idempotency-Key': key },
        why: 'bad Idempotency-Key',
      }));
      await fuzz(arb, (r) => checkRefused(r, { status: [400], field: 'Idempotency-Key' }), RUNS * 2);
    },
    PROPERTY_TIMEOUT,
  );

  // ---------------------------------------------------------------------------------------------- query strings

  const badLimit = fc.oneof(
    fc.constantFrom(
      '-1',
      '0',
      '101',
      'abc',
      '1.5',
      '',
      'Infinity',
      '-Infinity',
      'NaN',
      '1e400',
      '99999999999999999999',
      'null',
      'true',
      '[]',
      '0.0001',
      ' ',
      '-0',
    ),
    fc.integer({ min: 101 }).map(String),
    fc.integer({ max: 0 }).map(String),
  );
  const b64 = (v: unknown) => Buffer.from(typeof v === 'string' ? v : JSON.stringify(v)).toString('base64url');
  const badCursor = fc.oneof(
    fc.constant(''),
    fc.string({ minLength: 1, maxLength: 30 }).filter((s) => !/^[A-Za-z0-9_-]+$/.test(s)),
    fc.integer({ min: 201, max: 400 }).map((n) => 'A'.repeat(n)),
    fc.stringMatching(/^[A-Za-z0-9_-]{1,60}$/),
    fc.constantFrom<unknown>(null, 1, 'x', [], {}, { t: 1, id: 2 }, { t: '2026-01-15T01:00:00.000Z' }, { id: '00000000-0000-4000-8000-000000000000' }).map(b64),
    // Decodes to JSON of the right form, with a time JavaScript reads and PostgreSQL refuses (no such day, year 0).
    fc
      .tuple(
        fc.constantFrom(
          '2024-02-30T00:00:00.000Z',
          '2023-02-29T12:00:00.000Z',
          '2026-04-31T00:00:00.000Z',
          '0000-01-01T00:00:00.000Z',
          '0000-12-31T23:59:59.999Z',
        ),
        fc.uuid(),
      )
      .map(([tt, id]) => b64({ t: tt, id })),
    // Decodes to JSON of the right form, with an id that is not a UUID.
    fc
      .tuple(
        fc.constantFrom('2026-01-15T01:00:00.000Z', '0', 'Jan 1 2026'),
        fc.oneof(
          fc.constantFrom('-'.repeat(36), 'a'.repeat(36), '0'.repeat(36), 'abcdef01-2345-6789-abcd-ef0123456789-'.slice(0, 36).replace(/-/g, 'a')),
          fc.uuid().map((u) => `${u.slice(0, 35)}-`),
        ),
      )
      .map(([tt, id]) => b64({ t: tt, id })),
  );

  interface ListRoute {
    name: string;
    path: () => string;
    role: Role;
    /** Invalid values of each known parameter. */
    params: Record<string, fc.Arbitrary<string>>;
    /** Parameters every request carries (valid). */
    base?: Record<string, string>;
    /** Required parameters (may be dropped). */
    required?: string[];
  }

  const page = { limit: badLimit, cursor: badCursor };
  const statusNonsense = (valid: string[]) =>
    fc
      .oneof(fc.constantFrom('nonsense', '', 'ACTIVE', 'Active', 'active ', '*', 'null', '%', 'done', 'DONE ', '1'), fc.string({ maxLength: 15 }))
      .filter((s) => !valid.includes(s));
  const uuidParam = fc.oneof(badUuid, fc.constantFrom('', 'null'));

  const lists: ListRoute[] = [
    {
      name: 'GET /v1/customers',
      path: () => '/v1/customers',
      role: 'service',
      params: {
        ...page,
        external_id: fc.oneof(
          fc.constant(''),
          fc.integer({ min: 129, max: 300 }).map((n) => 'e'.repeat(n)),
        ),
      },
    },
    { name: 'GET /v1/customers/:id/billing-keys', path: () => `/v1/customers/${F.customerId}/billing-keys`, role: 'service', params: page },
    {
      name: 'GET /v1/plans',
      path: () => '/v1/plans',
      role: 'service',
      params: { ...page, active: fc.constantFrom('yes', 'no', '1', '0', 'TRUE', 'False', '', 'null') },
    },
    {
      name: 'GET /v1/subscriptions',
      path: () => '/v1/subscriptions',
      role: 'service',
      params: {
        ...page,
        customer_id: uuidParam,
        status: statusNonsense(['incomplete', 'trialing', 'active', 'past_due', 'paused', 'canceled', 'unpaid']),
        dunning_attempts: fc.oneof(fc.constantFrom('21', '-1', 'abc', '1.5', '01', '', ' 1', '1e1', '100'), fc.integer({ min: 21 }).map(String)),
      },
    },
    { name: 'GET /v1/subscriptions/:id/events', path: () => `/v1/subscriptions/${F.subId}/events`, role: 'service', params: page },
    {
      name: 'GET /v1/payments',
      path: () => '/v1/payments',
      role: 'service',
      params: {
        ...page,
        subscription_id: uuidParam,
        customer_id: uuidParam,
        status: statusNonsense(['READY', 'IN_PROGRESS', 'UNKNOWN', 'DONE', 'ABORTED', 'CANCELED', 'PARTIAL_CANCELED']),
      },
    },
    { name: 'GET /v1/payments/:id/refunds', path: () => `/v1/payments/${F.paymentId}/refunds`, role: 'admin', params: page },
    { name: 'GET /v1/charge-runs', path: () => '/v1/charge-runs', role: 'admin', params: page },
    { name: 'GET /v1/webhook-endpoints', path: () => '/v1/webhook-endpoints', role: 'admin', params: page },
    {
      name: 'GET /v1/webhook-endpoints/:id/deliveries',
      path: () => `/v1/webhook-endpoints/${F.endpointId}/deliveries`,
      role: 'admin',
      params: { ...page, status: statusNonsense(['pending', 'delivered', 'failed']) },
    },
    {
      name: 'GET /v1/reports/reconciliation',
      path: () => '/v1/reports/reconciliation',
      role: 'admin',
      base: { date: '2026-01-15' },
      required: ['date'],
      params: {
        date: fc.constantFrom(
          '2026-02-30',
          '2026-13-01',
          '2026-1-5',
          'yesterday',
          '20260115',
          '2026-01-15T00:00:00Z',
          '',
          '2026-00-10',
          '0000-00-00',
          '2026-02-29',
          '0000-01-01',
          '9999-12-31',
          '0001-01-01',
          '9500-02-28',
        ),
      },
    },
    {
      name: 'GET /v1/reports/summary',
      path: () => '/v1/reports/summary',
      role: 'admin',
      params: {
        from: fc.constantFrom(...BAD_ISO, ...UNREADABLE_ISO),
        to: fc.constantFrom(...BAD_ISO, ...UNREADABLE_ISO),
      },
    },
  ];

  function corruptedQuery(list: ListRoute): fc.Arbitrary<{ query: string; why: string }> {
    const known = Object.keys(list.params).concat(Object.keys(list.base ?? {}));
    type QOp =
      | { kind: 'bad'; name: string; value: string }
      | { kind: 'unknown'; name: string; value: string }
      | { kind: 'repeat'; name: string }
      | { kind: 'drop'; name: string };
    const ops: fc.Arbitrary<QOp>[] = [
      ...Object.entries(list.params).map(([name, arb]) => arb.map((value): QOp => ({ kind: 'bad', name, value }))),
      fc
        .tuple(
          fc
            .oneof(fc.constantFrom('foo', 'sort', 'order', 'offset', 'page', 'limit[]', 'status[]', 'id', 'expand'), fc.stringMatching(/^[a-z_]{1,12}$/))
            .filter((n) => !known.includes(n)),
          fc.string({ maxLength: 10 }),
        )
        .map(([name, value]): QOp => ({ kind: 'unknown', name, value })),
      fc.constantFrom(...known).map((name): QOp => ({ kind: 'repeat', name })),
      ...(list.required ?? []).map((name) => fc.constant<QOp>({ kind: 'drop', name })),
    ];
    return fc.array(fc.oneof(...ops), { minLength: 1, maxLength: 3 }).map((list2) => {
      const q = new Map<string, string[]>(Object.entries(list.base ?? {}).map(([k, v]) => [k, [v]]));
      for (const op of list2) {
        if (op.kind === 'bad' || op.kind === 'unknown') q.set(op.name, [op.value]);
        else if (op.kind === 'drop') q.delete(op.name);
      }
      // Repeats come last so that they stay repeated.
      for (const op of list2) {
        if (op.kind === 'repeat') {
          const v = q.get(op.name) ?? [];
          const valid =
            op.name === 'limit'
              ? '5'
              : op.name === 'date'
                ? '2026-01-15'
                : op.name === 'cursor'
                  ? 'abc'
                  : op.name === 'from' || op.name === 'to'
                    ? '2026-01-01T00:00:00Z'
                    : 'x';
          q.set(op.name, [...(v.length ? v : [valid]), valid]);
        }
      }
      const query = [...q.entries()].flatMap(([k, vs]) => vs.map((v) => `${encodeURIComponent(k)}=${encodeURIComponent(v)}`)).join('&');
      const why = list2.map((op) => `${op.kind} ${op.name}`).join(', ');
      return { query, why };
    });
  }

  describe.each(lists.map((l) => [l.name, l] as const))('%s', (_name, list) => {
    it(
      'should refuse absurd query strings with a 400 naming the parameter',
      async () => {
        const arb = corruptedQuery(list).map(({ query, why }): Req => ({
          method: 'GET',
          path: `${list.path()}?${query}`,
          authorization: keyFor(list.role),
          why,
        }));
        await fuzz(arb, (r) => checkRefused(r, { status: [400] }));
      },
      PROPERTY_TIMEOUT,
    );
  });

  it(
    'should never answer a 5xx to a forged cursor of the right form, whatever its time',
    async () => {
      const pageRoutes = lists.filter((l) => 'cursor' in l.params);
      const forgedT = fc.constantFrom(
        '0',
        '1',
        '12',
        '2026',
        'Jan 1 2026',
        'Tue Jan 15 2026',
        '1/1/1',
        '+275760-09-13T00:00:00.000Z',
        '-271821-04-20T00:00:00.000Z',
        '2026-01-15T01:00:00.000+14:00',
        '9999-12-31T23:59:59.999Z',
        '2024-02-30T00:00:00.000Z',
        '0000-01-01T00:00:00.000Z',
        '2023-02-29T00:00:00.000Z',
      );
      const arb = fc.tuple(fc.constantFrom(...pageRoutes), forgedT, fc.uuid()).map(([list, tt, id]): Req => ({
        method: 'GET',
        path: `${list.path()}?cursor=${b64({ t: tt, id })}`,
        authorization: keyFor(list.role),
        why: `forged cursor t=${tt}`,
      }));
      await fuzz(arb, async (r) => {
        const res = await send(r);
        if (res.status >= 500) throw new Error(`5xx for a forged cursor: ${describeReq(r)} -> ${res.status} ${res.text.slice(0, 300)}`);
        if (res.status >= 400) assertRefused(res, r);
      });
    },
    PROPERTY_TIMEOUT,
  );

  it(
    'should refuse a path id that is not a UUID on every GET and DELETE route with 400 naming id',
    async () => {
      const paths: [string, (id: string) => string, Role][] = [
        ['GET', (id) => `/v1/customers/${id}`, 'service'],
        ['GET', (id) => `/v1/customers/${id}/billing-keys`, 'service'],
        ['GET', (id) => `/v1/billing-keys/${id}`, 'service'],
        ['DELETE', (id) => `/v1/billing-keys/${id}`, 'service'],
        ['GET', (id) => `/v1/billing-keys/${id}/reservations`, 'service'],
        ['GET', (id) => `/v1/plans/${id}`, 'service'],
        ['GET', (id) => `/v1/subscriptions/${id}`, 'service'],
        ['GET', (id) => `/v1/subscriptions/${id}/events`, 'service'],
        ['GET', (id) => `/v1/payments/${id}`, 'service'],
        ['GET', (id) => `/v1/payments/${id}/refunds`, 'admin'],
        ['GET', (id) => `/v1/charge-runs/${id}`, 'admin'],
        ['GET', (id) => `/v1/webhook-endpoints/${id}`, 'admin'],
        ['GET', (id) => `/v1/webhook-endpoints/${id}/deliveries`, 'admin'],
      ];
      const arb = fc
        .tuple(
          fc.constantFrom(...paths),
          badUuid.filter((s) => s !== '.' && s !== '..'),
        )
        .map(([[method, path, role], id]): Req => ({
          method: method as Req['method'],
          path: path(encodeURIComponent(id)),
          authorization: keyFor(role),
          why: `path id ${JSON.stringify(id)}`,
        }));
      await fuzz(arb, (r) => checkRefused(r, { status: [400], field: 'id' }), RUNS * 2);
    },
    PROPERTY_TIMEOUT,
  );

  // ---------------------------------------------------------------------------------------------- regressions
  // Minimal cases the fuzzing found: each one got a 5xx, or was accepted (and stored) although it is invalid.

  describe('regressions found by the fuzzing', () => {
    const nul = 'x\u0000y';
    const own = { customerId: '', subToCancel: '', paymentToRefund: '' };

    beforeAll(async () => {
      const c = await createCustomer(t);
      own.customerId = c.id;
      const k = await createBillingKey(t, c.id, { card_no: '4111111111111111' });
      own.subToCancel = (await createSubscription(t, { customer_id: c.id, plan_id: F.planId, billing_key_id: k.id })).id;
      const sub2 = await createSubscription(t, { customer_id: c.id, plan_id: F.planId, billing_key_id: k.id });
      await t.fake.webhooksIdle();
      const payments = await t.http.get(`/v1/payments?subscription_id=${sub2.id}`).set(bearer(t.adminKey));
      own.paymentToRefund = payments.body.data[0].id;
      accepted = true;
      await settle();
    }, 60_000);

    const req = (method: Req['method'], path: string, body: Body | undefined, role: Role, why: string): Req => ({
      method,
      path,
      body: body === undefined ? undefined : JSON.stringify(body),
      authorization: keyFor(role),
      why,
    });
    const withKey = (body: Body, key: string, value: unknown) => {
      const b = { ...body };
      setKey(b, key, value);
      return b;
    };

    // PATCH with null for a field that cannot be cleared: the service dereferences it or writes NULL into a NOT NULL column.
    const nullPatches: [string, () => string, Body, string][] = [
      ['PATCH /v1/customers/:id name null', () => `/v1/customers/${F.customerId}`, { name: null }, 'name'],
      ['PATCH /v1/customers/:id metadata null', () => `/v1/customers/${F.customerId}`, { metadata: null }, 'metadata'],
      ['PATCH /v1/plans/:id name null', () => `/v1/plans/${F.planId}`, { name: null }, 'name'],
      ['PATCH /v1/plans/:id active null', () => `/v1/plans/${F.planId}`, { active: null }, 'active'],
      ['PATCH /v1/webhook-endpoints/:id url null', () => `/v1/webhook-endpoints/${F.endpointId}`, { url: null }, 'url'],
      ['PATCH /v1/webhook-endpoints/:id events null', () => `/v1/webhook-endpoints/${F.endpointId}`, { events: null }, 'events'],
      ['PATCH /v1/webhook-endpoints/:id active null', () => `/v1/webhook-endpoints/${F.endpointId}`, { active: null }, 'active'],
    ];
    it.each(nullPatches)('%s: 400 naming the field (was 500)', async (why, path, body, field) => {
      await checkRefused(req('PATCH', path(), body, path().startsWith('/v1/webhook') ? 'admin' : 'service', why), { status: [400], field });
    });

    // A NUL character passes the DTO (IsString, MaxLength, IsMetadata) and PostgreSQL refuses it (text and jsonb).
    const nulBodies: [string, Req['method'], () => string, () => Body, Role, string][] = [
      [
        'POST /v1/customers metadata value',
        'POST',
        () => '/v1/customers',
        () => ({ external_id: `nul_${Date.now()}`, name: 'n', metadata: { a: nul } }),
        'service',
        'metadata',
      ],
      ['PATCH /v1/customers/:id metadata value', 'PATCH', () => `/v1/customers/${F.customerId}`, () => ({ metadata: { a: nul } }), 'service', 'metadata'],
      [
        'POST /v1/plans description',
        'POST',
        () => '/v1/plans',
        () => ({ name: 'p', amount: 1000, interval: 'month', description: nul }),
        'service',
        'description',
      ],
      ['PATCH /v1/plans/:id description', 'PATCH', () => `/v1/plans/${F.planId}`, () => ({ description: nul }), 'service', 'description'],
      [
        'POST /v1/subscriptions metadata value',
        'POST',
        () => '/v1/subscriptions',
        () => ({ customer_id: F.customerId, plan_id: F.planId, billing_key_id: F.keyId, metadata: { a: nul } }),
        'service',
        'metadata',
      ],
      [
        'POST /v1/webhook-endpoints description',
        'POST',
        () => '/v1/webhook-endpoints',
        () => ({ url: 'https://example.com/h', description: nul }),
        'admin',
        'description',
      ],
      [
        'PATCH /v1/webhook-endpoints/:id description',
        'PATCH',
        () => `/v1/webhook-endpoints/${F.endpointId}`,
        () => ({ description: nul }),
        'admin',
        'description',
      ],
      [
        'POST /v1/customers/:id/billing-keys pg',
        'POST',
        () => `/v1/customers/${F.customerId}/billing-keys`,
        () => ({
          pg: 'nice\u0000pay',
          card_no: '4242424242424242',
          card_pw: '12',
          card_expire_year: '30',
          card_expire_month: '12',
          card_identity_no: '900101',
        }),
        'service',
        'pg',
      ],
    ];
    it.each(nulBodies)(
      '%s with a NUL character: 400 naming the field, nothing stored or sent to Bootpay (was 500)',
      async (why, method, path, body, role, field) => {
        await checkRefused(req(method, path(), body(), role, why), { status: [400], field });
      },
    );

    it('GET /v1/customers?external_id= with a NUL character: 400 naming external_id (was 500)', async () => {
      await checkRefused(req('GET', '/v1/customers?external_id=a%00b', undefined, 'service', 'NUL in external_id'), { status: [400], field: 'external_id' });
    });

    it('POST /v1/customers/:id/billing-keys {"receipt_id": null}: 400 naming receipt_id, nothing sent to Bootpay (was 502 gateway_rejected)', async () => {
      await checkRefused(req('POST', `/v1/customers/${F.customerId}/billing-keys`, { receipt_id: null }, 'service', 'receipt_id null'), {
        status: [400],
        field: 'receipt_id',
      });
    });

    // class-validator's whitelist misses unknown fields named like Object.prototype members: they are accepted, and
    // the rest of the body acts (a subscription is canceled, a payment refunded at Bootpay, the clock set, a run started).
    const PROTO_NAMES = [
      'toString',
      'valueOf',
      'hasOwnProperty',
      'constructor',
      'isPrototypeOf',
      'propertyIsEnumerable',
      'toLocaleString',
      '__defineGetter__',
      '__lookupGetter__',
      '__proto__',
    ];
    it.each(PROTO_NAMES)('PATCH /v1/customers/:id with an unknown field %j: 400 naming it (was 200)', async (name) => {
      const body = withKey({ name: 'Renamed by a bad request' }, name, name === '__proto__' ? { a: 1 } : 1);
      await checkRefused(req('PATCH', `/v1/customers/${F.customerId}`, body, 'service', `unknown field ${name}`), {
        status: [400],
        field: name === '__proto__' ? undefined : name,
      });
    });

    const protoActions: [string, Req['method'], () => string, () => Body, Role][] = [
      ['POST /v1/customers', 'POST', () => '/v1/customers', () => ({ external_id: `proto_${Date.now()}`, name: 'n', toString: 1 }), 'service'],
      [
        'POST /v1/subscriptions/:id/cancel (cancels it)',
        'POST',
        () => `/v1/subscriptions/${own.subToCancel}/cancel`,
        () => ({ at_period_end: false, reason: 'x', valueOf: 1 }),
        'service',
      ],
      [
        'POST /v1/payments/:id/refunds (refunds at Bootpay)',
        'POST',
        () => `/v1/payments/${own.paymentToRefund}/refunds`,
        () => ({ amount: 1000, reason: 'x', valueOf: 1 }),
        'admin',
      ],
      ['POST /v1/test/clock (sets the clock)', 'POST', () => '/v1/test/clock', () => ({ now: '2026-03-01T00:00:00+09:00', toString: true }), 'admin'],
      ['POST /v1/charge-runs (starts a run)', 'POST', () => '/v1/charge-runs', () => ({ wait: true, toString: 1 }), 'admin'],
    ];
    it.each(protoActions)(
      '%s with an unknown field named like an Object.prototype member: 400, nothing done (was 2xx)',
      async (why, method, path, body, role) => {
        const b = body();
        const name = Object.keys(b).find((k) => ['toString', 'valueOf'].includes(k))!;
        await checkRefused(req(method, path(), b, role, why), { status: [400], field: name });
        expect(t.clock.now()).toEqual(T0);
      },
    );

    // Routes without a body DTO ignore any body, against "Unknown fields are refused (400 naming them)".
    it.each([
      ['POST /v1/webhook-endpoints/:id/rotate-secret (rotates the secret)', () => `/v1/webhook-endpoints/${F.endpointId}/rotate-secret`],
      ['POST /v1/webhook-deliveries/:id/resend (queues the delivery again)', () => `/v1/webhook-deliveries/${F.deliveryId}/resend`],
    ] as [string, () => string][])('%s with an unknown body field: 400 naming it, nothing changed (was 200)', async (why, path) => {
      await checkRefused(req('POST', path(), { foo: 1 }, 'admin', why), { status: [400], field: 'foo' });
    });

    // A cursor of the right form whose id is not a UUID (or whose time PostgreSQL cannot read) reaches the SQL cast.
    const cursorLists: [string, () => string, Role][] = [
      ['/v1/customers', () => '/v1/customers', 'service'],
      ['/v1/customers/:id/billing-keys', () => `/v1/customers/${F.customerId}/billing-keys`, 'service'],
      ['/v1/plans', () => '/v1/plans', 'service'],
      ['/v1/subscriptions', () => '/v1/subscriptions', 'service'],
      ['/v1/payments', () => '/v1/payments', 'service'],
      ['/v1/payments/:id/refunds', () => `/v1/payments/${F.paymentId}/refunds`, 'admin'],
      ['/v1/webhook-endpoints', () => '/v1/webhook-endpoints', 'admin'],
      ['/v1/webhook-endpoints/:id/deliveries', () => `/v1/webhook-endpoints/${F.endpointId}/deliveries`, 'admin'],
    ];
    it.each(cursorLists)('GET %s with a cursor whose id is 36 dashes: 400 naming cursor (was 500)', async (_n, path, role) => {
      const cursor = b64({ t: '2026-01-15T01:00:00.000Z', id: '-'.repeat(36) });
      await checkRefused(req('GET', `${path()}?cursor=${cursor}`, undefined, role, 'cursor id not a UUID'), { status: [400], field: 'cursor' });
    });
    it.each(cursorLists)('GET %s with a cursor whose time is "0": 400 naming cursor (was 500)', async (_n, path, role) => {
      const cursor = b64({ t: '0', id: '00000000-0000-4000-8000-000000000000' });
      await checkRefused(req('GET', `${path()}?cursor=${cursor}`, undefined, role, 'cursor time 0'), { status: [400], field: 'cursor' });
    });

    // The audit trail's cursor was a bare number, so any digits passed for one (found by the fuzz property above).
    it.each(['0', '12', b64({ seq: 0 }), b64({ seq: 1.5 }), b64({ seq: '3' })])(
      'GET /v1/subscriptions/:id/events?cursor=%s: 400 naming cursor (was 200)',
      async (cursor) => {
        await checkRefused(req('GET', `/v1/subscriptions/${F.subId}/events?cursor=${cursor}`, undefined, 'service', 'events cursor not from a page'), {
          status: [400],
          field: 'cursor',
        });
      },
    );

    // ISO-8601 forms that IsISO8601 accepts and JavaScript cannot read: Invalid Date reaches the SQL.
    it.each([
      ['from', '2026-W03'],
      ['to', '20260115T010000Z'],
      ['from', '+2026-01-15T00:00:00Z'],
      ['to', '2026-01-15T01:00:00,5Z'],
    ])('GET /v1/reports/summary?%s=%s: 400 naming the parameter (was 500)', async (param, value) => {
      await checkRefused(req('GET', `/v1/reports/summary?${param}=${encodeURIComponent(value)}`, undefined, 'admin', `${param} unreadable`), {
        status: [400],
        field: param,
      });
    });
  });
});
