/**
 * Amounts of an immediate plan change (pure): what is credited for the old plan, charged for the new one, and which
 * period rule applies. Whole won, exact arithmetic, half-up rounding, as in money.ts.
 */

import { assertAmountAndTaxFree, assertTimestamp } from './internal';
import { prorate, splitTaxFree } from './money';
import { BILLING_INTERVALS, BillingInterval, MAX_INTERVAL_COUNT } from './periods';

/** The terms of a plan that matter to a change: its price for one period and how long a period is. */
export interface PlanTerms {
  /** Price of one period, VAT included, won. */
  amount: number;
  /** Its tax-free part. */
  taxFree: number;
  interval: BillingInterval;
  intervalCount: number;
}

export interface PlanChangeQuoteInput {
  old: PlanTerms;
  new: PlanTerms;
  /**
   * What was paid for the current period net of refunds: the period's payment plus proration payments (and any
   * credit applied to the period), less what was refunded from them. Trialing: 0.
   */
  paid: number;
  /** Its tax-free part. */
  paidTaxFree: number;
  periodStart: Date;
  periodEnd: Date;
  /** When the change takes effect; periodStart <= at < periodEnd. */
  at: Date;
}

/**
 * - same_period: the new plan runs on to the current period's end, then bills on its own periods from there
 *   (the period end does not change);
 * - reanchor: a new period of the new plan starts at `at` (the subscription's anchor moves to `at`), and the
 *   current period ends there.
 */
export type PlanChangeRule = 'same_period' | 'reanchor';

export interface PlanChangeQuote {
  rule: PlanChangeRule;
  /** Unused part of the old plan credited to the customer (won, >= 0, never more than `paid`). */
  credit: number;
  creditTaxFree: number;
  /** What the new plan costs for the time charged (won, >= 0, never more than the new plan's price). */
  charge: number;
  chargeTaxFree: number;
  /** charge − credit: > 0 is charged at once, < 0 is owed to the customer. */
  net: number;
  /**
   * Tax-free part of the net: chargeTaxFree − creditTaxFree, kept within [0, net] when net >= 0 and within
   * [net, 0] when net < 0, so the net can be charged (or refunded) with that tax-free part as it is.
   */
  netTaxFree: number;
}

/** Length of `count` `interval`s in a common unit, for deciding whether two plans have the same periods. */
function periodUnits(terms: PlanTerms, name: string): { unit: 'day' | 'month'; n: number } {
  if (terms === null || typeof terms !== 'object') throw new RangeError(`${name} must be an object`);
  assertAmountAndTaxFree(terms.amount, terms.taxFree, `${name}.amount`, `${name}.taxFree`);
  if (!BILLING_INTERVALS.includes(terms.interval)) {
    throw new RangeError(`${name}.interval must be one of ${BILLING_INTERVALS.join(', ')}, got ${String(terms.interval)}`);
  }
  const count = terms.intervalCount;
  if (!Number.isInteger(count) || count < 1 || count > MAX_INTERVAL_COUNT) {
    throw new RangeError(`${name}.intervalCount must be an integer in [1, ${MAX_INTERVAL_COUNT}], got ${String(count)}`);
  }
  switch (terms.interval) {
    case 'day':
      return { unit: 'day', n: count };
    case 'week':
      return { unit: 'day', n: 7 * count };
    case 'month':
      return { unit: 'month', n: count };
    case 'year':
      return { unit: 'month', n: 12 * count };
  }
}

/** Whether two plans bill on the same periods from the same anchor (1 year = 12 months, 1 week = 7 days). */
export function samePeriods(a: PlanTerms, b: PlanTerms): boolean {
  const x = periodUnits(a, 'a');
  const y = periodUnits(b, 'b');
  return x.unit === y.unit && x.n === y.n;
}

/**
 * The amounts of changing from plan `old` to plan `new` at `at`, inside the current period [periodStart, periodEnd).
 * With remaining = periodEnd − at and length = periodEnd − periodStart:
 *
 * - credit (both rules) = old.amount × remaining / length, half up, never more than `paid`: the unused part of what
 *   was paid, by time. (A period's payments pay the old plan's price for the rest of the period once each earlier
 *   change was settled; `paid` only caps it, after refunds or in a trial.) Its tax-free part is the old plan's
 *   share, kept within what was paid tax-free and taxable.
 * - same interval and interval_count (rule `same_period`, as Stripe prorates by default): charge = new.amount ×
 *   remaining / length, half up; the period keeps its end. 1 year and 12 months, 1 week and 7 days count as the same.
 * - different interval or interval_count (rule `reanchor`, as Stripe does when the interval changes): charge =
 *   new.amount, the full price of a new period of the new plan that starts at `at`; the subscription's anchor moves
 *   to `at`, so the old period's end brings no charge.
 * - net = charge − credit (each side rounded on its own first); net < 0 is a credit owed to the customer.
 *
 * Either way nobody pays more than the new plan's price for the same time: charge <= new.amount, and it pays for
 * remaining / length of a period (same_period) or for a whole new period (reanchor).
 *
 * Example (31-day month, change at mid-month, remaining 15.5 days): monthly 9,997 → yearly 99,970: credit 4,999,
 * charge 99,970, net 94,971, and the next charge is a year later (the old rule charged 44,986 now and 99,970 again
 * at the month's end). Monthly 9,997 → quarterly 29,991: credit 4,999, charge 29,991, net 24,992 for three months
 * from now (the old rule charged 9,997 for the half month left).
 */
export function planChange(input: PlanChangeQuoteInput): PlanChangeQuote {
  if (input === null || typeof input !== 'object') throw new RangeError('input must be an object');
  const same = samePeriods(input.old, input.new);
  const [paid, paidTaxFree] = assertAmountAndTaxFree(input.paid, input.paidTaxFree, 'paid', 'paidTaxFree');
  const start = assertTimestamp('periodStart', input.periodStart);
  const end = assertTimestamp('periodEnd', input.periodEnd);
  const at = assertTimestamp('at', input.at);
  if (!(start < end)) throw new RangeError('periodStart must be before periodEnd');
  if (at < start || at >= end) throw new RangeError('at must be within [periodStart, periodEnd)');
  const oldPlan = input.old;
  const newPlan = input.new;

  const credit = Math.min(prorate(oldPlan.amount, end - at, end - start), paid);
  const creditTaxFree = Math.min(Math.max(splitTaxFree(credit, oldPlan.amount, oldPlan.taxFree), credit - (paid - paidTaxFree), 0), paidTaxFree, credit);
  const charge = same ? prorate(newPlan.amount, end - at, end - start) : newPlan.amount;
  const chargeTaxFree = splitTaxFree(charge, newPlan.amount, newPlan.taxFree);
  const net = charge - credit;
  const netTaxFree = net >= 0 ? clamp(chargeTaxFree - creditTaxFree, 0, net) : clamp(chargeTaxFree - creditTaxFree, net, 0);
  return { rule: same ? 'same_period' : 'reanchor', credit, creditTaxFree, charge, chargeTaxFree, net, netTaxFree };
}

function clamp(value: number, low: number, high: number): number {
  return Math.min(Math.max(value, low), high);
}
