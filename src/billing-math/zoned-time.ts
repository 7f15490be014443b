/**
 * Local wall-clock time in a time zone, from Intl only: instant -> local fields and back, with the rules for DST gaps
 * and overlaps and the supported range set out in periods.ts. The public functions are exported from the package
 * through periods.ts; the rest is shared with the period arithmetic only.
 */

/** Local wall-clock fields in some time zone. month is 1..12, day 1..31, hour 0..23. */
export interface ZonedParts {
  year: number;
  month: number;
  day: number;
  hour: number;
  minute: number;
  second: number;
  millisecond: number;
}

/** Input for fromZonedParts: the time-of-day fields default to 0. */
export type ZonedPartsInput = Pick<ZonedParts, 'year' | 'month' | 'day'> & Partial<Pick<ZonedParts, 'hour' | 'minute' | 'second' | 'millisecond'>>;

export const MS_PER_DAY = 86_400_000;
export const MIN_YEAR = 1;
export const MAX_YEAR = 9999;

/** Build the epoch-ms of the given fields read as UTC (works for years 0..99 too, unlike Date.UTC). */
export function utcMs(year: number, month: number, day: number, hour = 0, minute = 0, second = 0, millisecond = 0): number {
  const d = new Date(0);
  d.setUTCFullYear(year, month - 1, day);
  d.setUTCHours(hour, minute, second, millisecond);
  return d.getTime();
}

export const MIN_SUPPORTED_INSTANT_MS = utcMs(1, 1, 2);
export const MAX_SUPPORTED_INSTANT_MS = utcMs(9999, 12, 30, 23, 59, 59, 999);

// ---------------------------------------------------------------------------------------------------------
// Time zones
// ---------------------------------------------------------------------------------------------------------

const FORMAT_OPTIONS: Intl.DateTimeFormatOptions = {
  hourCycle: 'h23',
  year: 'numeric',
  month: 'numeric',
  day: 'numeric',
  hour: 'numeric',
  minute: 'numeric',
  second: 'numeric',
};
const MAX_CACHED_ZONES = 500;
const formatters = new Map<string, Intl.DateTimeFormat>();

function createFormatter(timeZone: unknown): Intl.DateTimeFormat | undefined {
  // Only IANA names (and 'UTC'); offset strings like '+09:00' are not accepted even where Intl would.
  if (typeof timeZone !== 'string' || timeZone.length === 0 || timeZone.length > 100 || /^[+-]/.test(timeZone)) {
    return undefined;
  }
  const cached = formatters.get(timeZone);
  if (cached) return cached;
  let dtf: Intl.DateTimeFormat;
  try {
    dtf = new Intl.DateTimeFormat('en-US', { ...FORMAT_OPTIONS, timeZone });
  } catch {
    return undefined;
  }
  if (formatters.size < MAX_CACHED_ZONES) formatters.set(timeZone, dtf);
  return dtf;
}

/** True when `timeZone` is an IANA time-zone name known to this runtime's Intl (e.g. 'Asia/Seoul', 'UTC'). */
export function isValidTimeZone(timeZone: unknown): timeZone is string {
  return createFormatter(timeZone) !== undefined;
}

export function formatterFor(timeZone: string): Intl.DateTimeFormat {
  const dtf = createFormatter(timeZone);
  if (!dtf) throw new RangeError(`Invalid time zone: ${String(timeZone)}`);
  return dtf;
}

export function floorMod(a: number, m: number): number {
  return ((a % m) + m) % m;
}

