import fc from 'fast-check';
import { prorate, prorationForPlanChange } from './money';
import { planChange, PlanTerms, samePeriods } from './plan-change';
import { addInterval, BILLING_INTERVALS, BillingInterval } from './periods';

const TZ = 'Asia/Seoul';
const DAY = 86_400_000;
const PROPERTY_RUNS = { numRuns: 10_000 };
const MAX = Number.MAX_SAFE_INTEGER;

const plan = (amount: number, interval: BillingInterval, intervalCount = 1, taxFree = 0): PlanTerms => ({ amount, taxFree, interval, intervalCount });

/** The old plan's period starting 2026-01-15 00:00 in Seoul, and its middle. */
function oldPeriod(old: PlanTerms) {
  const periodStart = new Date('2026-01-14T15:00:00.000Z');
  const periodEnd = addInterval(periodStart, old.interval, old.intervalCount, TZ);
  const at = new Date((periodStart.getTime() + periodEnd.getTime()) / 2);
  return { periodStart, periodEnd, at };
}

describe(planChange.name, () => {
  it.each([
    // old plan, new plan, rule, credit, charge, net: each change at the middle of the old plan's period
    ['monthly 9,997 → yearly 99,970', plan(9997, 'month'), plan(99970, 'year'), 'reanchor', 4999, 99970, 94971],
    ['yearly 99,970 → monthly 9,997', plan(99970, 'year'), plan(9997, 'month'), 'reanchor', 49985, 9997, -39988],
    ['monthly 9,997 → quarterly 29,991', plan(9997, 'month'), plan(29991, 'month', 3), 'reanchor', 4999, 29991, 24992],
    ['quarterly 29,991 → monthly 9,997', plan(29991, 'month', 3), plan(9997, 'month'), 'reanchor', 14996, 9997, -4999],
    ['daily 1,000 → weekly 6,000', plan(1000, 'day'), plan(6000, 'week'), 'reanchor', 500, 6000, 5500],
    ['weekly 6,000 → daily 1,000', plan(6000, 'week'), plan(1000, 'day'), 'reanchor', 3000, 1000, -2000],
    ['weekly 6,000 → monthly 22,000', plan(6000, 'week'), plan(22000, 'month'), 'reanchor', 3000, 22000, 19000],
    ['monthly 22,000 → weekly 6,000', plan(22000, 'month'), plan(6000, 'week'), 'reanchor', 11000, 6000, -5000],
    ['every 2 weeks 11,000 → weekly 6,000', plan(11000, 'week', 2), plan(6000, 'week'), 'reanchor', 5500, 6000, 500],
    ['every 30 days 9,000 → monthly 9,900', plan(9000, 'day', 30), plan(9900, 'month'), 'reanchor', 4500, 9900, 5400],
    ['every 2 years 190,000 → yearly 99,000', plan(190000, 'year', 2), plan(99000, 'year'), 'reanchor', 95000, 99000, 4000],
    ['daily 1,000 → yearly 300,000', plan(1000, 'day'), plan(300000, 'year'), 'reanchor', 500, 300000, 299500],
    ['yearly 99,000 → daily 1,000', plan(99000, 'year'), plan(1000, 'day'), 'reanchor', 49500, 1000, -48500],
    ['monthly 10,000 → monthly 20,000', plan(10000, 'month'), plan(20000, 'month'), 'same_period', 5000, 10000, 5000],
    ['monthly 20,000 → monthly 10,000', plan(20000, 'month'), plan(10000, 'month'), 'same_period', 10000, 5000, -5000],
    ['weekly 6,000 → every 7 days 7,000', plan(6000, 'week'), plan(7000, 'day', 7), 'same_period', 3000, 3500, 500],
    ['yearly 120,000 → every 12 months 99,000', plan(120000, 'year'), plan(99000, 'month', 12), 'same_period', 60000, 49500, -10500],
    ['quarterly 29,991 → quarterly 59,982', plan(29991, 'month', 3), plan(59982, 'month', 3), 'same_period', 14996, 29991, 14995],
    ['every 2 days 2,001 → every 2 days 4,001', plan(2001, 'day', 2), plan(4001, 'day', 2), 'same_period', 1001, 2001, 1000],
  ] as const)('should quote %s at mid-period', (_name, old, next, rule, credit, charge, net) => {
    const q = planChange({ old, new: next, paid: old.amount, paidTaxFree: old.taxFree, ...oldPeriod(old) });
    expect(q).toEqual({ rule, credit, creditTaxFree: 0, charge, chargeTaxFree: 0, net, netTaxFree: 0 });
  });

  it("should charge the issue's monthly 9,997 → yearly 99,970 at mid-month once, for a year from now", () => {
    // A 31-day month (Jan 15 → Feb 15), changed after 15.5 days.
    const periodStart = new Date('2026-01-14T15:00:00.000Z');
    const periodEnd = new Date('2026-02-14T15:00:00.000Z');
    const at = new Date(periodStart.getTime() + 15.5 * DAY);
    const q = planChange({ old: plan(9997, 'month'), new: plan(99970, 'year'), paid: 9997, paidTaxFree: 0, periodStart, periodEnd, at });
    expect(q).toMatchObject({ rule: 'reanchor', credit: 4999, charge: 99970, net: 94971 });
    // What the customer pays for the half month used and a year of the new plan: 4,998 + 99,970.
    expect(9997 + q.net).toBe(4998 + 99970);
    // The same-interval formula charged 44,986 now, and the year's 99,970 again at Feb 15.
    const old = prorationForPlanChange({ oldAmount: 9997, oldTaxFree: 0, newAmount: 99970, newTaxFree: 0, periodStart, periodEnd, at });
    expect(old.net).toBe(44986);
  });

  it("should charge the issue's monthly 9,997 → quarterly 29,991 at mid-month the quarter's price less the unused half month", () => {
    const periodStart = new Date('2026-01-14T15:00:00.000Z');
    const periodEnd = new Date('2026-02-14T15:00:00.000Z');
    const at = new Date(periodStart.getTime() + 15.5 * DAY);
    const q = planChange({ old: plan(9997, 'month'), new: plan(29991, 'month', 3), paid: 9997, paidTaxFree: 0, periodStart, periodEnd, at });
    expect(q).toMatchObject({ rule: 'reanchor', credit: 4999, charge: 29991, net: 24992 });
    const old = prorationForPlanChange({ oldAmount: 9997, oldTaxFree: 0, newAmount: 29991, newTaxFree: 0, periodStart, periodEnd, at });
    expect(old.net).toBe(9997); // a third of a quarter's price for half a month
  });

  it('should never credit more than was paid for the period (after refunds, or in a trial)', () => {
    const period = oldPeriod(plan(10000, 'month'));
    const refunded = planChange({ old: plan(10000, 'month'), new: plan(99000, 'year'), paid: 3000, paidTaxFree: 0, ...period });
    expect(refunded).toMatchObject({ credit: 3000, charge: 99000, net: 96000 });
    const trial = planChange({ old: plan(10000, 'month'), new: plan(20000, 'month'), paid: 0, paidTaxFree: 0, ...period });
    expect(trial).toMatchObject({ rule: 'same_period', credit: 0, charge: 10000, net: 10000 });
  });

  it('should split the tax-free parts by plan and keep the net tax-free part within the net', () => {
    const mixedOld = plan(15000, 'month', 1, 4000);
    const same = planChange({ old: mixedOld, new: plan(30000, 'month', 1, 8000), paid: 15000, paidTaxFree: 4000, ...oldPeriod(mixedOld) });
    expect(same).toEqual({ rule: 'same_period', credit: 7500, creditTaxFree: 2000, charge: 15000, chargeTaxFree: 4000, net: 7500, netTaxFree: 2000 });

    const toTaxable = planChange({ old: plan(10000, 'month', 1, 4000), new: plan(30000, 'month', 3), paid: 10000, paidTaxFree: 4000, ...oldPeriod(mixedOld) });
    expect(toTaxable).toMatchObject({ credit: 5000, creditTaxFree: 2000, charge: 30000, chargeTaxFree: 0, net: 25000, netTaxFree: 0 });

    const toTaxFree = planChange({ old: plan(10000, 'month'), new: plan(3000, 'year', 1, 3000), paid: 10000, paidTaxFree: 0, ...oldPeriod(mixedOld) });
    expect(toTaxFree).toMatchObject({ credit: 5000, creditTaxFree: 0, charge: 3000, chargeTaxFree: 3000, net: -2000, netTaxFree: 0 });
  });

  it('should reject an instant outside the period, bad plans and bad amounts', () => {
    const old = plan(10000, 'month');
    const base = { old, new: plan(20000, 'year'), paid: 10000, paidTaxFree: 0, ...oldPeriod(old) };
    expect(() => planChange({ ...base, at: base.periodEnd })).toThrow(RangeError);
    expect(() => planChange({ ...base, at: new Date(base.periodStart.getTime() - 1) })).toThrow(RangeError);
    expect(() => planChange({ ...base, periodEnd: base.periodStart })).toThrow(RangeError);
    expect(() => planChange({ ...base, paid: -1 })).toThrow(RangeError);
    expect(() => planChange({ ...base, paidTaxFree: 10001 })).toThrow(RangeError);
    expect(() => planChange({ ...base, new: plan(100, 'year', 1, 101) })).toThrow(RangeError);
    expect(() => planChange({ ...base, new: plan(100, 'fortnight' as BillingInterval) })).toThrow(RangeError);
    expect(() => planChange({ ...base, new: plan(100, 'year', 0) })).toThrow(RangeError);
    expect(() => planChange({ ...base, old: plan(100.5, 'month') })).toThrow(RangeError);
  });

  const termsArb = fc
    .record({
      amount: fc.oneof(fc.integer({ min: 0, max: 10_000_000 }), fc.integer({ min: 0, max: MAX })),
      taxFreeShare: fc.oneof(fc.constant(0), fc.constant(1), fc.double({ min: 0, max: 1, noNaN: true })),
      interval: fc.constantFrom(...BILLING_INTERVALS),
      intervalCount: fc.oneof(fc.constant(1), fc.integer({ min: 1, max: 36 })),
    })
    .map(({ amount, taxFreeShare, interval, intervalCount }) => plan(amount, interval, intervalCount, Math.floor(amount * taxFreeShare)));

  const changeArb = fc
    .record({
      old: termsArb,
      next: termsArb,
      paidShare: fc.oneof(fc.constant(1), fc.double({ min: 0, max: 2, noNaN: true })),
      paidTaxFreeShare: fc.double({ min: 0, max: 1, noNaN: true }),
      start: fc.integer({ min: Date.UTC(2020, 0, 1), max: Date.UTC(2030, 0, 1) }),
      length: fc.integer({ min: 1, max: 800 * DAY }),
      fraction: fc.double({ min: 0, max: 1, noNaN: true }),
    })
    .map(({ old, next, paidShare, paidTaxFreeShare, start, length, fraction }) => {
      const paid = Math.min(MAX, Math.floor(old.amount * paidShare));
      return {
        old,
        new: next,
        paid,
        paidTaxFree: Math.floor(paid * paidTaxFreeShare),
        periodStart: new Date(start),
        periodEnd: new Date(start + length),
        at: new Date(start + Math.min(length - 1, Math.floor(length * fraction))),
      };
    });

  it('should never charge more than the new price nor credit more than was paid, and net the two', () => {
    fc.assert(
      fc.property(changeArb, (input) => {
        const q = planChange(input);
        const remaining = input.periodEnd.getTime() - input.at.getTime();
        const length = input.periodEnd.getTime() - input.periodStart.getTime();
        expect(q.rule).toBe(samePeriods(input.old, input.new) ? 'same_period' : 'reanchor');
        expect(q.charge).toBeGreaterThanOrEqual(0);
        expect(q.charge).toBeLessThanOrEqual(input.new.amount);
        expect(q.charge).toBe(q.rule === 'same_period' ? prorate(input.new.amount, remaining, length) : input.new.amount);
        expect(q.credit).toBeGreaterThanOrEqual(0);
        expect(q.credit).toBeLessThanOrEqual(input.paid);
        expect(q.credit).toBe(Math.min(prorate(input.old.amount, remaining, length), input.paid));
        expect(q.creditTaxFree).toBeGreaterThanOrEqual(0);
        expect(q.creditTaxFree).toBeLessThanOrEqual(Math.min(q.credit, input.paidTaxFree));
        expect(q.credit - q.creditTaxFree).toBeLessThanOrEqual(input.paid - input.paidTaxFree);
        expect(q.chargeTaxFree).toBeLessThanOrEqual(Math.min(q.charge, input.new.taxFree));
        expect(q.net).toBe(q.charge - q.credit);
        if (q.net >= 0) {
          expect(q.netTaxFree).toBeGreaterThanOrEqual(0);
          expect(q.netTaxFree).toBeLessThanOrEqual(q.net);
        } else {
          expect(q.netTaxFree).toBeLessThanOrEqual(0);
          expect(q.netTaxFree).toBeGreaterThanOrEqual(q.net);
        }
      }),
      PROPERTY_RUNS,
    );
  });

  it('should keep the same-period amounts of prorationForPlanChange when the old price was paid', () => {
    fc.assert(
      fc.property(changeArb, termsArb, (input, next) => {
        const sameNext = { ...next, interval: input.old.interval, intervalCount: input.old.intervalCount };
        const q = planChange({ ...input, new: sameNext, paid: input.old.amount, paidTaxFree: input.old.taxFree });
        const before = prorationForPlanChange({
          oldAmount: input.old.amount,
          oldTaxFree: input.old.taxFree,
          newAmount: sameNext.amount,
          newTaxFree: sameNext.taxFree,
          periodStart: input.periodStart,
          periodEnd: input.periodEnd,
          at: input.at,
        });
        expect(q.rule).toBe('same_period');
        expect([q.credit, q.creditTaxFree, q.charge, q.chargeTaxFree, q.net]).toEqual([
          before.credit,
          before.creditTaxFree,
          before.charge,
          before.chargeTaxFree,
          before.net,
        ]);
        // Changing to the same plan nets nothing.
        const unchanged = planChange({ ...input, new: input.old, paid: input.old.amount, paidTaxFree: input.old.taxFree });
        expect([unchanged.net, unchanged.netTaxFree]).toEqual([0, 0]);
      }),
      PROPERTY_RUNS,
    );
  });
});

describe(samePeriods.name, () => {
  it.each([
    ['1 month and 1 month', plan(1, 'month'), plan(2, 'month'), true],
    ['1 year and 12 months', plan(1, 'year'), plan(1, 'month', 12), true],
    ['2 years and 24 months', plan(1, 'year', 2), plan(1, 'month', 24), true],
    ['1 week and 7 days', plan(1, 'week'), plan(1, 'day', 7), true],
    ['2 weeks and 14 days', plan(1, 'week', 2), plan(1, 'day', 14), true],
    ['1 month and 30 days', plan(1, 'month'), plan(1, 'day', 30), false],
    ['4 weeks and 1 month', plan(1, 'week', 4), plan(1, 'month'), false],
    ['1 month and 3 months', plan(1, 'month'), plan(1, 'month', 3), false],
    ['1 year and 365 days', plan(1, 'year'), plan(1, 'day', 365), false],
  ] as const)('should tell whether %s bill on the same periods', (_name, a, b, expected) => {
    expect(samePeriods(a, b)).toBe(expected);
    expect(samePeriods(b, a)).toBe(expected);
  });
});
