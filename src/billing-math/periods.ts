import {
  assertDate,
  assertIntegerIn,
  checkedInstant,
  daysInMonth,
  floorMod,
  formatterFor,
  instantFromLocalMs,
  localFields,
  MAX_SUPPORTED_INSTANT_MS,
  MAX_YEAR,
  MIN_SUPPORTED_INSTANT_MS,
  MIN_YEAR,
  MS_PER_DAY,
  utcMs,
} from './zoned-time';
import type { ZonedParts } from './zoned-time';

export {
  daysInMonth,
  formatZoned,
  fromZonedParts,
  isValidTimeZone,
  MAX_SUPPORTED_INSTANT_MS,
  MIN_SUPPORTED_INSTANT_MS,
  timeZoneOffsetMs,
  zonedParts,
} from './zoned-time';
export type { ZonedParts, ZonedPartsInput } from './zoned-time';

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

function assertInterval(interval: unknown): BillingInterval {
  if (!BILLING_INTERVALS.includes(interval as BillingInterval)) {
    throw new RangeError(`interval must be one of ${BILLING_INTERVALS.join(', ')}, got ${String(interval)}`);
  }
  return interval as BillingInterval;
}

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
