/**
 * Refund amounts (pure): the Korean split of one refund of a payment, and the refunds owed for the unused part of a
 * period paid by several payments. Whole won, exact (BigInt) arithmetic, half-up rounding, as in money.ts.
 */

import { assertAmountAndTaxFree, assertTimestamp, assertWon, divHalfUp } from './internal';
import { prorate } from './money';

/** A payment as it stands before a refund: its figures and what its refunds took so far. */
export interface RefundablePayment {
  /** What was charged, won. */
  amount: number;
  /** Tax-free part of the charge. */
  taxFreeAmount: number;
  /** VAT of the charge. */
  vat: number;
  /** What is left to refund (amount − everything refunded so far). */
  balanceAmount: number;
  /** Tax-free part refunded so far. */
  refundedTaxFree: number;
  /**
   * VAT of the refunds so far (the sum of their `vat`). Omitted: what the cumulative rule below gives for the
   * taxable amount refunded so far.
   */
  refundedVat?: number;
}

/** One refund's Korean split: amount = taxFree + vat + supply. */
export interface RefundFigures {
  amount: number;
  taxFree: number;
  vat: number;
  supply: number;
}

interface Remaining {
  balance: number;
  taxFree: number;
  taxable: number;
  /** VAT left to refund, kept within [0, taxable]. */
  vat: number;
  /** Taxable amount refunded so far. */
  refundedTaxable: number;
  refundedVat: number;
  paymentTaxable: number;
  paymentVat: number;
}

/** The payment's share of VAT in `taxable` won of its taxable part, half up (exact). */
function cumulativeVat(paymentVat: number, paymentTaxable: number, taxable: number): number {
  if (paymentTaxable === 0 || taxable === 0) return 0;
  return Number(divHalfUp(BigInt(paymentVat) * BigInt(taxable), BigInt(paymentTaxable)));
}

function remainingOf(payment: RefundablePayment): Remaining {
  if (payment === null || typeof payment !== 'object') throw new RangeError('payment must be an object');
  const [amount, taxFree] = assertAmountAndTaxFree(payment.amount, payment.taxFreeAmount, 'amount', 'taxFreeAmount');
  const vat = assertWon('vat', payment.vat);
  const balance = assertWon('balanceAmount', payment.balanceAmount);
  const refundedTaxFree = assertWon('refundedTaxFree', payment.refundedTaxFree);
  const paymentTaxable = amount - taxFree;
  if (vat > paymentTaxable) throw new RangeError(`vat (${vat}) must not exceed the taxable amount (${paymentTaxable})`);
  if (balance > amount) throw new RangeError(`balanceAmount (${balance}) must not exceed amount (${amount})`);
  const refunded = amount - balance;
  const refundedTaxable = refunded - refundedTaxFree;
  if (refundedTaxFree > taxFree || refundedTaxable < 0 || refundedTaxable > paymentTaxable) {
    throw new RangeError('refundedTaxFree is inconsistent with amount, taxFreeAmount and balanceAmount');
  }
  const refundedVat = payment.refundedVat === undefined ? cumulativeVat(vat, paymentTaxable, refundedTaxable) : assertWon('refundedVat', payment.refundedVat);
  const taxable = paymentTaxable - refundedTaxable;
  return {
    balance,
    taxFree: taxFree - refundedTaxFree,
    taxable,
    vat: Math.min(Math.max(vat - refundedVat, 0), taxable),
    refundedTaxable,
    refundedVat,
    paymentTaxable,
    paymentVat: vat,
  };
}

/**
 * The tax-free part of a refund of `amount` won out of `balance` won left, of which `taxFree` won are tax-free:
 * all of it when the refund empties the balance, else the proportional share (half up), kept so that neither the
 * tax-free nor the taxable part of the refund exceeds what is left of it.
 */
function proportionalTaxFree(amount: number, balance: number, taxFree: number): number {
  if (amount >= balance) return taxFree;
  if (amount === 0 || taxFree === 0) return 0;
  const share = Number(divHalfUp(BigInt(taxFree) * BigInt(amount), BigInt(balance)));
  return Math.min(Math.max(share, amount - (balance - taxFree), 0), taxFree, amount);
}

