import fc from 'fast-check';
import { breakdown, monthlyAmount, prorate, prorationForPlanChange, splitTaxFree, supplyOf, unusedRefund, vatOf } from './money';

const DAY = 86_400_000;
const RUNS = { numRuns: 200 };
const MAX = Number.MAX_SAFE_INTEGER;

/** Independent exact reference: round-half-up(a * n / d) for a, n >= 0, d > 0. */
function refRatio(a: number, n: number, d: number): number {
  const num = BigInt(a) * BigInt(n);
  const q = num / BigInt(d);
  const r = num % BigInt(d);
  return Number(2n * r >= BigInt(d) ? q + 1n : q);
}

/** Period of `days` days starting 2025-03-01 00:00 KST. */
function period(days: number) {
  const start = new Date('2025-02-28T15:00:00.000Z');
  return { start, end: new Date(start.getTime() + days * DAY) };
}
const after = (d: Date, ms: number) => new Date(d.getTime() + ms);

const wonArb = fc.oneof(fc.integer({ min: 0, max: 10_000_000 }), fc.integer({ min: 0, max: MAX }));
/** [amount, taxFree] with taxFree <= amount. */
const amountTaxFreeArb = wonArb.chain((amount) =>
  fc.tuple(fc.constant(amount), fc.oneof(fc.constant(0), fc.constant(amount), fc.integer({ min: 0, max: amount }))),
);
/** A period [start, end) and an instant inside it. */
const periodAtArb = fc
  .record({
    start: fc.integer({ min: Date.UTC(2020, 0, 1), max: Date.UTC(2030, 0, 1) }),
    length: fc.integer({ min: 1, max: 400 * DAY }),
    fraction: fc.double({ min: 0, max: 1, noNaN: true }),
  })
  .map(({ start, length, fraction }) => ({
    periodStart: new Date(start),
    periodEnd: new Date(start + length),
    at: new Date(start + Math.min(length - 1, Math.floor(length * fraction))),
  }));

describe(vatOf.name, () => {
  it.each([
    [11000, 0, 1000],
    [10000, 0, 909], // 909.09
    [10000, 10000, 0],
    [0, 0, 0],
    [5, 0, 0], // 0.4545 -> 0
    [6, 0, 1], // 0.5454 -> 1
    [60, 0, 5], // 5.4545 -> 5 (remainder 5 rounds down)
    [61, 0, 6], // 5.5454 -> 6 (remainder 6 rounds up)
    [10004, 0, 909], // 909.4545
    [10005, 0, 910], // 909.5454
    [9900, 0, 900],
    [29900, 0, 2718], // 2718.18
    [49500, 0, 4500],
    [15000, 4000, 1000],
    [10000, 3000, 636], // 7000 / 11 = 636.36
    [10000, 3995, 546], // 6005 / 11 = 545.909
    [MAX, 0, 818836295885545], // (2^53 - 1) / 11 = 818836295885544.636
  ])('should give vatOf(%p, %p) = %p', (amount, taxFree, vat) => {
    expect(vatOf(amount, taxFree)).toBe(vat);
  });

  it('should reject negative, fractional, unsafe or inconsistent amounts', () => {
    const bad: Array<[number, number]> = [
      [-1, 0],
      [100, -1],
      [100.5, 0],
      [100, 0.5],
      [NaN, 0],
      [Infinity, 0],
      [MAX + 1, 0],
      [100, 101],
    ];
    for (const [a, tf] of bad) expect(() => vatOf(a, tf)).toThrow(RangeError);
    expect(() => vatOf('100' as unknown as number, 0)).toThrow(RangeError);
  });

  it('should equal the exact half-up reference and add up with supply and tax-free', () => {
    fc.assert(
      fc.property(amountTaxFreeArb, ([amount, taxFree]) => {
        const vat = vatOf(amount, taxFree);
        const supply = supplyOf(amount, taxFree);
        expect(Number.isSafeInteger(vat)).toBe(true);
        expect(vat).toBe(refRatio(amount - taxFree, 1, 11));
        expect(vat).toBeGreaterThanOrEqual(0);
        expect(supply).toBeGreaterThanOrEqual(0);
        expect(vat + supply + taxFree).toBe(amount);
        expect(breakdown(amount, taxFree)).toEqual({ amount, taxFree, vat, supply });
      }),
      RUNS,
    );
  });
});

