/**
 * KRW money arithmetic (pure, dependency-free). Every amount is a whole number of won: a non-negative safe
 * integer. Results are always integers; every division is done exactly (integer or BigInt arithmetic), never
 * with floats.
 *
 * Rounding rule everywhere: half-up to the won (x.5 -> x + 1), i.e. Math.round on non-negative values.
 */

import { assertAmountAndTaxFree, assertTimestamp, assertWon, divHalfUp } from './internal';
import { BILLING_INTERVALS, BillingInterval, MAX_INTERVAL_COUNT } from './periods';

export interface AmountBreakdown {
  /** Total paid (공급대가 + 면세), won. */
  amount: number;
  /** Tax-free part (면세), won. */
  taxFree: number;
  /** VAT (부가세), won. */
  vat: number;
  /** Supply value of the taxable part (공급가액), won. amount = taxFree + supply + vat. */
  supply: number;
}

/**
 * VAT included in `amount` whose tax-free part is `taxFree`: (amount − taxFree) / 11 rounded half-up to the won.
 * (Since 11 is odd an exact .5 never occurs: the remainder r of (amount − taxFree) / 11 rounds up iff r >= 6.)
 */
export function vatOf(amount: number, taxFree: number): number {
  const [a, tf] = assertAmountAndTaxFree(amount, taxFree);
  const taxable = a - tf;
  const q = Math.floor(taxable / 11);
  const r = taxable - q * 11;
  return q + (r >= 6 ? 1 : 0);
}

/** 공급가액: amount − taxFree − VAT. */
export function supplyOf(amount: number, taxFree: number): number {
  return amount - taxFree - vatOf(amount, taxFree);
}

/** { amount, taxFree, vat, supply } with amount === taxFree + supply + vat. */
export function breakdown(amount: number, taxFree: number): AmountBreakdown {
  const vat = vatOf(amount, taxFree);
  return { amount, taxFree, vat, supply: amount - taxFree - vat };
}

/**
 * amount × numerator / denominator in whole won.
 *
 * Rule: the ratio numerator / denominator is clamped to [0, 1] (numerator <= 0 -> 0, numerator >= denominator ->
 * amount), then the exact rational amount × numerator / denominator is rounded half-up to the won, computed with
 * BigInt so there is no float error at any size. The result is therefore always an integer in [0, amount],
 * monotone non-decreasing in numerator, with prorate(a, d, d) === a and prorate(a, 0, d) === 0.
 *
 * @param amount      non-negative safe integer (won)
 * @param numeratorMs   safe integer (typically milliseconds used/unused)
 * @param denominatorMs positive safe integer (typically the period length in milliseconds)
 */
export function prorate(amount: number, numeratorMs: number, denominatorMs: number): number {
  const a = assertWon('amount', amount);
  if (typeof numeratorMs !== 'number' || !Number.isSafeInteger(numeratorMs)) {
    throw new RangeError(`numerator must be a safe integer, got ${String(numeratorMs)}`);
  }
  if (typeof denominatorMs !== 'number' || !Number.isSafeInteger(denominatorMs) || denominatorMs <= 0) {
    throw new RangeError(`denominator must be a positive safe integer, got ${String(denominatorMs)}`);
  }
  if (numeratorMs <= 0 || a === 0) return 0;
  if (numeratorMs >= denominatorMs) return a;
  const result = Number(divHalfUp(BigInt(a) * BigInt(numeratorMs), BigInt(denominatorMs)));
  return Math.min(Math.max(result, 0), a);
}

/**
 * Tax-free portion of `partAmount` out of a payment of `totalAmount` with `totalTaxFree` tax-free:
 * totalTaxFree × partAmount / totalAmount rounded half-up (exact, BigInt). Never exceeds partAmount or
 * totalTaxFree; partAmount === totalAmount gives totalTaxFree exactly; a zero total gives 0.
 */
export function splitTaxFree(partAmount: number, totalAmount: number, totalTaxFree: number): number {
  const part = assertWon('partAmount', partAmount);
  const [total, tf] = assertAmountAndTaxFree(totalAmount, totalTaxFree, 'totalAmount', 'totalTaxFree');
  if (part > total) throw new RangeError(`partAmount (${part}) must not exceed totalAmount (${total})`);
  if (part === total) return tf;
  if (part === 0 || tf === 0) return 0;
  const result = Number(divHalfUp(BigInt(tf) * BigInt(part), BigInt(total)));
  return Math.min(result, part, tf);
}

export interface PlanChangeInput {
  oldAmount: number;
  oldTaxFree: number;
  newAmount: number;
  newTaxFree: number;
  periodStart: Date;
  periodEnd: Date;
  /** When the change takes effect; periodStart <= at < periodEnd. */
  at: Date;
}

export interface PlanChangeProration {
  /** Unused part of the old plan (won, >= 0). */
  credit: number;
  creditTaxFree: number;
  /** Remaining part of the new plan (won, >= 0). */
  charge: number;
  chargeTaxFree: number;
  /** charge − credit; negative means a credit/refund is due to the customer. */
  net: number;
  /** chargeTaxFree − creditTaxFree (may have a different sign than net). */
  netTaxFree: number;
}

/**
 * Proration for an immediate plan change at `at` within [periodStart, periodEnd).
 *
 * Rounding rule: each side is prorated separately and rounded half-up to the won on its own —
 *   credit = prorate(oldAmount, end − at, end − start), charge = prorate(newAmount, end − at, end − start) —
 * and only then subtracted: net = charge − credit. The tax-free parts are split per side with splitTaxFree
 * (half-up) from that side's own amount/tax-free, then netTaxFree = chargeTaxFree − creditTaxFree.
 * So changing to the same plan always nets exactly 0.
 */
