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

/**
 * Works through batches from `next` (null: there are no more) with at most `concurrency` items in flight, each start
 * also waiting for the rate limiter. The next batch is fetched while items are still in flight, as soon as fewer than
 * `refillBelow` wait, so the workers never wait for a fetch unless the source is slower than they are. One fetch at a
 * time: memory holds about two batches, whatever the total. A failed fetch stops the fetching: the items already
 * fetched are still worked, then the error is thrown. An item whose work throws ends its worker; the others go on,
 * and the error is thrown once all have ended.
 */
export async function drainBatches<T>(
  next: () => Promise<T[] | null>,
  opts: { concurrency: number; refillBelow: number; limiter: RateLimiter | null },
  fn: (item: T) => Promise<void>,
): Promise<void> {
  const queue: T[] = [];
  let done = false;
  let failure: { error: unknown } | null = null;
  let fetching: Promise<void> | null = null;
  const fetchMore = (): Promise<void> | null => {
    if (!fetching && !done) {
      fetching = next()
        .then(
          (batch) => {
            if (batch === null) done = true;
            else queue.push(...batch);
          },
          (error: unknown) => {
            failure = { error };
            done = true;
          },
        )
        .finally(() => {
          fetching = null;
        });
    }
    return fetching;
  };
  const worker = async (): Promise<void> => {
    for (;;) {
      if (queue.length < opts.refillBelow) void fetchMore();
      const item = queue.shift();
      if (item !== undefined) {
        if (opts.limiter) await opts.limiter.take();
        await fn(item);
      } else if (fetching) {
        await fetching;
      } else if (done) {
        return;
      }
    }
  };
  // Every worker is waited for, even when one fails: nothing may still be charging when this returns.
  const ended = await Promise.allSettled(Array.from({ length: Math.max(1, opts.concurrency) }, worker));
  if (failure) throw (failure as { error: unknown }).error;
  const failed = ended.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failed) throw failed.reason;
}