describe(supplyOf.name, () => {
  it('should be amount minus tax-free minus VAT', () => {
    expect(supplyOf(11000, 0)).toBe(10000);
    expect(supplyOf(10000, 0)).toBe(9091);
    expect(supplyOf(15000, 4000)).toBe(10000);
    expect(supplyOf(10000, 10000)).toBe(0);
    expect(() => supplyOf(1, 2)).toThrow(RangeError);
  });
});

describe(breakdown.name, () => {
  it('should split a payment into tax-free, supply and VAT', () => {
    expect(breakdown(10000, 3000)).toEqual({ amount: 10000, taxFree: 3000, vat: 636, supply: 6364 });
    expect(breakdown(29900, 0)).toEqual({ amount: 29900, taxFree: 0, vat: 2718, supply: 27182 });
    expect(() => breakdown(-1, 0)).toThrow(RangeError);
  });
});

describe(prorate.name, () => {
  it.each([
    [10000, 1, 3, 3333], // 3333.33
    [10000, 2, 3, 6667], // 6666.67
    [1, 1, 2, 1], // 0.5 rounds up
    [3, 1, 2, 2], // 1.5
    [5, 1, 2, 3], // 2.5 rounds up (not to even)
    [29900, 15 * DAY, 30 * DAY, 14950],
    [29900, 10 * DAY, 31 * DAY, 9645], // 9645.16
    [9900, 20 * DAY, 30 * DAY, 6600],
    [10000, 0, 10, 0],
    [10000, 10, 10, 10000],
    [10000, -5, 10, 0], // clamped
    [10000, 15, 10, 10000], // clamped
    [0, 5, 10, 0],
    [MAX, MAX - 1, MAX, MAX - 1], // exact: float math would be off here
    [MAX, 1, 2, 4503599627370496], // 4503599627370495.5 rounds up
    [MAX, 1, 3, 3002399751580330], // 3002399751580330.33
  ])('should give prorate(%p, %p, %p) = %p', (amount, num, den, expected) => {
    expect(prorate(amount, num, den)).toBe(expected);
  });

  it('should reject invalid arguments', () => {
    const bad: Array<[number, number, number]> = [
      [-1, 1, 2],
      [1.5, 1, 2],
      [MAX + 1, 1, 2],
      [100, 0.5, 2],
      [100, NaN, 2],
      [100, 1, 0],
      [100, 1, -2],
      [100, 1, 2.5],
      [100, 1, Infinity],
    ];
    for (const [a, n, d] of bad) expect(() => prorate(a, n, d)).toThrow(RangeError);
  });

  it('should stay within [0, amount] and match the exact BigInt reference', () => {
    fc.assert(
      fc.property(wonArb, fc.integer({ min: -MAX, max: MAX }), fc.integer({ min: 1, max: MAX }), (a, n, d) => {
        const p = prorate(a, n, d);
        expect(Number.isSafeInteger(p)).toBe(true);
        expect(p).toBeGreaterThanOrEqual(0);
        expect(p).toBeLessThanOrEqual(a);
        expect(p).toBe(refRatio(a, Math.min(Math.max(n, 0), d), d));
      }),
      RUNS,
    );
  });

  it('should be exact for realistic amounts and millisecond periods', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 100_000_000 }), fc.integer({ min: 1, max: 400 * DAY }), (a, d) => {
        for (const n of [0, 1, Math.floor(d / 3), Math.floor(d / 2), d - 1, d]) {
          expect(prorate(a, n, d)).toBe(refRatio(a, n, d));
        }
      }),
      RUNS,
    );
  });

  it('should be monotone in the numerator with prorate(a, d, d) = a and prorate(a, 0, d) = 0', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: Math.floor(MAX / 365) }),
        fc.integer({ min: 1, max: MAX }),
        fc.double({ min: 0, max: 1, noNaN: true }),
        fc.double({ min: 0, max: 1, noNaN: true }),
        (a, d, f1, f2) => {
          const n1 = Math.floor(d * Math.min(f1, f2));
          const n2 = Math.floor(d * Math.max(f1, f2));
          expect(prorate(a, n1, d)).toBeLessThanOrEqual(prorate(a, n2, d));
          expect(prorate(a, d, d)).toBe(a);
          expect(prorate(a, 0, d)).toBe(0);
        },
      ),
      RUNS,
    );
  });
});

