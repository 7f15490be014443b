import fc from 'fast-check';
import {
  addDays,
  addInterval,
  BILLING_INTERVALS,
  BillingInterval,
  daysInMonth,
  formatZoned,
  fromZonedParts,
  isValidTimeZone,
  MAX_INTERVAL_COUNT,
  MAX_INTERVAL_COUNTS,
  periodEnd,
  periodIndexAt,
  periodStart,
  timeZoneOffsetMs,
  zonedParts,
} from './periods';

const SEOUL = 'Asia/Seoul';
const NEW_YORK = 'America/New_York';
const HOUR = 3_600_000;
const DAY = 86_400_000;
const RUNS = { numRuns: 200 };

/** Reference for Asia/Seoul (fixed UTC+9 since 1988), independent of the implementation. */
function kst(y: number, m: number, d: number, h = 0, mi = 0, s = 0, ms = 0): Date {
  return new Date(Date.UTC(y, m - 1, d, h, mi, s, ms) - 9 * HOUR);
}
function seoulLocal(date: Date) {
  const l = new Date(date.getTime() + 9 * HOUR);
  return {
    year: l.getUTCFullYear(),
    month: l.getUTCMonth() + 1,
    day: l.getUTCDate(),
    timeOfDay: l.getTime() - Date.UTC(l.getUTCFullYear(), l.getUTCMonth(), l.getUTCDate()),
  };
}
function refDaysInMonth(y: number, m: number): number {
  return new Date(Date.UTC(y, m, 0)).getUTCDate();
}
/** All local start dates (YYYY-MM-DD in Seoul) of periods 0..count-1. */
function seoulStartDates(anchor: Date, interval: BillingInterval, intervalCount: number, count: number): string[] {
  return Array.from({ length: count }, (_, n) => formatZoned(periodStart(anchor, interval, intervalCount, n, SEOUL), SEOUL).slice(0, 10));
}

// Instants from 2000 to 2100 (Seoul has had no DST since 1988).
const instantArb = fc.integer({ min: Date.UTC(2000, 0, 1), max: Date.UTC(2100, 0, 1) }).map((ms) => new Date(ms));
const intervalArb = fc.constantFrom<BillingInterval>('day', 'week', 'month', 'year');
const zoneArb = fc.constantFrom(SEOUL, NEW_YORK, 'UTC', 'Europe/London', 'Australia/Lord_Howe', 'America/Santiago');

describe(isValidTimeZone.name, () => {
  it('should accept IANA zone names', () => {
    expect(isValidTimeZone('Asia/Seoul')).toBe(true);
    expect(isValidTimeZone('America/New_York')).toBe(true);
    expect(isValidTimeZone('UTC')).toBe(true);
  });

  it('should reject unknown names, offsets and non-strings', () => {
    for (const tz of ['', 'Mars/Olympus_Mons', 'Asia/Seul', '+09:00', '-05:00', 'KST+9', 42, null, undefined]) {
      expect(isValidTimeZone(tz)).toBe(false);
    }
  });
});

describe(zonedParts.name, () => {
  it('should give the Seoul calendar date across the UTC midnight boundary', () => {
    expect(zonedParts(new Date('2025-01-30T15:30:00.123Z'), SEOUL)).toEqual({
      year: 2025,
      month: 1,
      day: 31,
      hour: 0,
      minute: 30,
      second: 0,
      millisecond: 123,
    });
  });

  it('should give New York wall time in EST and EDT', () => {
    expect(zonedParts(new Date('2025-01-15T14:00:00Z'), NEW_YORK)).toMatchObject({ month: 1, day: 15, hour: 9 });
    expect(zonedParts(new Date('2025-07-15T13:00:00Z'), NEW_YORK)).toMatchObject({ month: 7, day: 15, hour: 9 });
  });

  it('should match the fixed +9h reference in Asia/Seoul', () => {
    fc.assert(
      fc.property(instantArb, (d) => {
        const p = zonedParts(d, SEOUL);
        const r = seoulLocal(d);
        expect([p.year, p.month, p.day]).toEqual([r.year, r.month, r.day]);
        expect(((p.hour * 60 + p.minute) * 60 + p.second) * 1000 + p.millisecond).toBe(r.timeOfDay);
      }),
      RUNS,
    );
  });

  it('should reject an invalid Date, an out-of-range Date and an unknown zone', () => {
    expect(() => zonedParts(new Date(NaN), SEOUL)).toThrow(RangeError);
    expect(() => zonedParts(new Date('+010000-01-01T00:00:00Z'), SEOUL)).toThrow(RangeError);
    expect(() => zonedParts(new Date(), 'Nowhere/City')).toThrow(RangeError);
  });
});

