/**
 * Runs `fn` over `items` with at most `concurrency` in flight, each start also waiting for the rate limiter.
 * Errors of one item do not stop the others; `fn` is expected to handle its own failures.
 */
export async function runPool<T>(items: T[], concurrency: number, limiter: RateLimiter | null, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const workers = Array.from({ length: Math.min(concurrency, items.length) }, async () => {
    while (next < items.length) {
      const item = items[next++];
      if (limiter) await limiter.take();
      await fn(item);
    }
  });
  await Promise.all(workers);
}

/**
 * A token bucket on the process's monotonic clock (throughput towards Bootpay is a property of real time, not of
 * the business clock). Allows short bursts of up to one second's worth.
 */
export class RateLimiter {
  private tokens: number;
  private last = performance.now();
  private queue: Promise<void> = Promise.resolve();

  constructor(private readonly perSecond: number) {
    this.tokens = perSecond;
  }

  take(): Promise<void> {
    const turn = this.queue.then(() => this.acquire());
    this.queue = turn;
    return turn;
  }

  private async acquire(): Promise<void> {
    for (;;) {
      const now = performance.now();
      this.tokens = Math.min(this.perSecond, this.tokens + ((now - this.last) / 1000) * this.perSecond);
      this.last = now;
      if (this.tokens >= 1) {
        this.tokens -= 1;
        return;
      }
      await new Promise((r) => setTimeout(r, Math.ceil(((1 - this.tokens) / this.perSecond) * 1000)));
    }
  }
}