/**
 * The tax-free part, VAT and supply amount of a refund of `refundAmount` won of `payment`.
 *
 * - Tax-free part: `refundTaxFree` when given (it must fit: at most the tax-free amount left, and the taxable part
 *   at most the taxable amount left); otherwise all the tax-free amount left when the refund empties the payment,
 *   else the proportional share of what is left (half up).
 * - VAT, cumulative rounding: the VAT of the refunds of a payment, taken together, is the payment's VAT share of the
 *   taxable amount they refunded, rounded half up once: vat = round(payment VAT × taxable refunded up to and with
 *   this refund / payment taxable) − VAT already refunded. The refund that empties the taxable part takes exactly
 *   the VAT left, and its supply amount is what is left of the supply amount. So for any sequence of refunds that
 *   empties a payment, their tax-free parts, VATs and supply amounts add up to the payment's exactly
 *   (11,000 with 1,000 tax-free, VAT 909, refunded in four refunds of 2,750: VATs 227, 228, 227, 227 = 909,
 *   where rounding each on its own would give 227 × 4 = 908).
 * - Each refund's VAT stays within [0, its taxable part], and the VAT left never exceeds the taxable amount left
 *   (which only matters after refunds that were rounded another way).
 *
 * Throws RangeError for inconsistent figures or a refund that does not fit what is left.
 */
export function refundSplit(payment: RefundablePayment, refundAmount: number, refundTaxFree?: number): RefundFigures {
  const left = remainingOf(payment);
  const amount = assertWon('refundAmount', refundAmount);
  if (amount > left.balance) throw new RangeError(`refundAmount (${amount}) exceeds the balance (${left.balance})`);
  const taxFree = refundTaxFree === undefined ? proportionalTaxFree(amount, left.balance, left.taxFree) : assertWon('refundTaxFree', refundTaxFree);
  if (taxFree > amount) throw new RangeError(`refundTaxFree (${taxFree}) exceeds refundAmount (${amount})`);
  if (taxFree > left.taxFree) throw new RangeError(`refundTaxFree (${taxFree}) exceeds the tax-free amount left (${left.taxFree})`);
  const taxable = amount - taxFree;
  if (taxable > left.taxable) throw new RangeError(`the taxable part (${taxable}) exceeds the taxable amount left (${left.taxable})`);

  let vat: number;
  if (taxable === left.taxable) {
    vat = left.vat;
  } else {
    const target = cumulativeVat(left.paymentVat, left.paymentTaxable, left.refundedTaxable + taxable) - left.refundedVat;
    // Keep what is left consistent: the VAT left must fit in the taxable amount left.
    const lowest = Math.max(0, left.vat - (left.taxable - taxable));
    const highest = Math.min(taxable, left.vat);
    vat = Math.min(Math.max(target, lowest), highest);
  }
  return { amount, taxFree, vat, supply: taxable - vat };
}

// ------------------------------------------------------------------------------------------------------------------
// The unused part of a period paid by several payments
// ------------------------------------------------------------------------------------------------------------------

/** A payment made for the current period. */
export interface PeriodPayment {
  amount: number;
  taxFreeAmount: number;
  /** What is left of it after refunds. */
  balanceAmount: number;
  /** Tax-free part refunded so far. */
  refundedTaxFree: number;
  /**
   * Start of the time it paid for: the period start for the period's own payment (the default), the plan change for
   * a proration payment (it paid for the new plan from then to the period end).
   */
  coversFrom?: Date;
}

export interface UnusedRefundOfPeriodInput {
  /** Every payment made for the current period, oldest first. */
  payments: PeriodPayment[];
  periodStart: Date;
  periodEnd: Date;
  /**
   * From when the service is no longer used: the cancel or downgrade time for a running subscription, the pause
   * time for a paused one. Before periodStart: all of it is unused; at or after periodEnd: none.
   */
  at: Date;
  /**
   * The full-period price of the plan the subscription is on. Given: what is owed is planAmount × unused time /
   * period length (half up), never more than the payments' balances together. Omitted: see {@link unusedRefundOfPeriod}.
   */
  planAmount?: number;
}

export interface UnusedRefundPart {
  /** Index into `payments`. */
  paymentIndex: number;
  /** Won to refund from that payment (> 0). */
  amount: number;
  /** Its tax-free part (as {@link refundSplit} gives it for this amount). */
  taxFree: number;
}

export interface UnusedRefundOfPeriod {
  /** What is owed in all: the sum of the parts' amounts. */
  amount: number;
  taxFree: number;
  /** Most recent payment first; payments refunded nothing are left out. */
  parts: UnusedRefundPart[];
}

function gcd(a: bigint, b: bigint): bigint {
  while (b !== 0n) [a, b] = [b, a % b];
  return a;
}

