/**
 * Billing-period calendar arithmetic in a business time zone (pure, dependency-free; uses only Intl).
 *
 * Rules
 * - All calendar arithmetic happens on the LOCAL calendar date and LOCAL time-of-day of the input instant
 *   in `timeZone` (callers use 'Asia/Seoul', see BUSINESS_TIME_ZONE). The local time-of-day is kept.
 * - Month/year steps clamp the day to the target month's length (Jan 31 + 1 month = Feb 28/29) and, for
 *   subscription periods, are always computed from the ANCHOR, never from the previous period, so month-end
 *   anchors clamp and come back (Jan 31 -> Feb 28 -> Mar 31 -> Apr 30 -> May 31; Feb 29 -> Feb 28 -> ... -> Feb 29).
 * - Local time -> instant ("fromZonedParts"), the same policy as Temporal's `disambiguation: 'compatible'`:
 *   - nonexistent local time (DST gap / skipped day): move FORWARD by the length of the gap, i.e. interpret it
 *     with the offset in effect just before the transition (New York 2025-03-09 02:30 -> 03:30 EDT);
 *   - ambiguous local time (DST overlap): take the EARLIER instant, i.e. the offset in effect before the
 *     transition (New York 2025-11-02 01:30 -> 01:30 EDT = 05:30Z, not 01:30 EST).
 *   `periodStart(..., n = 0, ...)` always returns the anchor instant itself, even if the anchor lies in an overlap.
 * - Supported instants: 0001-01-02T00:00:00.000Z .. 9999-12-30T23:59:59.999Z (proleptic Gregorian); local years
 *   1..9999. Anything outside, invalid Dates, unknown time zones and bad counts throw RangeError.
 */

export type BillingInterval = 'day' | 'week' | 'month' | 'year';

export const BILLING_INTERVALS: readonly BillingInterval[] = Object.freeze(['day', 'week', 'month', 'year'] as const);

/** The time zone the business bills in. Callers pass it explicitly. */
export const BUSINESS_TIME_ZONE = 'Asia/Seoul';

/**
 * The longest billing interval per unit (about ten years): plans are refused above it (the API's one list), and the
 * period arithmetic takes any count up to MAX_INTERVAL_COUNT, so that a plan the API accepted is always billable.
 */
export const MAX_INTERVAL_COUNTS: Readonly<Record<BillingInterval, number>> = Object.freeze({ day: 3650, week: 520, month: 120, year: 10 });
/** The largest count the period arithmetic takes, in any unit: at least every count of MAX_INTERVAL_COUNTS. */
export const MAX_INTERVAL_COUNT = Math.max(...Object.values(MAX_INTERVAL_COUNTS));

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

const MS_PER_DAY = 86_400_000;
const MIN_YEAR = 1;
const MAX_YEAR = 9999;

