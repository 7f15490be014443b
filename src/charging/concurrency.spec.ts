import { drainBatches } from './concurrency';

const tick = () => new Promise((r) => setImmediate(r));

describe(drainBatches.name, () => {
  /** Batches of `size` numbered items, `count` of them, then null; records when each fetch happened. */
  function source(count: number, size: number) {
    const log: string[] = [];
    let fetched = 0;
    let fetching = 0;
    let maxFetching = 0;
    const next = async () => {
      fetching++;
      maxFetching = Math.max(maxFetching, fetching);
      log.push(`fetch ${fetched}`);
      await tick();
      fetching--;
      if (fetched === count) return null;
      const batch = Array.from({ length: size }, (_, i) => fetched * size + i);
      fetched++;
      return batch;
    };
    return { next, log, maxFetching: () => maxFetching };
  }

  it('should work every item once, at most `concurrency` at a time, fetching one batch at a time', async () => {
    const src = source(5, 10);
    const worked: number[] = [];
    let inFlight = 0;
    let maxInFlight = 0;
    await drainBatches(src.next, { concurrency: 4, refillBelow: 4, limiter: null }, async (item) => {
      inFlight++;
      maxInFlight = Math.max(maxInFlight, inFlight);
      await tick();
      await tick();
      worked.push(item);
      inFlight--;
    });
    expect([...worked].sort((a, b) => a - b)).toEqual(Array.from({ length: 50 }, (_, i) => i));
    expect(maxInFlight).toBe(4);
    expect(src.maxFetching()).toBe(1);
    expect(src.log).toEqual(['fetch 0', 'fetch 1', 'fetch 2', 'fetch 3', 'fetch 4', 'fetch 5']);
  });

  it('should fetch the next batch while items of the previous one are still being worked', async () => {
    const src = source(2, 8);
    const events: string[] = [];
    await drainBatches(
      async () => {
        const batch = await src.next();
        events.push(batch ? `batch ${batch[0]}` : 'end');
        return batch;
      },
      { concurrency: 2, refillBelow: 4, limiter: null },
      async (item) => {
        events.push(`start ${item}`);
        await tick();
        await tick();
        events.push(`done ${item}`);
      },
    );
    // The second batch arrives before the last item of the first has even started (a source asked only once the
    // queue is empty would answer after it).
    expect(events.indexOf('batch 8')).toBeLessThan(events.indexOf('start 7'));
    expect(events.filter((e) => e.startsWith('done'))).toHaveLength(16);
  });

  it('should work the items already fetched when a fetch fails, then throw its error', async () => {
    let calls = 0;
    const worked: number[] = [];
    const run = drainBatches(
      async () => {
        calls++;
        if (calls === 1) return [1, 2, 3];
        throw new Error('database gone');
      },
      { concurrency: 2, refillBelow: 10, limiter: null },
      async (item) => {
        await tick();
        worked.push(item);
      },
    );
    await expect(run).rejects.toThrow('database gone');
    expect(worked.sort()).toEqual([1, 2, 3]);
    expect(calls).toBe(2);
  });

  it('should wait for every worker when one item throws, then throw its error', async () => {
    const worked: number[] = [];
    let finishedAfterFailure = false;
    const run = drainBatches(
      async () => (worked.length ? null : [1, 2, 3, 4]),
      { concurrency: 2, refillBelow: 1, limiter: null },
      async (item) => {
        if (item === 1) throw new Error('item 1 failed');
        await tick();
        await tick();
        worked.push(item);
        finishedAfterFailure = true;
      },
    );
    await expect(run).rejects.toThrow('item 1 failed');
    // When the error comes out, the other worker has finished what it took: nothing is still running.
    expect(finishedAfterFailure).toBe(true);
    expect(worked).toEqual([2, 3, 4]);
  });

  it('should end at once on an empty source', async () => {
    const fn = jest.fn(async () => undefined);
    await drainBatches(async () => null, { concurrency: 8, refillBelow: 8, limiter: null }, fn);
    expect(fn).not.toHaveBeenCalled();
  });
});