describe(splitTaxFree.name, () => {
  it.each([
    [5000, 10000, 3000, 1500],
    [3333, 10000, 1000, 333], // 333.3
    [5, 10, 1, 1], // 0.5 rounds up
    [1, 3, 2, 1], // 0.667
    [2, 3, 2, 1], // 1.333
    [10000, 10000, 7777, 7777],
    [0, 10000, 5000, 0],
    [0, 0, 0, 0],
    [19933, 29900, 5000, 3333], // 3333.28
    [1, 2, 2, 1],
    [MAX - 1, MAX, MAX - 2, MAX - 3], // (MAX-2)(MAX-1)/MAX = MAX - 3 + 2/MAX
  ])('should give splitTaxFree(%p, %p, %p) = %p', (part, total, tf, expected) => {
    expect(splitTaxFree(part, total, tf)).toBe(expected);
  });

  it('should reject a part above the total and tax-free above the total', () => {
    expect(() => splitTaxFree(10001, 10000, 0)).toThrow(RangeError);
    expect(() => splitTaxFree(100, 10000, 10001)).toThrow(RangeError);
    expect(() => splitTaxFree(-1, 10000, 0)).toThrow(RangeError);
    expect(() => splitTaxFree(1.5, 10000, 0)).toThrow(RangeError);
  });

  it('should stay within the part and the total tax-free and within half a won of the exact share', () => {
    fc.assert(
      fc.property(
        amountTaxFreeArb.chain(([total, tf]) => fc.tuple(fc.integer({ min: 0, max: total }), fc.constant(total), fc.constant(tf))),
        ([part, total, tf]) => {
          const s = splitTaxFree(part, total, tf);
          expect(Number.isSafeInteger(s)).toBe(true);
          expect(s).toBeGreaterThanOrEqual(0);
          expect(s).toBeLessThanOrEqual(part);
          expect(s).toBeLessThanOrEqual(tf);
          if (total > 0) expect(s).toBe(refRatio(tf, part, total));
          expect(splitTaxFree(total, total, tf)).toBe(tf);
        },
      ),
      RUNS,
    );
  });
});