/** Build the epoch-ms of the given fields read as UTC (works for years 0..99 too, unlike Date.UTC). */
function utcMs(year: number, month: number, day: number, hour = 0, minute = 0, second = 0, millisecond = 0): number {
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

function formatterFor(timeZone: string): Intl.DateTimeFormat {
  const dtf = createFormatter(timeZone);
  if (!dtf) throw new RangeError(`Invalid time zone: ${String(timeZone)}`);
  return dtf;
}

function floorMod(a: number, m: number): number {
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
function localFields(ms: number, dtf: Intl.DateTimeFormat): [number, number, number, number, number, number] {
  const d = new Date(ms - floorMod(ms, 1000) + offsetAt(ms, dtf));
  return [d.getUTCFullYear(), d.getUTCMonth() + 1, d.getUTCDate(), d.getUTCHours(), d.getUTCMinutes(), d.getUTCSeconds()];
}

/**
 * The instant whose local wall clock reads `localMs` (local fields encoded as if they were UTC).
 * Gap: forward by the gap length (offset before the transition). Overlap: the earlier instant.
 */
function instantFromLocalMs(localMs: number, dtf: Intl.DateTimeFormat): number {
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

function assertDate(name: string, date: unknown): number {
  if (!(date instanceof Date)) throw new RangeError(`${name} must be a Date`);
  const ms = date.getTime();
  if (!Number.isFinite(ms)) throw new RangeError(`${name} is an invalid Date`);
  if (ms < MIN_SUPPORTED_INSTANT_MS || ms > MAX_SUPPORTED_INSTANT_MS) {
    throw new RangeError(`${name} is outside the supported range (years 1..9999): ${date.toISOString()}`);
  }
  return ms;
}

function assertIntegerIn(name: string, value: unknown, min: number, max: number): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    throw new RangeError(`${name} must be an integer in [${min}, ${max}], got ${String(value)}`);
  }
  return value;
}

function assertInterval(interval: unknown): BillingInterval {
  if (!BILLING_INTERVALS.includes(interval as BillingInterval)) {
    throw new RangeError(`interval must be one of ${BILLING_INTERVALS.join(', ')}, got ${String(interval)}`);
  }
  return interval as BillingInterval;
}

function checkedInstant(ms: number): Date {
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

/** Days since 1970-01-01 of a local calendar date. */
function epochDay(year: number, month: number, day: number): number {
  return Math.round(utcMs(year, month, day) / MS_PER_DAY);
}

/** Local fields + `units` steps of `interval`, clamped; returns local-as-UTC ms or NaN when out of range. */
function shiftLocal(p: ZonedParts, interval: BillingInterval, units: number): number {
  let year: number;
  let month: number;
  let day: number;
  if (interval === 'day' || interval === 'week') {
    const days = epochDay(p.year, p.month, p.day) + units * (interval === 'week' ? 7 : 1);
    if (!Number.isSafeInteger(days) || Math.abs(days) > 4_000_000) return NaN; // far beyond year 9999
    const d = new Date(days * MS_PER_DAY);
    year = d.getUTCFullYear();
    month = d.getUTCMonth() + 1;
    day = d.getUTCDate();
  } else {
    const totalMonths = p.year * 12 + (p.month - 1) + units * (interval === 'year' ? 12 : 1);
    if (!Number.isSafeInteger(totalMonths)) return NaN;
    year = Math.floor(totalMonths / 12);
    month = totalMonths - year * 12 + 1;
    if (year < MIN_YEAR || year > MAX_YEAR) return NaN;
    day = Math.min(p.day, daysInMonth(year, month));
  }
  if (year < MIN_YEAR || year > MAX_YEAR) return NaN;
  return utcMs(year, month, day, p.hour, p.minute, p.second, p.millisecond);
}

/** Instant after shifting the local date; NaN when the result leaves the supported range. */
function shiftInstant(ms: number, interval: BillingInterval, units: number, dtf: Intl.DateTimeFormat): number {
  const [year, month, day, hour, minute, second] = localFields(ms, dtf);
  const local = shiftLocal({ year, month, day, hour, minute, second, millisecond: floorMod(ms, 1000) }, interval, units);
  if (Number.isNaN(local)) return NaN;
  const t = instantFromLocalMs(local, dtf);
  return t < MIN_SUPPORTED_INSTANT_MS || t > MAX_SUPPORTED_INSTANT_MS ? NaN : t;
}

function periodStartMs(anchorMs: number, interval: BillingInterval, intervalCount: number, n: number, dtf: Intl.DateTimeFormat): number {
  if (n === 0) return anchorMs;
  return shiftInstant(anchorMs, interval, n * intervalCount, dtf);
}

/**
 * Start of the n-th period (n = 0: the anchor itself) of a subscription anchored at `anchor`, billed every
 * `intervalCount` `interval`s in `timeZone`. Always computed from the anchor (month-end days clamp and come back).
 */
export function periodStart(anchor: Date, interval: BillingInterval, intervalCount: number, n: number, timeZone: string): Date {
  const dtf = formatterFor(timeZone);
  const anchorMs = assertDate('anchor', anchor);
  assertInterval(interval);
  assertIntegerIn('intervalCount', intervalCount, 1, MAX_INTERVAL_COUNT);
  assertIntegerIn('n', n, 0, Number.MAX_SAFE_INTEGER - 1);
  return checkedInstant(periodStartMs(anchorMs, interval, intervalCount, n, dtf));
}

/** End (exclusive) of the n-th period = start of period n + 1. */
export function periodEnd(anchor: Date, interval: BillingInterval, intervalCount: number, n: number, timeZone: string): Date {
  assertIntegerIn('n', n, 0, Number.MAX_SAFE_INTEGER - 1);
  return periodStart(anchor, interval, intervalCount, n + 1, timeZone);
}

/**
 * Index n of the period containing `at` (periodStart(n) <= at < periodStart(n + 1)); -1 when at < anchor.
 * O(1): estimates n from the local calendar distance, then corrects by at most a couple of steps.
 */
export function periodIndexAt(anchor: Date, interval: BillingInterval, intervalCount: number, at: Date, timeZone: string): number {
  const dtf = formatterFor(timeZone);
  const anchorMs = assertDate('anchor', anchor);
  const atMs = assertDate('at', at);
  assertInterval(interval);
  assertIntegerIn('intervalCount', intervalCount, 1, MAX_INTERVAL_COUNT);
  if (atMs < anchorMs) return -1;

  const a = localFields(anchorMs, dtf);
  const t = localFields(atMs, dtf);
  let estimate: number;
  if (interval === 'day' || interval === 'week') {
    const step = intervalCount * (interval === 'week' ? 7 : 1);
    estimate = Math.floor((epochDay(t[0], t[1], t[2]) - epochDay(a[0], a[1], a[2])) / step);
  } else {
    const months = (t[0] - a[0]) * 12 + (t[1] - a[1]);
    estimate = Math.floor(months / (intervalCount * (interval === 'year' ? 12 : 1)));
  }
  let n = Math.max(0, estimate);
  // Starts beyond the supported range (NaN) count as +infinity: `at` is then in the last representable period.
  const startAfter = (k: number): boolean => {
    const s = periodStartMs(anchorMs, interval, intervalCount, k, dtf);
    return Number.isNaN(s) || s > atMs;
  };
  let steps = 0;
  while (n > 0 && startAfter(n)) {
    n -= 1;
    if (++steps > 64) throw new Error('periodIndexAt did not converge'); // unreachable: estimate is off by <= 1
  }
  while (!startAfter(n + 1)) {
    n += 1;
    if (++steps > 64) throw new Error('periodIndexAt did not converge');
  }
  return n;
}

/**
 * `date` + `count` `interval`s in `timeZone` (local calendar, local time-of-day kept, day clamped to the target
 * month's length: Jan 31 + 1 month = Feb 28/29). count = 0 returns the same instant. For trial ends etc.
 */
export function addInterval(date: Date, interval: BillingInterval, count: number, timeZone: string): Date {
  const dtf = formatterFor(timeZone);
  const ms = assertDate('date', date);
  assertInterval(interval);
  assertIntegerIn('count', count, 0, MAX_INTERVAL_COUNT);
  if (count === 0) return new Date(ms);
  return checkedInstant(shiftInstant(ms, interval, count, dtf));
}

/** `date` + `days` local calendar days in `timeZone` (may be negative), keeping the local time-of-day. */
export function addDays(date: Date, days: number, timeZone: string): Date {
  const dtf = formatterFor(timeZone);
  const ms = assertDate('date', date);
  assertIntegerIn('days', days, -Number.MAX_SAFE_INTEGER, Number.MAX_SAFE_INTEGER);
  if (days === 0) return new Date(ms);
  return checkedInstant(shiftInstant(ms, 'day', days, dtf));
}