describe('local time read through the offset cache', () => {
  /** Intl read directly, with a formatter of its own: the reference the cached reads must always equal. */
  const references = new Map<string, Intl.DateTimeFormat>();
  function intlParts(ms: number, timeZone: string) {
    let dtf = references.get(timeZone);
    if (!dtf) {
      dtf = new Intl.DateTimeFormat('en-US', {
        timeZone,
        hourCycle: 'h23',
        year: 'numeric',
        month: 'numeric',
        day: 'numeric',
        hour: 'numeric',
        minute: 'numeric',
        second: 'numeric',
      });
      references.set(timeZone, dtf);
    }
    const f = Object.fromEntries(dtf.formatToParts(ms).map((p) => [p.type, p.value]));
    return { year: Number(f.year), month: Number(f.month), day: Number(f.day), hour: Number(f.hour) % 24, minute: Number(f.minute), second: Number(f.second) };
  }
  const local = (ms: number, timeZone: string) => {
    const { millisecond: _ms, ...p } = zonedParts(new Date(ms), timeZone);
    return p;
  };
  // Zones with DST at whole hours, at half hours (Lord Howe: 30-minute DST), with a 45-minute offset and a past
  // change of standard offset, and Seoul.
  const ZONES = [NEW_YORK, 'Europe/London', 'Australia/Lord_Howe', 'Asia/Kathmandu', 'America/Sao_Paulo', SEOUL];

  /** The instants in `year` at which `timeZone`'s offset changes, to the second (found with Intl alone). */
  function transitions(timeZone: string, year: number): number[] {
    const offset = (ms: number) => {
      const p = intlParts(ms, timeZone);
      return Date.UTC(p.year, p.month - 1, p.day, p.hour, p.minute, p.second) - (ms - (ms % 1000));
    };
    const out: number[] = [];
    for (let t = Date.UTC(year, 0, 1); t < Date.UTC(year + 1, 0, 1); t += HOUR) {
      if (offset(t) === offset(t + HOUR)) continue;
      let [lo, hi] = [t, t + HOUR];
      while (hi - lo > 1000) {
        const mid = lo + Math.floor((hi - lo) / 2000) * 1000;
        if (offset(mid) === offset(lo)) lo = mid;
        else hi = mid;
      }
      out.push(hi);
    }
    return out;
  }

  // Years with transitions of every kind: today's DST at whole and half hours, and the changes from local mean time,
  // whose instants fall at odd seconds (Seoul 1908: +8:27:52 to +8:30; New York 1883; London 1847).
  it.each([
    [NEW_YORK, [1883, 1995, 2025]],
    ['Europe/London', [1847, 1995, 2025]],
    ['Australia/Lord_Howe', [1981, 2025]],
    ['America/Sao_Paulo', [1914, 1995]],
    [SEOUL, [1908, 1912, 1987, 1988]],
  ] as const)('should equal Intl in %s at every second around each transition, read after the minutes before it', (zone, years) => {
    const all = years.flatMap((year) => transitions(zone, year));
    expect(all.length).toBeGreaterThanOrEqual(years.length);
    for (const tr of all) {
      // Warm the cache on the slices around the transition first, then read the seconds across it.
      for (let t = tr - 3 * HOUR; t <= tr + 3 * HOUR; t += 7 * 60_000) expect(local(t, zone)).toEqual(intlParts(t, zone));
      for (let t = tr - 120_000; t <= tr + 120_000; t += 1000) expect(local(t, zone)).toEqual(intlParts(t, zone));
    }
  });

  it('should equal Intl at any instant in years 1..9999, in any order of reads', () => {
    fc.assert(
      fc.property(
        fc.constantFrom(...ZONES),
        fc.array(fc.integer({ min: -62_000_000_000_000, max: 253_000_000_000_000 }), { minLength: 1, maxLength: 20 }),
        (zone, instants) => {
          for (const ms of instants) expect(local(ms, zone)).toEqual(intlParts(ms, zone));
        },
      ),
      { numRuns: 300 },
    );
  });
});

