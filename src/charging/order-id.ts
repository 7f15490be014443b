/** Bootpay's order_id for a subscription, period and attempt: deterministic, at most 48 characters. */
export function orderIdFor(subscriptionId: string, kind: 'period' | 'proration', periodStart: Date, attempt: number): string {
  return `s${subscriptionId.replace(/-/g, '')}-${Math.floor(periodStart.getTime() / 1000)}-${kind === 'period' ? 'p' : 'x'}${attempt}`;
}