/** Local wall-clock fields (without milliseconds) of instant `ms`, read from Intl. */
function intlFields(ms: number, dtf: Intl.DateTimeFormat): [number, number, number, number, number, number] {
  let year = NaN;
  let month = NaN;
  let day = NaN;
  let hour = NaN;
  let minute = NaN;
  let second = NaN;
  for (const part of dtf.formatToParts(ms)) {
    switch (part.type) {
      case 'year':
        year = Number(part.value);
        break;
      case 'month':
        month = Number(part.value);
        break;
      case 'day':
        day = Number(part.value);
        break;
      case 'hour':
        hour = Number(part.value) % 24; // some ICU versions print midnight as 24
        break;
      case 'minute':
        minute = Number(part.value);
        break;
      case 'second':
        second = Number(part.value);
        break;
      default:
        break;
    }
  }
  if ([year, month, day, hour, minute, second].some((v) => !Number.isInteger(v))) {
    throw new RangeError(`Cannot read local time of ${ms} in ${dtf.resolvedOptions().timeZone}`);
  }
  return [year, month, day, hour, minute, second];
}

/** UTC offset (local − UTC) in ms at instant `ms`, read from Intl. */
function exactOffsetAt(ms: number, dtf: Intl.DateTimeFormat): number {
  const [y, mo, d, h, mi, s] = intlFields(ms, dtf);
  return utcMs(y, mo, d, h, mi, s) - (ms - floorMod(ms, 1000));
}

/**
 * Offsets by 15-minute slice of time, per formatter. Intl is slow (a charge run computes periods for every due
 * subscription), and a zone's offset changes only at its transitions: a slice is remembered only when the offset at
 * its first and its last second agree, i.e. no transition falls inside it, so a cached answer is always the exact one.
 */
const OFFSET_SLICE_MS = 15 * 60_000;
const MAX_CACHED_SLICES = 100_000;
const offsetSlices = new WeakMap<Intl.DateTimeFormat, Map<number, number>>();

/** UTC offset (local − UTC) in ms at instant `ms`. */
function offsetAt(ms: number, dtf: Intl.DateTimeFormat): number {
  let slices = offsetSlices.get(dtf);
  if (!slices) {
    slices = new Map();
    offsetSlices.set(dtf, slices);
  }
  const slice = Math.floor(ms / OFFSET_SLICE_MS);
  const known = slices.get(slice);
  if (known !== undefined) return known;
  const offset = exactOffsetAt(ms, dtf);
  const first = slice * OFFSET_SLICE_MS;
  const last = first + OFFSET_SLICE_MS - 1000;
  if (first >= MIN_SUPPORTED_INSTANT_MS && last <= MAX_SUPPORTED_INSTANT_MS && exactOffsetAt(first, dtf) === offset && exactOffsetAt(last, dtf) === offset) {
    if (slices.size >= MAX_CACHED_SLICES) slices.clear();
    slices.set(slice, offset);
  }
  return offset;
}

/** Local wall-clock fields (without milliseconds) of instant `ms`: the instant moved by its (cached) offset, read as UTC. */
export function localFields(ms: number, dtf: Intl.DateTimeFormat): [number, number, number, number, number, number] {
  const d = new Date(ms - floorMod(ms, 1000) + offsetAt(ms, dtf));
  return [d.getUTCFullYear(), d.getUTCMonth() + 1, d.getUTCDate(), d.getUTCHours(), d.getUTCMinutes(), d.getUTCSeconds()];
}

/**
 * The instant whose local wall clock reads `localMs` (local fields encoded as if they were UTC).
 * Gap: forward by the gap length (offset before the transition). Overlap: the earlier instant.
 */
export function instantFromLocalMs(localMs: number, dtf: Intl.DateTimeFormat): number {
  const before = offsetAt(localMs - MS_PER_DAY, dtf);
  const candidates = new Set<number>([before, offsetAt(localMs, dtf), offsetAt(localMs + MS_PER_DAY, dtf)]);
  const valid: number[] = [];
  const extra = new Set<number>();
  for (const offset of candidates) {
    const t = localMs - offset;
    const actual = offsetAt(t, dtf);
    if (actual === offset) valid.push(t);
    else if (!candidates.has(actual)) extra.add(actual);
  }
  for (const offset of extra) {
    const t = localMs - offset;
    if (offsetAt(t, dtf) === offset) valid.push(t);
  }
  if (valid.length > 0) return Math.min(...valid);
  return localMs - before;
}