describe(timeZoneOffsetMs.name, () => {
  it('should give +9h for Seoul and -5h/-4h for New York', () => {
    expect(timeZoneOffsetMs(new Date('2025-06-01T00:00:00Z'), SEOUL)).toBe(9 * HOUR);
    expect(timeZoneOffsetMs(new Date('2025-01-01T00:00:00Z'), NEW_YORK)).toBe(-5 * HOUR);
    expect(timeZoneOffsetMs(new Date('2025-07-01T00:00:00Z'), NEW_YORK)).toBe(-4 * HOUR);
  });
});

describe(daysInMonth.name, () => {
  it('should know month lengths and Gregorian leap years', () => {
    expect([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12].map((m) => daysInMonth(2025, m))).toEqual([31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31]);
    expect(daysInMonth(2024, 2)).toBe(29);
    expect(daysInMonth(2000, 2)).toBe(29);
    expect(daysInMonth(2100, 2)).toBe(28);
    expect(() => daysInMonth(2025, 13)).toThrow(RangeError);
  });
});

describe(fromZonedParts.name, () => {
  it('should build a Seoul instant from local parts', () => {
    expect(fromZonedParts({ year: 2025, month: 1, day: 31, hour: 0, minute: 30 }, SEOUL).toISOString()).toBe('2025-01-30T15:30:00.000Z');
    expect(fromZonedParts({ year: 2024, month: 2, day: 29 }, SEOUL).toISOString()).toBe('2024-02-28T15:00:00.000Z');
  });

  it('should move a nonexistent local time (DST gap) forward by the gap', () => {
    // 2025-03-09 02:30 does not exist in New York; it becomes 03:30 EDT.
    const d = fromZonedParts({ year: 2025, month: 3, day: 9, hour: 2, minute: 30 }, NEW_YORK);
    expect(d.toISOString()).toBe('2025-03-09T07:30:00.000Z');
    expect(formatZoned(d, NEW_YORK)).toBe('2025-03-09T03:30:00.000');
  });

  it('should take the earlier instant for an ambiguous local time (DST overlap)', () => {
    // 2025-11-02 01:30 happens twice in New York: 05:30Z (EDT) and 06:30Z (EST).
    expect(fromZonedParts({ year: 2025, month: 11, day: 2, hour: 1, minute: 30 }, NEW_YORK).toISOString()).toBe('2025-11-02T05:30:00.000Z');
  });

  it('should move forward over a skipped calendar day', () => {
    // Samoa skipped 2011-12-30 entirely (UTC-10 -> UTC+14).
    const d = fromZonedParts({ year: 2011, month: 12, day: 30, hour: 12 }, 'Pacific/Apia');
    expect(d.toISOString()).toBe('2011-12-30T22:00:00.000Z');
    expect(formatZoned(d, 'Pacific/Apia')).toBe('2011-12-31T12:00:00.000');
  });

  it('should reject impossible calendar fields and unknown zones', () => {
    const bad = [
      { year: 2025, month: 2, day: 29 },
      { year: 2025, month: 13, day: 1 },
      { year: 2025, month: 4, day: 31 },
      { year: 2025, month: 1, day: 1, hour: 24 },
      { year: 2025, month: 1, day: 1, minute: 60 },
      { year: 2025, month: 1, day: 1, millisecond: 1000 },
      { year: 2025.5, month: 1, day: 1 },
      { year: 10000, month: 1, day: 1 },
    ];
    for (const p of bad) expect(() => fromZonedParts(p, SEOUL)).toThrow(RangeError);
    expect(() => fromZonedParts({ year: 2025, month: 1, day: 1 }, 'Asia/Nowhere')).toThrow(RangeError);
  });

  it('should round-trip every instant to the earliest instant with the same wall time', () => {
    fc.assert(
      fc.property(instantArb, zoneArb, (d, tz) => {
        const p = zonedParts(d, tz);
        const back = fromZonedParts(p, tz);
        expect(zonedParts(back, tz)).toEqual(p);
        expect(back.getTime()).toBeLessThanOrEqual(d.getTime());
        expect(d.getTime() - back.getTime()).toBeLessThanOrEqual(2 * HOUR);
        if (tz === SEOUL) expect(back.getTime()).toBe(d.getTime());
      }),
      RUNS,
    );
  });
});

