/**
 * A token bucket per key (a source address): `perMinute` calls in a burst, refilled evenly over a minute. Kept in
 * memory, per instance, on the real clock (never the test clock). Idle buckets are forgotten, so the map stays small
 * whatever the number of addresses.
 */
export class RateLimiter {
  private readonly buckets = new Map<string, { tokens: number; at: number }>();

  constructor(
    private readonly perMinute: number,
    private readonly now: () => number = Date.now,
  ) {}

  /** Takes one call for `key`: 0 when allowed, else the seconds until the next call would be. */
  take(key: string): number {
    if (this.perMinute <= 0) return 0;
    const now = this.now();
    const ratePerMs = this.perMinute / 60_000;
    const b = this.buckets.get(key) ?? { tokens: this.perMinute, at: now };
    b.tokens = Math.min(this.perMinute, b.tokens + (now - b.at) * ratePerMs);
    b.at = now;
    if (this.buckets.size >= 10_000 && !this.buckets.has(key)) this.forgetFull(now);
    this.buckets.set(key, b);
    if (b.tokens >= 1) {
      b.tokens -= 1;
      return 0;
    }
    return Math.max(1, Math.ceil((1 - b.tokens) / ratePerMs / 1000));
  }

  /** Drops the buckets that have refilled (they hold nothing a fresh one would not). */
  private forgetFull(now: number): void {
    for (const [k, b] of this.buckets) {
      if (b.tokens + (now - b.at) * (this.perMinute / 60_000) >= this.perMinute) this.buckets.delete(k);
    }
  }
}
