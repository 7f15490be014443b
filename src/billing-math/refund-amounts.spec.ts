import fc from 'fast-check';
import { prorate, vatOf } from './money';
import { PeriodPayment, RefundablePayment, RefundFigures, refundSplit, unusedRefundOfPeriod } from './refund-amounts';

const DAY = 86_400_000;
const PROPERTY_RUNS = { numRuns: 10_000 };

/** A payment of `amount` with `taxFree` tax-free, nothing refunded yet. */
function fresh(amount: number, taxFree = 0): RefundablePayment {
  return { amount, taxFreeAmount: taxFree, vat: vatOf(amount, taxFree), balanceAmount: amount, refundedTaxFree: 0, refundedVat: 0 };
}

/** The payment after `refund` went through (as the refunds service records it). */
function after(p: RefundablePayment, refund: { amount: number; taxFree: number; vat: number }): RefundablePayment {
  return {
    ...p,
    balanceAmount: p.balanceAmount - refund.amount,
    refundedTaxFree: p.refundedTaxFree + refund.taxFree,
    refundedVat: (p.refundedVat ?? 0) + refund.vat,
  };
}

/** Refunds `amounts` one after the other (the tax-free part left to the rule), and returns each refund's figures. */
function refundInTurn(p: RefundablePayment, amounts: number[]) {
  const refunds = [];
  for (const amount of amounts) {
    const r = refundSplit(p, amount);
    refunds.push(r);
    p = after(p, r);
  }
  return refunds;
}

const total = (rs: RefundFigures[], field: keyof RefundFigures) => rs.reduce((s, r) => s + r[field], 0);