describe(periodStart.name, () => {
  it('should follow a monthly Jan 31 anchor for 14 months, clamping and returning to month ends', () => {
    const anchor = kst(2025, 1, 31, 10);
    expect(anchor.toISOString()).toBe('2025-01-31T01:00:00.000Z');
    const expected = [
      '2025-01-31',
      '2025-02-28',
      '2025-03-31',
      '2025-04-30',
      '2025-05-31',
      '2025-06-30',
      '2025-07-31',
      '2025-08-31',
      '2025-09-30',
      '2025-10-31',
      '2025-11-30',
      '2025-12-31',
      '2026-01-31',
      '2026-02-28',
      '2026-03-31',
    ];
    expected.forEach((date, n) => {
      expect(periodStart(anchor, 'month', 1, n, SEOUL).toISOString()).toBe(`${date}T01:00:00.000Z`);
    });
  });

  it('should give Feb 29 for a monthly Jan 31 anchor in a leap year', () => {
    expect(seoulStartDates(kst(2024, 1, 31, 10), 'month', 1, 15)).toEqual([
      '2024-01-31',
      '2024-02-29',
      '2024-03-31',
      '2024-04-30',
      '2024-05-31',
      '2024-06-30',
      '2024-07-31',
      '2024-08-31',
      '2024-09-30',
      '2024-10-31',
      '2024-11-30',
      '2024-12-31',
      '2025-01-31',
      '2025-02-28',
      '2025-03-31',
    ]);
  });

  it('should follow a yearly Feb 29 anchor to Feb 28 and back to Feb 29 in leap years', () => {
    const anchor = kst(2024, 2, 29, 9, 15);
    const expected = ['2024-02-29', '2025-02-28', '2026-02-28', '2027-02-28', '2028-02-29', '2029-02-28'];
    expected.forEach((date, n) => {
      expect(periodStart(anchor, 'year', 1, n, SEOUL).toISOString()).toBe(`${date}T00:15:00.000Z`);
    });
    expect(seoulStartDates(anchor, 'year', 4, 3)).toEqual(['2024-02-29', '2028-02-29', '2032-02-29']);
    expect(formatZoned(periodStart(anchor, 'year', 76, 1, SEOUL), SEOUL)).toBe('2100-02-28T09:15:00.000');
  });

  it('should follow a 3-month Nov 30 anchor from the anchor day, not the previous period', () => {
    expect(seoulStartDates(kst(2023, 11, 30, 14), 'month', 3, 9)).toEqual([
      '2023-11-30',
      '2024-02-29',
      '2024-05-30',
      '2024-08-30',
      '2024-11-30',
      '2025-02-28',
      '2025-05-30',
      '2025-08-30',
      '2025-11-30',
    ]);
    expect(seoulStartDates(kst(2024, 11, 30, 14), 'month', 3, 5)).toEqual(['2024-11-30', '2025-02-28', '2025-05-30', '2025-08-30', '2025-11-30']);
  });

  it('should add whole local days and weeks for day and week intervals', () => {
    const anchor = kst(2025, 2, 27, 23, 59, 59, 999);
    expect(seoulStartDates(anchor, 'day', 1, 4)).toEqual(['2025-02-27', '2025-02-28', '2025-03-01', '2025-03-02']);
    expect(seoulStartDates(anchor, 'day', 3, 4)).toEqual(['2025-02-27', '2025-03-02', '2025-03-05', '2025-03-08']);
    expect(seoulStartDates(anchor, 'week', 1, 3)).toEqual(['2025-02-27', '2025-03-06', '2025-03-13']);
    expect(seoulStartDates(anchor, 'week', 2, 4)).toEqual(['2025-02-27', '2025-03-13', '2025-03-27', '2025-04-10']);
    expect(periodStart(anchor, 'week', 2, 3, SEOUL).toISOString()).toBe('2025-04-10T14:59:59.999Z');
    expect(periodStart(anchor, 'day', 30, 12, SEOUL).toISOString()).toBe('2026-02-22T14:59:59.999Z');
  });

  it('should keep the Seoul time-of-day across the Seoul midnight / UTC date boundary', () => {
    const anchor = new Date('2025-01-30T15:30:00Z'); // 2025-01-31 00:30 KST
    expect(periodStart(anchor, 'month', 1, 1, SEOUL).toISOString()).toBe('2025-02-27T15:30:00.000Z'); // Feb 28 00:30
    expect(periodStart(anchor, 'month', 1, 2, SEOUL).toISOString()).toBe('2025-03-30T15:30:00.000Z'); // Mar 31 00:30
    expect(periodStart(anchor, 'month', 1, 3, SEOUL).toISOString()).toBe('2025-04-29T15:30:00.000Z'); // Apr 30 00:30
    expect(periodStart(anchor, 'year', 1, 1, SEOUL).toISOString()).toBe('2026-01-30T15:30:00.000Z');
    expect(periodStart(anchor, 'day', 1, 1, SEOUL).toISOString()).toBe('2025-01-31T15:30:00.000Z');
    // the same instant in UTC would be anchored on Jan 30 instead
    expect(periodStart(anchor, 'month', 1, 1, 'UTC').toISOString()).toBe('2025-02-28T15:30:00.000Z');
  });

  it('should keep the New York wall time across DST changes', () => {
    const monthly = new Date('2025-01-15T14:00:00Z'); // 09:00 EST
    expect(periodStart(monthly, 'month', 1, 3, NEW_YORK).toISOString()).toBe('2025-04-15T13:00:00.000Z'); // 09:00 EDT
    expect(periodStart(monthly, 'month', 1, 10, NEW_YORK).toISOString()).toBe('2025-11-15T14:00:00.000Z'); // EST
    const daily = new Date('2025-03-08T17:00:00Z'); // 12:00 EST, the day before spring-forward
    expect(periodStart(daily, 'day', 1, 1, NEW_YORK).toISOString()).toBe('2025-03-09T16:00:00.000Z'); // 23h later
    const fall = new Date('2025-11-01T16:00:00Z'); // 12:00 EDT, the day before fall-back
    expect(periodStart(fall, 'day', 1, 1, NEW_YORK).toISOString()).toBe('2025-11-02T17:00:00.000Z'); // 25h later
  });

  it('should resolve New York gap and overlap wall times of a period start', () => {
    const gapAnchor = new Date('2025-03-08T07:30:00Z'); // 02:30 EST; 2025-03-09 02:30 does not exist
    expect(periodStart(gapAnchor, 'day', 1, 1, NEW_YORK).toISOString()).toBe('2025-03-09T07:30:00.000Z'); // 03:30 EDT
    expect(periodStart(gapAnchor, 'day', 1, 2, NEW_YORK).toISOString()).toBe('2025-03-10T06:30:00.000Z'); // 02:30 EDT
    const overlapAnchor = new Date('2025-11-01T05:30:00Z'); // 01:30 EDT; 2025-11-02 01:30 happens twice
    expect(periodStart(overlapAnchor, 'day', 1, 1, NEW_YORK).toISOString()).toBe('2025-11-02T05:30:00.000Z');
    expect(periodStart(overlapAnchor, 'day', 1, 2, NEW_YORK).toISOString()).toBe('2025-11-03T06:30:00.000Z');
  });

  it('should return the anchor itself for n = 0, even in a DST overlap', () => {
    const secondOneThirty = new Date('2025-11-02T06:30:00Z'); // 01:30 EST, the second occurrence
    expect(periodStart(secondOneThirty, 'month', 1, 0, NEW_YORK).getTime()).toBe(secondOneThirty.getTime());
    expect(periodStart(secondOneThirty, 'month', 1, 1, NEW_YORK).toISOString()).toBe('2025-12-02T06:30:00.000Z');
    expect(periodIndexAt(secondOneThirty, 'day', 1, secondOneThirty, NEW_YORK)).toBe(0);
  });

  it('should reject invalid arguments with RangeError', () => {
    const a = kst(2025, 1, 31, 10);
    const bad: Array<() => unknown> = [
      () => periodStart(a, 'month', 0, 1, SEOUL),
      () => periodStart(a, 'month', MAX_INTERVAL_COUNT + 1, 1, SEOUL),
      () => periodStart(a, 'month', 1.5, 1, SEOUL),
      () => periodStart(a, 'month', NaN, 1, SEOUL),
      () => periodStart(a, 'month', 1, -1, SEOUL),
      () => periodStart(a, 'month', 1, 0.5, SEOUL),
      () => periodStart(a, 'month', 1, Infinity, SEOUL),
      () => periodStart(a, 'quarter' as BillingInterval, 1, 1, SEOUL),
      () => periodStart(a, 'month', 1, 1, 'Asia/Sеoul'),
      () => periodStart(new Date('invalid'), 'month', 1, 1, SEOUL),
      () => periodStart('2025-01-31' as unknown as Date, 'month', 1, 1, SEOUL),
      () => periodStart(a, 'year', 1000, 8, SEOUL), // beyond year 9999
      () => periodStart(a, 'day', 1, Number.MAX_SAFE_INTEGER - 1, SEOUL),
      () => periodEnd(a, 'month', 1, -1, SEOUL),
    ];
    for (const f of bad) expect(f).toThrow(RangeError);
    expect(periodStart(a, 'month', 1000, 1, SEOUL).toISOString()).toBe('2108-05-31T01:00:00.000Z');
  });

  it('should produce strictly increasing period starts', () => {
    fc.assert(
      fc.property(instantArb, intervalArb, fc.integer({ min: 1, max: 24 }), fc.integer({ min: 0, max: 120 }), zoneArb, (anchor, interval, count, n, tz) => {
        const s0 = periodStart(anchor, interval, count, n, tz).getTime();
        const s1 = periodStart(anchor, interval, count, n + 1, tz).getTime();
        expect(s1).toBeGreaterThan(s0);
        expect(periodEnd(anchor, interval, count, n, tz).getTime()).toBe(s1);
      }),
      RUNS,
    );
  });

  it("should put monthly starts on min(anchor day, days in month) of the right month at the anchor's time", () => {
    fc.assert(
      fc.property(instantArb, fc.integer({ min: 1, max: 12 }), fc.integer({ min: 0, max: 200 }), (anchor, count, n) => {
        const a = seoulLocal(anchor);
        const s = seoulLocal(periodStart(anchor, 'month', count, n, SEOUL));
        const total = a.year * 12 + (a.month - 1) + n * count;
        const year = Math.floor(total / 12);
        const month = (total % 12) + 1;
        expect(s).toEqual({ year, month, day: Math.min(a.day, refDaysInMonth(year, month)), timeOfDay: a.timeOfDay });
      }),
      RUNS,
    );
  });

  it('should keep the local day of yearly starts except Feb 29 -> Feb 28 in common years', () => {
    fc.assert(
      fc.property(instantArb, fc.integer({ min: 1, max: 5 }), fc.integer({ min: 0, max: 100 }), (anchor, c, n) => {
        const a = seoulLocal(anchor);
        const s = seoulLocal(periodStart(anchor, 'year', c, n, SEOUL));
        const year = a.year + n * c;
        expect(s).toEqual({
          year,
          month: a.month,
          day: Math.min(a.day, refDaysInMonth(year, a.month)),
          timeOfDay: a.timeOfDay,
        });
      }),
      RUNS,
    );
  });

  it('should preserve the local time-of-day in Asia/Seoul for every interval', () => {
    fc.assert(
      fc.property(instantArb, intervalArb, fc.integer({ min: 1, max: 12 }), fc.integer({ min: 0, max: 100 }), (anchor, interval, count, n) => {
        expect(seoulLocal(periodStart(anchor, interval, count, n, SEOUL)).timeOfDay).toBe(seoulLocal(anchor).timeOfDay);
      }),
      RUNS,
    );
  });

  it('should space day periods of count c exactly c*24h apart in Asia/Seoul (and weeks 7c*24h)', () => {
    fc.assert(
      fc.property(instantArb, fc.integer({ min: 1, max: 1000 }), fc.integer({ min: 0, max: 300 }), (a, c, n) => {
        const s0 = periodStart(a, 'day', c, n, SEOUL).getTime();
        const s1 = periodStart(a, 'day', c, n + 1, SEOUL).getTime();
        expect(s1 - s0).toBe(c * DAY);
        expect(s0).toBe(a.getTime() + n * c * DAY);
        expect(periodStart(a, 'week', c, n, SEOUL).getTime()).toBe(a.getTime() + n * c * 7 * DAY);
      }),
      RUNS,
    );
  });
});