export function prorationForPlanChange(input: PlanChangeInput): PlanChangeProration {
  if (input === null || typeof input !== 'object') throw new RangeError('input must be an object');
  const [oldAmount, oldTaxFree] = assertAmountAndTaxFree(input.oldAmount, input.oldTaxFree, 'oldAmount', 'oldTaxFree');
  const [newAmount, newTaxFree] = assertAmountAndTaxFree(input.newAmount, input.newTaxFree, 'newAmount', 'newTaxFree');
  const start = assertTimestamp('periodStart', input.periodStart);
  const end = assertTimestamp('periodEnd', input.periodEnd);
  const at = assertTimestamp('at', input.at);
  if (!(start < end)) throw new RangeError('periodStart must be before periodEnd');
  if (at < start || at >= end) throw new RangeError('at must be within [periodStart, periodEnd)');

  const credit = prorate(oldAmount, end - at, end - start);
  const charge = prorate(newAmount, end - at, end - start);
  const creditTaxFree = splitTaxFree(credit, oldAmount, oldTaxFree);
  const chargeTaxFree = splitTaxFree(charge, newAmount, newTaxFree);
  return {
    credit,
    creditTaxFree,
    charge,
    chargeTaxFree,
    net: charge - credit,
    netTaxFree: chargeTaxFree - creditTaxFree,
  };
}

export interface UnusedRefundInput {
  paidAmount: number;
  paidTaxFree: number;
  periodStart: Date;
  periodEnd: Date;
  /** Cancellation time. Before periodStart: the whole period is unused; at/after periodEnd: nothing is. */
  at: Date;
  /** Already refunded from this payment (won). Default 0. */
  alreadyRefunded?: number;
  /**
   * Tax-free part of alreadyRefunded. Default: splitTaxFree(alreadyRefunded, paidAmount, paidTaxFree), i.e. the
   * earlier refunds are assumed to have been split proportionally.
   */
  alreadyRefundedTaxFree?: number;
}

/**
 * Refund of the unused part of a paid period when cancelling at `at`:
 * amount = min(prorate(paidAmount, end − at, end − start), paidAmount − alreadyRefunded) (half-up),
 * taxFree = splitTaxFree(amount, paidAmount, paidTaxFree), kept within what is still refundable on both the
 * tax-free and the taxable side; refunding the whole remaining balance returns the whole remaining tax-free part.
 * One payment only: for a period paid by several payments (proration payments), use unusedRefundOfPeriod.
 */
export function unusedRefund(input: UnusedRefundInput): { amount: number; taxFree: number } {
  if (input === null || typeof input !== 'object') throw new RangeError('input must be an object');
  const [paid, paidTf] = assertAmountAndTaxFree(input.paidAmount, input.paidTaxFree, 'paidAmount', 'paidTaxFree');
  const start = assertTimestamp('periodStart', input.periodStart);
  const end = assertTimestamp('periodEnd', input.periodEnd);
  const at = assertTimestamp('at', input.at);
  if (!(start < end)) throw new RangeError('periodStart must be before periodEnd');
  const refunded = assertWon('alreadyRefunded', input.alreadyRefunded ?? 0);
  if (refunded > paid) throw new RangeError(`alreadyRefunded (${refunded}) must not exceed paidAmount (${paid})`);
  const refundedTf =
    input.alreadyRefundedTaxFree === undefined ? splitTaxFree(refunded, paid, paidTf) : assertWon('alreadyRefundedTaxFree', input.alreadyRefundedTaxFree);
  if (refundedTf > refunded || refundedTf > paidTf || refunded - refundedTf > paid - paidTf) {
    throw new RangeError('alreadyRefundedTaxFree is inconsistent with alreadyRefunded / paidAmount / paidTaxFree');
  }

  const remaining = paid - refunded;
  const remainingTf = paidTf - refundedTf;
  const remainingTaxable = remaining - remainingTf;
  const amount = Math.min(prorate(paid, end - at, end - start), remaining);
  if (amount === remaining) return { amount, taxFree: remainingTf };
  const proportional = splitTaxFree(amount, paid, paidTf);
  const taxFree = Math.min(Math.max(proportional, amount - remainingTaxable, 0), remainingTf, amount);
  return { amount, taxFree };
}

/** Periods of one `interval` in a year, for monthly figures: 365 days, 52 weeks, 12 months, 1 year. */
const PER_YEAR: Record<BillingInterval, number> = { day: 365, week: 52, month: 12, year: 1 };

/**
 * A plan's price per month (for MRR): amount × (its intervals per year) / (12 × intervalCount), computed exactly
 * and rounded half up to the won once. A year has 365 days and 52 weeks: a yearly price / 12, weekly × 52 / 12,
 * daily × 365 / 12. Example: 6,999 won every 2 weeks = 6,999 × 52 / 24 = 15,164.5 → 15,165.
 */
export function monthlyAmount(amount: number, interval: BillingInterval, intervalCount: number): number {
  const a = assertWon('amount', amount);
  if (!BILLING_INTERVALS.includes(interval)) {
    throw new RangeError(`interval must be one of ${BILLING_INTERVALS.join(', ')}, got ${String(interval)}`);
  }
  if (!Number.isInteger(intervalCount) || intervalCount < 1 || intervalCount > MAX_INTERVAL_COUNT) {
    throw new RangeError(`intervalCount must be an integer in [1, ${MAX_INTERVAL_COUNT}], got ${String(intervalCount)}`);
  }
  const monthly = Number(divHalfUp(BigInt(a) * BigInt(PER_YEAR[interval]), BigInt(12 * intervalCount)));
  if (!Number.isSafeInteger(monthly)) throw new RangeError(`the monthly amount of ${a} won every ${intervalCount} ${interval} is beyond the safe integers`);
  return monthly;
}