describe(prorationForPlanChange.name, () => {
  const { start, end } = period(30);

  it('should credit the unused old plan and charge the rest of the new plan (upgrade)', () => {
    expect(
      prorationForPlanChange({
        oldAmount: 9900,
        oldTaxFree: 0,
        newAmount: 29900,
        newTaxFree: 5000,
        periodStart: start,
        periodEnd: end,
        at: after(start, 10 * DAY),
      }),
    ).toEqual({ credit: 6600, creditTaxFree: 0, charge: 19933, chargeTaxFree: 3333, net: 13333, netTaxFree: 3333 });
  });

  it('should give a negative net for a downgrade', () => {
    expect(
      prorationForPlanChange({
        oldAmount: 29900,
        oldTaxFree: 5000,
        newAmount: 9900,
        newTaxFree: 0,
        periodStart: start,
        periodEnd: end,
        at: after(start, 10 * DAY),
      }),
    ).toEqual({ credit: 19933, creditTaxFree: 3333, charge: 6600, chargeTaxFree: 0, net: -13333, netTaxFree: -3333 });
  });

  it('should round each side half-up separately before subtracting', () => {
    // half the period left: credit 0.5 -> 1, charge 1; rounding the difference (1 * 0.5) would give 1 instead of 0
    const half = { periodStart: start, periodEnd: end, at: after(start, 15 * DAY) };
    expect(prorationForPlanChange({ oldAmount: 1, oldTaxFree: 0, newAmount: 2, newTaxFree: 0, ...half })).toEqual({
      credit: 1,
      creditTaxFree: 0,
      charge: 1,
      chargeTaxFree: 0,
      net: 0,
      netTaxFree: 0,
    });
    expect(prorationForPlanChange({ oldAmount: 9999, oldTaxFree: 0, newAmount: 10001, newTaxFree: 1, ...half })).toEqual({
      credit: 5000, // 4999.5
      creditTaxFree: 0,
      charge: 5001, // 5000.5
      chargeTaxFree: 1, // 0.50005
      net: 1,
      netTaxFree: 1,
    });
  });

  it('should credit and charge the full amounts at the period start and 1 ms worth at the last ms', () => {
    const base = { oldAmount: 10000, oldTaxFree: 1000, newAmount: 20000, newTaxFree: 0, periodStart: start, periodEnd: end };
    expect(prorationForPlanChange({ ...base, at: start })).toEqual({
      credit: 10000,
      creditTaxFree: 1000,
      charge: 20000,
      chargeTaxFree: 0,
      net: 10000,
      netTaxFree: -1000,
    });
    expect(prorationForPlanChange({ ...base, at: new Date(end.getTime() - 1) })).toEqual({
      credit: 0,
      creditTaxFree: 0,
      charge: 0,
      chargeTaxFree: 0,
      net: 0,
      netTaxFree: 0,
    });
  });

  it('should reject an instant outside [periodStart, periodEnd) and bad amounts', () => {
    const base = { oldAmount: 10000, oldTaxFree: 0, newAmount: 20000, newTaxFree: 0, periodStart: start, periodEnd: end };
    expect(() => prorationForPlanChange({ ...base, at: end })).toThrow(RangeError);
    expect(() => prorationForPlanChange({ ...base, at: after(start, -1) })).toThrow(RangeError);
    expect(() => prorationForPlanChange({ ...base, periodEnd: start, at: start })).toThrow(RangeError);
    expect(() => prorationForPlanChange({ ...base, at: new Date(NaN) })).toThrow(RangeError);
    expect(() => prorationForPlanChange({ ...base, oldTaxFree: 10001, at: start })).toThrow(RangeError);
    expect(() => prorationForPlanChange({ ...base, newAmount: 1.5, at: start })).toThrow(RangeError);
  });

  it('should keep each side within its plan, net = charge - credit, and a same-plan change net 0', () => {
    fc.assert(
      fc.property(amountTaxFreeArb, amountTaxFreeArb, periodAtArb, ([oldAmount, oldTaxFree], [newAmount, newTaxFree], p) => {
        const r = prorationForPlanChange({ oldAmount, oldTaxFree, newAmount, newTaxFree, ...p });
        const total = p.periodEnd.getTime() - p.periodStart.getTime();
        const left = p.periodEnd.getTime() - p.at.getTime();
        expect(r.credit).toBe(refRatio(oldAmount, left, total));
        expect(r.charge).toBe(refRatio(newAmount, left, total));
        expect(r.credit).toBeLessThanOrEqual(oldAmount);
        expect(r.charge).toBeLessThanOrEqual(newAmount);
        expect(r.creditTaxFree).toBeLessThanOrEqual(Math.min(r.credit, oldTaxFree));
        expect(r.chargeTaxFree).toBeLessThanOrEqual(Math.min(r.charge, newTaxFree));
        expect(Math.min(r.creditTaxFree, r.chargeTaxFree)).toBeGreaterThanOrEqual(0);
        expect(r.net).toBe(r.charge - r.credit);
        expect(r.netTaxFree).toBe(r.chargeTaxFree - r.creditTaxFree);
        if (newAmount >= oldAmount) expect(r.net).toBeGreaterThanOrEqual(0);
        const same = prorationForPlanChange({ oldAmount, oldTaxFree, newAmount: oldAmount, newTaxFree: oldTaxFree, ...p });
        expect([same.net, same.netTaxFree]).toEqual([0, 0]);
      }),
      RUNS,
    );
  });
});