describe(periodEnd.name, () => {
  it('should be the start of the next period', () => {
    const a = kst(2025, 1, 31, 10);
    expect(periodEnd(a, 'month', 1, 0, SEOUL).toISOString()).toBe('2025-02-28T01:00:00.000Z');
    expect(periodEnd(a, 'month', 1, 1, SEOUL).toISOString()).toBe('2025-03-31T01:00:00.000Z');
  });
});

describe(periodIndexAt.name, () => {
  const anchor = kst(2025, 1, 31, 10);

  it('should find the period containing an instant, with exclusive ends', () => {
    expect(periodIndexAt(anchor, 'month', 1, new Date(anchor.getTime() - 1), SEOUL)).toBe(-1);
    expect(periodIndexAt(anchor, 'month', 1, new Date('2000-01-01T00:00:00Z'), SEOUL)).toBe(-1);
    expect(periodIndexAt(anchor, 'month', 1, anchor, SEOUL)).toBe(0);
    expect(periodIndexAt(anchor, 'month', 1, new Date('2025-02-28T00:59:59.999Z'), SEOUL)).toBe(0);
    expect(periodIndexAt(anchor, 'month', 1, new Date('2025-02-28T01:00:00.000Z'), SEOUL)).toBe(1);
    expect(periodIndexAt(anchor, 'month', 1, new Date('2025-03-30T23:00:00.000Z'), SEOUL)).toBe(1); // Mar 31 08:00
    expect(periodIndexAt(anchor, 'month', 1, new Date('2025-03-31T01:00:00.000Z'), SEOUL)).toBe(2);
    expect(periodIndexAt(anchor, 'month', 3, new Date('2025-04-30T01:00:00.000Z'), SEOUL)).toBe(1);
    expect(periodIndexAt(anchor, 'year', 1, new Date('2026-01-31T00:59:59.999Z'), SEOUL)).toBe(0);
    expect(periodIndexAt(anchor, 'year', 1, new Date('2026-01-31T01:00:00.000Z'), SEOUL)).toBe(1);
    expect(periodIndexAt(anchor, 'week', 2, new Date('2025-02-14T01:00:00.000Z'), SEOUL)).toBe(1);
    expect(periodIndexAt(anchor, 'week', 2, new Date('2025-02-14T00:59:59.999Z'), SEOUL)).toBe(0);
  });

  it('should find far-away periods with a constant number of time-zone look-ups', () => {
    const spy = jest.spyOn(Intl.DateTimeFormat.prototype, 'formatToParts');
    try {
      const at = new Date('2099-01-01T00:00:00Z'); // 2099-01-01 09:00 KST, before the 10:00 start
      const days = (Date.UTC(2099, 0, 1) - Date.UTC(2025, 0, 31)) / DAY;
      expect(periodIndexAt(anchor, 'day', 1, at, SEOUL)).toBe(days - 1);
      expect(periodIndexAt(anchor, 'month', 1, at, SEOUL)).toBe((2098 - 2025) * 12 + 11);
      expect(periodIndexAt(anchor, 'day', 1, new Date('9999-12-30T00:00:00Z'), SEOUL)).toBe((Date.UTC(9999, 11, 30) - Date.UTC(2025, 0, 31)) / DAY - 1);
      expect(spy.mock.calls.length).toBeLessThan(100);
    } finally {
      spy.mockRestore();
    }
  });

  it('should treat a next start beyond year 9999 as open-ended', () => {
    const a = kst(9000, 6, 1);
    expect(periodIndexAt(a, 'year', 1000, new Date('9999-12-30T00:00:00Z'), SEOUL)).toBe(0);
  });

  it('should reject invalid arguments with RangeError', () => {
    expect(() => periodIndexAt(anchor, 'month', 0, anchor, SEOUL)).toThrow(RangeError);
    expect(() => periodIndexAt(anchor, 'month', 1, new Date(NaN), SEOUL)).toThrow(RangeError);
    expect(() => periodIndexAt(anchor, 'month', 1, anchor, 'Seoul')).toThrow(RangeError);
    expect(() => periodIndexAt(anchor, 'fortnight' as BillingInterval, 1, anchor, SEOUL)).toThrow(RangeError);
  });

  it('should invert periodStart: index of start(n) is n and of start(n+1) - 1ms is n', () => {
    fc.assert(
      fc.property(instantArb, intervalArb, fc.integer({ min: 1, max: 24 }), fc.integer({ min: 0, max: 150 }), zoneArb, (anchor, interval, count, n, tz) => {
        const start = periodStart(anchor, interval, count, n, tz);
        const next = periodStart(anchor, interval, count, n + 1, tz);
        expect(periodIndexAt(anchor, interval, count, start, tz)).toBe(n);
        expect(periodIndexAt(anchor, interval, count, new Date(next.getTime() - 1), tz)).toBe(n);
      }),
      RUNS,
    );
  });

  it('should place any instant inside the period it reports', () => {
    fc.assert(
      fc.property(instantArb, intervalArb, fc.integer({ min: 1, max: 6 }), instantArb, zoneArb, (a, iv, c, at, tz) => {
        const n = periodIndexAt(a, iv, c, at, tz);
        if (at.getTime() < a.getTime()) {
          expect(n).toBe(-1);
          return;
        }
        expect(periodStart(a, iv, c, n, tz).getTime()).toBeLessThanOrEqual(at.getTime());
        expect(periodStart(a, iv, c, n + 1, tz).getTime()).toBeGreaterThan(at.getTime());
      }),
      RUNS,
    );
  });
});