export function assertDate(name: string, date: unknown): number {
  if (!(date instanceof Date)) throw new RangeError(`${name} must be a Date`);
  const ms = date.getTime();
  if (!Number.isFinite(ms)) throw new RangeError(`${name} is an invalid Date`);
  if (ms < MIN_SUPPORTED_INSTANT_MS || ms > MAX_SUPPORTED_INSTANT_MS) {
    throw new RangeError(`${name} is outside the supported range (years 1..9999): ${date.toISOString()}`);
  }
  return ms;
}

export function assertIntegerIn(name: string, value: unknown, min: number, max: number): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    throw new RangeError(`${name} must be an integer in [${min}, ${max}], got ${String(value)}`);
  }
  return value;
}

export function checkedInstant(ms: number): Date {
  if (!Number.isFinite(ms) || ms < MIN_SUPPORTED_INSTANT_MS || ms > MAX_SUPPORTED_INSTANT_MS) {
    throw new RangeError('Result is outside the supported range (years 1..9999)');
  }
  return new Date(ms);
}

/** Local calendar fields and time-of-day of `date` in `timeZone`. */
export function zonedParts(date: Date, timeZone: string): ZonedParts {
  const dtf = formatterFor(timeZone);
  const ms = assertDate('date', date);
  const [year, month, day, hour, minute, second] = localFields(ms, dtf);
  return { year, month, day, hour, minute, second, millisecond: floorMod(ms, 1000) };
}

/** UTC offset of `timeZone` at `date`, in ms (Asia/Seoul: 32_400_000). */
export function timeZoneOffsetMs(date: Date, timeZone: string): number {
  const dtf = formatterFor(timeZone);
  return offsetAt(assertDate('date', date), dtf);
}

/** Number of days in `month` (1..12) of proleptic Gregorian `year`. */
export function daysInMonth(year: number, month: number): number {
  assertIntegerIn('year', year, -1_000_000, 1_000_000);
  assertIntegerIn('month', month, 1, 12);
  if (month === 2) return (year % 4 === 0 && year % 100 !== 0) || year % 400 === 0 ? 29 : 28;
  return [4, 6, 9, 11].includes(month) ? 30 : 31;
}

/**
 * The instant at which the wall clock in `timeZone` reads the given local fields.
 * Nonexistent local times (DST gaps) move forward by the gap; ambiguous ones (overlaps) take the earlier instant.
 */
export function fromZonedParts(parts: ZonedPartsInput, timeZone: string): Date {
  const dtf = formatterFor(timeZone);
  if (parts === null || typeof parts !== 'object') throw new RangeError('parts must be an object');
  const year = assertIntegerIn('year', parts.year, MIN_YEAR, MAX_YEAR);
  const month = assertIntegerIn('month', parts.month, 1, 12);
  const day = assertIntegerIn('day', parts.day, 1, daysInMonth(year, month));
  const hour = assertIntegerIn('hour', parts.hour ?? 0, 0, 23);
  const minute = assertIntegerIn('minute', parts.minute ?? 0, 0, 59);
  const second = assertIntegerIn('second', parts.second ?? 0, 0, 59);
  const millisecond = assertIntegerIn('millisecond', parts.millisecond ?? 0, 0, 999);
  return checkedInstant(instantFromLocalMs(utcMs(year, month, day, hour, minute, second, millisecond), dtf));
}

/** 'YYYY-MM-DDTHH:mm:ss.SSS' local wall time of `date` in `timeZone` (for logs and tests). */
export function formatZoned(date: Date, timeZone: string): string {
  const p = zonedParts(date, timeZone);
  const pad = (v: number, w = 2) => String(v).padStart(w, '0');
  return `${pad(p.year, 4)}-${pad(p.month)}-${pad(p.day)}T${pad(p.hour)}:${pad(p.minute)}:${pad(p.second)}` + `.${pad(p.millisecond, 3)}`;
}

// ---------------------------------------------------------------------------------------------------------
// Calendar steps
// ---------------------------------------------------------------------------------------------------------
