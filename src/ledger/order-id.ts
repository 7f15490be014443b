/** The part of an order_id shared by every attempt for one subscription, kind and period (the attempt number follows). */
export function orderIdPrefix(subscriptionId: string, kind: 'period' | 'proration', periodStart: Date): string {
  return `s${subscriptionId.replace(/-/g, '')}-${Math.floor(periodStart.getTime() / 1000)}-${kind === 'period' ? 'p' : 'x'}`;
}

/** Bootpay's order_id for a subscription, period and attempt: deterministic, at most 48 characters. */
export function orderIdFor(subscriptionId: string, kind: 'period' | 'proration', periodStart: Date, attempt: number): string {
  return `${orderIdPrefix(subscriptionId, kind, periodStart)}${attempt}`;
}