describe(addInterval.name, () => {
  it('should add one step with the same clamping rules for the date itself', () => {
    const jan31 = kst(2025, 1, 31, 18, 45);
    expect(addInterval(jan31, 'month', 1, SEOUL).toISOString()).toBe(kst(2025, 2, 28, 18, 45).toISOString());
    expect(addInterval(kst(2024, 1, 31), 'month', 1, SEOUL).toISOString()).toBe(kst(2024, 2, 29).toISOString());
    expect(addInterval(kst(2024, 2, 29, 12), 'year', 1, SEOUL).toISOString()).toBe(kst(2025, 2, 28, 12).toISOString());
    expect(addInterval(jan31, 'day', 14, SEOUL).toISOString()).toBe(kst(2025, 2, 14, 18, 45).toISOString());
    expect(addInterval(jan31, 'week', 1, SEOUL).toISOString()).toBe(kst(2025, 2, 7, 18, 45).toISOString());
    expect(addInterval(jan31, 'month', 0, SEOUL).getTime()).toBe(jan31.getTime());
    expect(() => addInterval(jan31, 'month', -1, SEOUL)).toThrow(RangeError);
    expect(() => addInterval(jan31, 'month', MAX_INTERVAL_COUNT + 1, SEOUL)).toThrow(RangeError);
  });

  it('should equal the first period end of a subscription anchored at the date', () => {
    fc.assert(
      fc.property(instantArb, intervalArb, fc.integer({ min: 1, max: 1000 }), zoneArb, (d, iv, c, tz) => {
        expect(addInterval(d, iv, c, tz).getTime()).toBe(periodEnd(d, iv, c, 0, tz).getTime());
      }),
      RUNS,
    );
  });
});