describe(unusedRefund.name, () => {
  const { start, end } = period(30);
  const paid = { paidAmount: 30000, paidTaxFree: 3000, periodStart: start, periodEnd: end };

  it('should refund the unused part with its proportional tax-free part', () => {
    expect(unusedRefund({ ...paid, at: after(start, 12 * DAY) })).toEqual({ amount: 18000, taxFree: 1800 });
    expect(unusedRefund({ ...paid, at: after(start, 10 * DAY) })).toEqual({ amount: 20000, taxFree: 2000 });
    expect(unusedRefund({ ...paid, paidAmount: 29900, paidTaxFree: 0, at: after(start, 10 * DAY) })).toEqual({
      amount: 19933,
      taxFree: 0,
    });
  });

  it('should refund everything before the period starts and nothing from its end', () => {
    expect(unusedRefund({ ...paid, at: start })).toEqual({ amount: 30000, taxFree: 3000 });
    expect(unusedRefund({ ...paid, at: after(start, -DAY) })).toEqual({ amount: 30000, taxFree: 3000 });
    expect(unusedRefund({ ...paid, at: end })).toEqual({ amount: 0, taxFree: 0 });
    expect(unusedRefund({ ...paid, at: after(end, DAY) })).toEqual({ amount: 0, taxFree: 0 });
  });

  it('should never refund more than what is left after earlier refunds', () => {
    // 18000 unused but only 10000 left; tax-free left: 3000 - 2000 (assumed proportional)
    expect(unusedRefund({ ...paid, at: after(start, 12 * DAY), alreadyRefunded: 20000 })).toEqual({
      amount: 10000,
      taxFree: 1000,
    });
    expect(unusedRefund({ ...paid, at: after(start, 12 * DAY), alreadyRefunded: 5000 })).toEqual({
      amount: 18000,
      taxFree: 1800,
    });
    expect(unusedRefund({ ...paid, at: start, alreadyRefunded: 30000 })).toEqual({ amount: 0, taxFree: 0 });
  });

  it('should keep the tax-free part within the tax-free and taxable balances left', () => {
    // earlier refunds took all the tax-free part
    expect(unusedRefund({ ...paid, at: after(start, 12 * DAY), alreadyRefunded: 3000, alreadyRefundedTaxFree: 3000 })).toEqual({ amount: 18000, taxFree: 0 });
    // earlier refunds were all taxable: what is left is tax-free only
    expect(unusedRefund({ ...paid, at: after(start, 12 * DAY), alreadyRefunded: 27000, alreadyRefundedTaxFree: 0 })).toEqual({ amount: 3000, taxFree: 3000 });
    // 10000 left of which 7000 taxable: a 9000 refund needs at least 2000 tax-free
    expect(unusedRefund({ ...paid, at: after(start, 21 * DAY), alreadyRefunded: 20000, alreadyRefundedTaxFree: 0 })).toEqual({ amount: 9000, taxFree: 2000 });
  });

  it('should reject inconsistent inputs', () => {
    const at = after(start, DAY);
    expect(() => unusedRefund({ ...paid, at, alreadyRefunded: 30001 })).toThrow(RangeError);
    expect(() => unusedRefund({ ...paid, at, alreadyRefunded: -1 })).toThrow(RangeError);
    expect(() => unusedRefund({ ...paid, at, alreadyRefunded: 100, alreadyRefundedTaxFree: 101 })).toThrow(RangeError);
    expect(() => unusedRefund({ ...paid, at, alreadyRefunded: 4000, alreadyRefundedTaxFree: 3001 })).toThrow(RangeError);
    expect(() => unusedRefund({ ...paid, at, alreadyRefunded: 28000, alreadyRefundedTaxFree: 0 })).toThrow(RangeError);
    expect(() => unusedRefund({ ...paid, paidTaxFree: 30001, at })).toThrow(RangeError);
    expect(() => unusedRefund({ ...paid, periodEnd: start, at })).toThrow(RangeError);
    expect(() => unusedRefund({ ...paid, at: new Date(NaN) })).toThrow(RangeError);
  });

  it('should never exceed the remaining balance, even over a series of refunds', () => {
    fc.assert(
      fc.property(
        amountTaxFreeArb,
        periodAtArb,
        fc.array(fc.double({ min: -0.2, max: 1.2, noNaN: true }), { minLength: 1, maxLength: 6 }),
        ([paidAmount, paidTaxFree], p, fractions) => {
          const length = p.periodEnd.getTime() - p.periodStart.getTime();
          let refunded = 0;
          let refundedTaxFree = 0;
          for (const f of fractions) {
            const at = new Date(p.periodStart.getTime() + Math.floor(length * f));
            const r = unusedRefund({
              paidAmount,
              paidTaxFree,
              periodStart: p.periodStart,
              periodEnd: p.periodEnd,
              at,
              alreadyRefunded: refunded,
              alreadyRefundedTaxFree: refundedTaxFree,
            });
            expect(Number.isSafeInteger(r.amount) && Number.isSafeInteger(r.taxFree)).toBe(true);
            expect(r.amount).toBeGreaterThanOrEqual(0);
            expect(r.amount).toBeLessThanOrEqual(paidAmount - refunded);
            expect(r.amount).toBeLessThanOrEqual(prorate(paidAmount, p.periodEnd.getTime() - at.getTime(), length));
            expect(r.taxFree).toBeGreaterThanOrEqual(0);
            expect(r.taxFree).toBeLessThanOrEqual(Math.min(r.amount, paidTaxFree - refundedTaxFree));
            expect(r.amount - r.taxFree).toBeLessThanOrEqual(paidAmount - paidTaxFree - (refunded - refundedTaxFree));
            refunded += r.amount;
            refundedTaxFree += r.taxFree;
          }
          expect(refunded).toBeLessThanOrEqual(paidAmount);
          expect(refundedTaxFree).toBeLessThanOrEqual(paidTaxFree);
          if (refunded === paidAmount) expect(refundedTaxFree).toBe(paidTaxFree);
        },
      ),
      RUNS,
    );
  });

  it('should refund the exact proportional share on a first refund', () => {
    fc.assert(
      fc.property(amountTaxFreeArb, periodAtArb, ([paidAmount, paidTaxFree], p) => {
        const r = unusedRefund({ paidAmount, paidTaxFree, ...p });
        const length = p.periodEnd.getTime() - p.periodStart.getTime();
        expect(r.amount).toBe(refRatio(paidAmount, p.periodEnd.getTime() - p.at.getTime(), length));
        expect(r.taxFree).toBe(splitTaxFree(r.amount, paidAmount, paidTaxFree));
      }),
      RUNS,
    );
  });
});

