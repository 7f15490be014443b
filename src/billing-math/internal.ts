/** Checks and exact division shared by the money functions (not exported from the package). */

export function assertWon(name: string, value: unknown): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) {
    throw new RangeError(`${name} must be a non-negative safe integer (whole won), got ${String(value)}`);
  }
  return value;
}

export function assertAmountAndTaxFree(amount: unknown, taxFree: unknown, amountName = 'amount', taxFreeName = 'taxFree') {
  const a = assertWon(amountName, amount);
  const tf = assertWon(taxFreeName, taxFree);
  if (tf > a) throw new RangeError(`${taxFreeName} (${tf}) must not exceed ${amountName} (${a})`);
  return [a, tf] as const;
}

export function assertTimestamp(name: string, value: unknown): number {
  if (!(value instanceof Date) || !Number.isFinite(value.getTime())) {
    throw new RangeError(`${name} must be a valid Date`);
  }
  return value.getTime();
}

/** round-half-up(numerator / denominator) for numerator >= 0, denominator > 0, exactly. */
export function divHalfUp(numerator: bigint, denominator: bigint): bigint {
  return (2n * numerator + denominator) / (2n * denominator);
}