describe(addDays.name, () => {
  it('should add and subtract local calendar days keeping the wall time', () => {
    const d = new Date('2025-01-30T15:30:00Z'); // 2025-01-31 00:30 KST
    expect(addDays(d, 1, SEOUL).toISOString()).toBe('2025-01-31T15:30:00.000Z');
    expect(addDays(d, 29, SEOUL).toISOString()).toBe('2025-02-28T15:30:00.000Z'); // Mar 1 00:30 KST
    expect(addDays(d, -31, SEOUL).toISOString()).toBe('2024-12-30T15:30:00.000Z'); // Dec 31 00:30 KST
    expect(addDays(d, 0, SEOUL).getTime()).toBe(d.getTime());
    expect(addDays(new Date('2025-03-08T17:00:00Z'), 1, NEW_YORK).toISOString()).toBe('2025-03-09T16:00:00.000Z');
    expect(() => addDays(d, 1.5, SEOUL)).toThrow(RangeError);
    expect(() => addDays(d, 10_000_000, SEOUL)).toThrow(RangeError);
  });

  it('should move exactly days*24h in Asia/Seoul', () => {
    // stays after 1988 (Seoul observed DST in 1987-88)
    fc.assert(
      fc.property(instantArb, fc.integer({ min: -4000, max: 5000 }), (d, days) => {
        expect(addDays(d, days, SEOUL).getTime()).toBe(d.getTime() + days * DAY);
      }),
      RUNS,
    );
  });
});

describe('interval bounds shared with the API', () => {
  it('computes periods for every count a plan may have (the largest of each unit, far from the anchor)', () => {
    for (const interval of BILLING_INTERVALS) {
      const count = MAX_INTERVAL_COUNTS[interval];
      expect(count).toBeLessThanOrEqual(MAX_INTERVAL_COUNT);
      const anchor = new Date('2026-01-31T01:00:00Z');
      expect(periodStart(anchor, interval, count, 1, 'Asia/Seoul').getTime()).toBeGreaterThan(anchor.getTime());
      expect(periodIndexAt(anchor, interval, count, new Date('2030-01-01T00:00:00Z'), 'Asia/Seoul')).toBe(0);
    }
  });
});