describe(monthlyAmount.name, () => {
  it.each([
    [6999, 'week', 2, 15165], // 6,999 × 52 / 24 = 15,164.5
    [9900, 'month', 1, 9900],
    [30000, 'month', 3, 10000],
    [10, 'month', 4, 3], // 2.5
    [9, 'month', 4, 2], // 2.25
    [99000, 'year', 1, 8250],
    [100000, 'year', 1, 8333], // 8,333.33
    [100006, 'year', 1, 8334], // 8,333.83
    [99000, 'year', 2, 4125],
    [1000, 'day', 1, 30417], // 365,000 / 12 = 30,416.67
    [1000, 'day', 30, 1014], // 365,000 / 360 = 1,013.89
    [7000, 'week', 1, 30333], // 364,000 / 12 = 30,333.33
    [0, 'year', 1, 0],
    [MAX, 'year', 1, 750_599_937_895_083], // (2^53 − 1) / 12 = 750,599,937,895,082.58, exactly
  ] as const)('should give %p won per %p × %p = %p won a month', (amount, interval, count, monthly) => {
    expect(monthlyAmount(amount, interval, count)).toBe(monthly);
  });

  it('should equal the exact half-up reference for any plan', () => {
    const perYear = { day: 365, week: 52, month: 12, year: 1 } as const;
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: Math.floor(MAX / 365) }),
        fc.constantFrom('day', 'week', 'month', 'year' as const),
        fc.integer({ min: 1, max: 1000 }),
        (amount, interval, count) => {
          expect(monthlyAmount(amount, interval, count)).toBe(refRatio(amount, perYear[interval], 12 * count));
        },
      ),
      { numRuns: 10_000 },
    );
  });

  it('should reject bad amounts, intervals and counts', () => {
    expect(() => monthlyAmount(-1, 'month', 1)).toThrow(RangeError);
    expect(() => monthlyAmount(1.5, 'month', 1)).toThrow(RangeError);
    expect(() => monthlyAmount(100, 'fortnight' as 'week', 1)).toThrow(RangeError);
    expect(() => monthlyAmount(100, 'month', 0)).toThrow(RangeError);
    expect(() => monthlyAmount(100, 'month', 1.5)).toThrow(RangeError);
    expect(() => monthlyAmount(MAX, 'day', 1)).toThrow(RangeError); // above the safe integers
  });
});