describe(refundSplit.name, () => {
  it('should give four refunds of 2,750 of 11,000 (1,000 tax-free, VAT 909) VATs that sum to 909', () => {
    const refunds = refundInTurn(fresh(11000, 1000), [2750, 2750, 2750, 2750]);
    expect(refunds).toEqual([
      { amount: 2750, taxFree: 250, vat: 227, supply: 2273 }, // 909 × 2,500 / 10,000 = 227.25
      { amount: 2750, taxFree: 250, vat: 228, supply: 2272 }, // 454.5 → 455, less 227
      { amount: 2750, taxFree: 250, vat: 227, supply: 2273 }, // 681.75 → 682, less 455
      { amount: 2750, taxFree: 250, vat: 227, supply: 2273 }, // the VAT left: 909 − 682
    ]);
    expect(total(refunds, 'taxFree')).toBe(1000);
    expect(total(refunds, 'vat')).toBe(909);
    expect(total(refunds, 'supply')).toBe(9091);
  });

  it.each([
    ['one full refund', 11000, 0, [11000], [1000]],
    ['3,000 then 2,000 then the rest of 11,000', 11000, 0, [3000, 2000, 6000], [273, 182, 545]],
    ['three of 5 won then the rest of 10,000', 10000, 0, [5, 5, 5, 9985], [0, 1, 0, 908]],
    ['ten refunds of 1,000 of 10,000', 10000, 0, Array(10).fill(1000), [91, 91, 91, 91, 91, 90, 91, 91, 91, 91]],
    ['a tax-free payment', 10000, 10000, [3333, 6667], [0, 0]],
    ['15,000 with 4,000 tax-free in halves', 15000, 4000, [7500, 7500], [500, 500]],
  ])('should split %s so the VATs add up to the payment VAT', (_name, amount, taxFree, amounts, vats) => {
    const p = fresh(amount, taxFree);
    const refunds = refundInTurn(p, amounts);
    expect(refunds.map((r) => r.vat)).toEqual(vats);
    expect(total(refunds, 'vat')).toBe(p.vat);
    expect(total(refunds, 'taxFree')).toBe(taxFree);
    expect(total(refunds, 'supply')).toBe(amount - taxFree - p.vat);
  });

  it('should let the last refund take the VAT left after refunds that were rounded one by one', () => {
    // Three refunds of 2,750 recorded with VAT 227 each (each rounded alone): the fourth takes 909 − 681 = 228.
    const p: RefundablePayment = { ...fresh(11000, 1000), balanceAmount: 2750, refundedTaxFree: 750, refundedVat: 681 };
    expect(refundSplit(p, 2750)).toEqual({ amount: 2750, taxFree: 250, vat: 228, supply: 2272 });
  });

  it('should keep an explicit tax-free part and give the refund emptying the payment all that is left', () => {
    let p = fresh(15000, 4000);
    const first = refundSplit(p, 3333, 333);
    expect(first).toEqual({ amount: 3333, taxFree: 333, vat: 273, supply: 2727 });
    p = after(p, first);
    expect(refundSplit(p, p.balanceAmount)).toEqual({ amount: 11667, taxFree: 3667, vat: 727, supply: 7273 });
  });

  it('should work out the VAT already refunded when it is not given', () => {
    const p: RefundablePayment = { ...fresh(11000, 1000), balanceAmount: 5500, refundedTaxFree: 500 };
    delete p.refundedVat;
    expect(refundSplit(p, 5500)).toMatchObject({ taxFree: 500, vat: 454 }); // 909 − round(454.5)
  });

  it('should refuse refunds that do not fit what is left, and inconsistent payments', () => {
    const p = fresh(11000, 1000);
    expect(() => refundSplit(p, 11001)).toThrow(RangeError);
    expect(() => refundSplit(p, 500, 501)).toThrow(RangeError); // tax-free above the refund
    expect(() => refundSplit(p, 2000, 1001)).toThrow(RangeError); // tax-free above what is left of it
    expect(() => refundSplit(p, 11000, 0)).toThrow(RangeError); // taxable part above what is left of it
    expect(() => refundSplit(p, -1)).toThrow(RangeError);
    expect(() => refundSplit(p, 1.5)).toThrow(RangeError);
    expect(() => refundSplit({ ...p, balanceAmount: 11001 }, 1)).toThrow(RangeError);
    expect(() => refundSplit({ ...p, vat: 10001 }, 1)).toThrow(RangeError);
    expect(() => refundSplit({ ...p, refundedTaxFree: 1001 }, 1)).toThrow(RangeError);
    expect(() => refundSplit({ ...p, balanceAmount: 10500, refundedTaxFree: 600 }, 1)).toThrow(RangeError); // refunded 500, 600 of it tax-free
  });

  /** A payment and a series of refunds that empties it: each step a share of the balance, sometimes with its own tax-free part. */
  const seriesArb = fc.record({
    amount: fc.oneof(fc.integer({ min: 1, max: 100_000 }), fc.integer({ min: 1, max: 10_000_000_000 })),
    taxFreeShare: fc.oneof(fc.constant(0), fc.constant(1), fc.double({ min: 0, max: 1, noNaN: true })),
    steps: fc.array(fc.tuple(fc.double({ min: 0, max: 1, noNaN: true }), fc.option(fc.double({ min: 0, max: 1, noNaN: true }))), { maxLength: 8 }),
  });

  it('should make the refunds of any series that empties a payment add up to its tax-free part, VAT and supply exactly', () => {
    fc.assert(
      fc.property(seriesArb, ({ amount, taxFreeShare, steps }) => {
        const taxFree = Math.floor(amount * taxFreeShare);
        const start = fresh(amount, taxFree);
        const taxable = amount - taxFree;
        let p = start;
        const refunds = [];
        for (const [share, taxFreePick] of [...steps, [1, null] as const]) {
          if (p.balanceAmount === 0) break;
          const x = Math.max(1, Math.min(p.balanceAmount, Math.ceil(p.balanceAmount * share)));
          let tf: number | undefined;
          if (taxFreePick !== null) {
            const leftTf = taxFree - p.refundedTaxFree;
            const low = Math.max(0, x - (p.balanceAmount - leftTf));
            const high = Math.min(x, leftTf);
            tf = low + Math.floor((high - low) * taxFreePick);
          }
          const r = refundSplit(p, x, tf);
          expect(r.amount).toBe(x);
          expect(r.taxFree + r.vat + r.supply).toBe(x);
          expect(r.vat).toBeGreaterThanOrEqual(0);
          expect(r.supply).toBeGreaterThanOrEqual(0);
          refunds.push(r);
          p = after(p, r);
          // The VAT refunded so far is the payment's share of the taxable amount refunded so far, rounded once.
          const refundedTaxable = amount - p.balanceAmount - p.refundedTaxFree;
          const exact = taxable === 0 ? 0 : (start.vat * refundedTaxable) / taxable;
          expect(Math.abs(p.refundedVat! - exact)).toBeLessThanOrEqual(0.5 + 1e-6 * exact);
        }
        expect(p.balanceAmount).toBe(0);
        expect(total(refunds, 'amount')).toBe(amount);
        expect(total(refunds, 'taxFree')).toBe(taxFree);
        expect(total(refunds, 'vat')).toBe(start.vat);
        expect(total(refunds, 'supply')).toBe(amount - taxFree - start.vat);
      }),
      PROPERTY_RUNS,
    );
  });
});