/**
 * The refunds owed for the unused part of the current period, counting every payment made for it.
 *
 * What is owed (half up to the won, once, on the exact total):
 * - with `planAmount`: planAmount × (periodEnd − at) / (periodEnd − periodStart). This is the unused value of the
 *   plan the subscription is on, which is what the period's payments net of refunds paid for the rest of the period
 *   when every plan change in it was settled by a proration payment or refund;
 * - without: each payment's balance × the unused share of the time it paid for, (periodEnd − at) /
 *   (periodEnd − coversFrom) (1 when `at` is before coversFrom), summed exactly. With no proration payment this is
 *   the unused share of everything paid.
 * Either way it is never more than the payments' balances together, and each payment gives at most its balance.
 * Prefer `planAmount`: it stays right after a downgrade whose credit was refunded (20,000 paid, downgraded to 10,000
 * at mid-period and 5,000 refunded, canceled at 3/4: 2,500 with planAmount 10,000; 3,750 from the balance alone).
 * After a re-anchor whose credit paid part of the new period, list the earlier payment too (oldest first): the
 * credit came out of its balance. A credit kept on the subscription as a balance is not in these payments.
 *
 * Allocation: from the most recent payment (the last in the list) back to the oldest, each gives as much as its
 * balance allows until the total is reached; so a proration payment is refunded before the period's payment, and
 * there are as few refunds as possible. Each part's tax-free part is what {@link refundSplit} gives for it (all the
 * payment's tax-free amount left when the part empties it, else the proportional share).
 *
 * Example: 10,000 paid for a month, upgraded to 20,000 at mid-month with a 5,000 proration payment
 * (coversFrom = mid-month), canceled at 3/4 of the month: owed = 10,000 × 1/4 + 5,000 × (1/4) / (1/2) = 5,000
 * (= 20,000 × 1/4 with planAmount 20,000), all of it refunded from the proration payment. Canceled at mid-month
 * instead: 10,000, i.e. 5,000 from the proration payment and 5,000 from the period's payment.
 */
export function unusedRefundOfPeriod(input: UnusedRefundOfPeriodInput): UnusedRefundOfPeriod {
  if (input === null || typeof input !== 'object' || !Array.isArray(input.payments)) {
    throw new RangeError('input must be an object with a list of payments');
  }
  const start = assertTimestamp('periodStart', input.periodStart);
  const end = assertTimestamp('periodEnd', input.periodEnd);
  const at = assertTimestamp('at', input.at);
  if (!(start < end)) throw new RangeError('periodStart must be before periodEnd');

  const payments = input.payments.map((p, i) => {
    const left = remainingOf({ ...p, vat: 0, refundedVat: 0 });
    const from = p.coversFrom === undefined ? start : assertTimestamp(`payments[${i}].coversFrom`, p.coversFrom);
    if (from < start || from >= end) throw new RangeError(`payments[${i}].coversFrom must be within [periodStart, periodEnd)`);
    return { balance: left.balance, taxFree: left.taxFree, from };
  });
  const totalBalance = payments.reduce((s, p) => s + p.balance, 0);
  if (!Number.isSafeInteger(totalBalance)) throw new RangeError('the payments together exceed the safe integer range');

  let owed: number;
  if (input.planAmount !== undefined) {
    owed = prorate(assertWon('planAmount', input.planAmount), end - at, end - start);
  } else {
    // Σ balance × unused / covered, as one exact fraction num / den.
    let num = 0n;
    let den = 1n;
    for (const p of payments) {
      const unused = BigInt(Math.min(Math.max(end - at, 0), end - p.from));
      const covered = BigInt(end - p.from);
      num = num * covered + BigInt(p.balance) * unused * den;
      den = den * covered;
      const g = gcd(num, den);
      if (g > 1n) {
        num /= g;
        den /= g;
      }
    }
    owed = Number(divHalfUp(num, den));
  }
  owed = Math.min(owed, totalBalance);

  const parts: UnusedRefundPart[] = [];
  let rest = owed;
  for (let i = payments.length - 1; i >= 0 && rest > 0; i--) {
    const p = payments[i];
    const amount = Math.min(rest, p.balance);
    if (amount === 0) continue;
    parts.push({ paymentIndex: i, amount, taxFree: proportionalTaxFree(amount, p.balance, p.taxFree) });
    rest -= amount;
  }
  return { amount: owed, taxFree: parts.reduce((s, p) => s + p.taxFree, 0), parts };
}