describe(unusedRefundOfPeriod.name, () => {
  const start = new Date('2026-03-31T15:00:00.000Z'); // 2026-04-01 00:00 Asia/Seoul
  const end = new Date(start.getTime() + 30 * DAY);
  const at = (fraction: number) => new Date(start.getTime() + fraction * 30 * DAY);
  const paid = (amount: number, taxFree = 0, more: Partial<PeriodPayment> = {}): PeriodPayment => ({
    amount,
    taxFreeAmount: taxFree,
    balanceAmount: amount,
    refundedTaxFree: 0,
    ...more,
  });
  // 10,000 for the period, then an upgrade to 20,000 at mid-period paid with a 5,000 proration payment.
  const upgraded = [paid(10000), paid(5000, 0, { coversFrom: at(1 / 2) })];

  it('should owe 5,000 for a cancel at 3/4 of a period upgraded from 10,000 to 20,000 at mid-period, from the proration payment', () => {
    const r = unusedRefundOfPeriod({ payments: upgraded, periodStart: start, periodEnd: end, at: at(3 / 4) });
    expect(r).toEqual({ amount: 5000, taxFree: 0, parts: [{ paymentIndex: 1, amount: 5000, taxFree: 0 }] });
    // The same with the plan's price: 20,000 × 1/4.
    expect(unusedRefundOfPeriod({ payments: upgraded, periodStart: start, periodEnd: end, at: at(3 / 4), planAmount: 20000 })).toEqual(r);
  });

  it('should owe 10,000 for a cancel right after that upgrade, from both payments, the most recent first', () => {
    const r = unusedRefundOfPeriod({ payments: upgraded, periodStart: start, periodEnd: end, at: at(1 / 2) });
    expect(r.amount).toBe(10000);
    expect(r.parts).toEqual([
      { paymentIndex: 1, amount: 5000, taxFree: 0 },
      { paymentIndex: 0, amount: 5000, taxFree: 0 },
    ]);
  });

  it('should owe 5,500 of 11,000 for a subscription paused at mid-period (at = the pause)', () => {
    const r = unusedRefundOfPeriod({ payments: [paid(11000)], periodStart: start, periodEnd: end, at: at(1 / 2) });
    expect(r).toEqual({ amount: 5500, taxFree: 0, parts: [{ paymentIndex: 0, amount: 5500, taxFree: 0 }] });
  });

  it('should split the tax-free part proportionally, and give all of it when a payment is emptied', () => {
    expect(unusedRefundOfPeriod({ payments: [paid(10000, 4000)], periodStart: start, periodEnd: end, at: at(1 / 2) })).toEqual({
      amount: 5000,
      taxFree: 2000,
      parts: [{ paymentIndex: 0, amount: 5000, taxFree: 2000 }],
    });
    const before = unusedRefundOfPeriod({
      payments: [paid(10000, 4000), paid(3001, 1)],
      periodStart: start,
      periodEnd: end,
      at: new Date(start.getTime() - 1),
    });
    expect(before).toEqual({
      amount: 13001,
      taxFree: 4001,
      parts: [
        { paymentIndex: 1, amount: 3001, taxFree: 1 },
        { paymentIndex: 0, amount: 10000, taxFree: 4000 },
      ],
    });
  });

  it('should count what was already refunded: the balances, and with the plan price, never more than them', () => {
    // 20,000 paid, downgraded to 10,000 at mid-period and the 5,000 credit refunded: 2,500 owed at 3/4.
    const downgraded = [paid(20000, 0, { balanceAmount: 15000 })];
    expect(unusedRefundOfPeriod({ payments: downgraded, periodStart: start, periodEnd: end, at: at(3 / 4), planAmount: 10000 }).amount).toBe(2500);
    // Without the plan's price the balance's unused share: 15,000 × 1/4.
    expect(unusedRefundOfPeriod({ payments: downgraded, periodStart: start, periodEnd: end, at: at(3 / 4) }).amount).toBe(3750);
    // Almost all refunded already: never more than the 1,000 left.
    const nearlyAll = [paid(10000, 0, { balanceAmount: 1000 })];
    expect(unusedRefundOfPeriod({ payments: nearlyAll, periodStart: start, periodEnd: end, at: at(0), planAmount: 10000 }).amount).toBe(1000);
  });

  it('should give back the credit a re-anchor took from the earlier payment when canceled at once', () => {
    // Monthly 9,997 → yearly 99,970 re-anchored: the credit of 4,999 paid part of the year, the card 94,971.
    const yearEnd = new Date(start.getTime() + 365 * DAY);
    const payments = [paid(9997), paid(94971)];
    const atOnce = unusedRefundOfPeriod({ payments, periodStart: start, periodEnd: yearEnd, at: start, planAmount: 99970 });
    expect(atOnce.parts).toEqual([
      { paymentIndex: 1, amount: 94971, taxFree: 0 },
      { paymentIndex: 0, amount: 4999, taxFree: 0 },
    ]);
    const halfWay = unusedRefundOfPeriod({ payments, periodStart: start, periodEnd: yearEnd, at: new Date(start.getTime() + 182.5 * DAY), planAmount: 99970 });
    expect(halfWay.parts).toEqual([{ paymentIndex: 1, amount: 49985, taxFree: 0 }]);
  });

  it('should owe nothing from the period end on, and round the total once, half up', () => {
    expect(unusedRefundOfPeriod({ payments: upgraded, periodStart: start, periodEnd: end, at: end })).toEqual({ amount: 0, taxFree: 0, parts: [] });
    // 3 payments of 1 won each, 1/2 unused: 1.5 → 2 (rounding each would give 3).
    const small = [paid(1), paid(1), paid(1)];
    expect(unusedRefundOfPeriod({ payments: small, periodStart: start, periodEnd: end, at: at(1 / 2) }).amount).toBe(2);
    // 9,997 for 30 days, 1/3 unused: 3,332.33 → 3,332.
    expect(unusedRefundOfPeriod({ payments: [paid(9997)], periodStart: start, periodEnd: end, at: at(2 / 3) }).amount).toBe(3332);
  });

  it('should refuse inconsistent input', () => {
    const base = { payments: [paid(100)], periodStart: start, periodEnd: end, at: at(0) };
    expect(() => unusedRefundOfPeriod({ ...base, periodEnd: start })).toThrow(RangeError);
    expect(() => unusedRefundOfPeriod({ ...base, payments: [paid(100, 0, { coversFrom: end })] })).toThrow(RangeError);
    expect(() => unusedRefundOfPeriod({ ...base, payments: [paid(100, 0, { balanceAmount: 101 })] })).toThrow(RangeError);
    expect(() => unusedRefundOfPeriod({ ...base, planAmount: -1 })).toThrow(RangeError);
    expect(() => unusedRefundOfPeriod({ ...base, at: new Date(NaN) })).toThrow(RangeError);
  });

  const paymentsArb = fc.array(
    fc
      .record({
        amount: fc.oneof(fc.integer({ min: 0, max: 100_000 }), fc.integer({ min: 0, max: 1_000_000_000 })),
        taxFreeShare: fc.double({ min: 0, max: 1, noNaN: true }),
        refundedShare: fc.oneof(fc.constant(0), fc.double({ min: 0, max: 1, noNaN: true })),
        coversFrom: fc.option(fc.integer({ min: 0, max: 30 * DAY - 1 })),
      })
      .map(({ amount, taxFreeShare, refundedShare, coversFrom }) => {
        const taxFree = Math.floor(amount * taxFreeShare);
        const refunded = Math.floor(amount * refundedShare);
        const refundedTaxFree = Math.floor(taxFree * refundedShare);
        return {
          amount,
          taxFreeAmount: taxFree,
          balanceAmount: amount - refunded,
          refundedTaxFree: Math.min(refundedTaxFree, refunded),
          coversFrom: coversFrom === null ? undefined : new Date(start.getTime() + coversFrom),
        } satisfies PeriodPayment;
      }),
    { maxLength: 5 },
  );

  it('should never refund more than what is left, in all or from any payment, most recent first', () => {
    fc.assert(
      fc.property(
        paymentsArb,
        fc.integer({ min: -DAY, max: 31 * DAY }),
        fc.option(fc.integer({ min: 0, max: 2_000_000_000 })),
        (payments, offset, planAmount) => {
          const r = unusedRefundOfPeriod({
            payments,
            periodStart: start,
            periodEnd: end,
            at: new Date(start.getTime() + offset),
            planAmount: planAmount ?? undefined,
          });
          const left = payments.reduce((s, p) => s + p.balanceAmount, 0);
          expect(r.amount).toBeGreaterThanOrEqual(0);
          expect(r.amount).toBeLessThanOrEqual(left);
          expect(r.parts.reduce((s, p) => s + p.amount, 0)).toBe(r.amount);
          expect(r.parts.reduce((s, p) => s + p.taxFree, 0)).toBe(r.taxFree);
          if (planAmount !== null) expect(r.amount).toBe(Math.min(left, prorate(planAmount, 30 * DAY - offset, 30 * DAY)));
          let previous = payments.length;
          for (const part of r.parts) {
            const p = payments[part.paymentIndex];
            const leftTaxFree = p.taxFreeAmount - p.refundedTaxFree;
            expect(part.paymentIndex).toBeLessThan(previous);
            // Every more recent payment was used up before this one gave anything.
            for (let j = part.paymentIndex + 1; j < previous; j++) expect(payments[j].balanceAmount).toBe(0);
            if (previous < payments.length) {
              const later = r.parts.find((q) => q.paymentIndex === previous)!;
              expect(later.amount).toBe(payments[previous].balanceAmount);
            }
            previous = part.paymentIndex;
            expect(part.amount).toBeGreaterThan(0);
            expect(part.amount).toBeLessThanOrEqual(p.balanceAmount);
            expect(part.taxFree).toBeLessThanOrEqual(leftTaxFree);
            expect(part.amount - part.taxFree).toBeLessThanOrEqual(p.balanceAmount - leftTaxFree);
          }
        },
      ),
      PROPERTY_RUNS,
    );
  });

  it('should owe the unused share of everything left when every payment paid for the whole period', () => {
    fc.assert(
      fc.property(paymentsArb, fc.integer({ min: 0, max: 30 * DAY }), (payments, offset) => {
        const whole = payments.map((p) => ({ ...p, coversFrom: undefined }));
        const left = whole.reduce((s, p) => s + p.balanceAmount, 0);
        const r = unusedRefundOfPeriod({ payments: whole, periodStart: start, periodEnd: end, at: new Date(start.getTime() + offset) });
        expect(r.amount).toBe(prorate(left, 30 * DAY - offset, 30 * DAY));
      }),
      PROPERTY_RUNS,
    );
  });
});
