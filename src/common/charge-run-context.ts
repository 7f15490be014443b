import { AsyncLocalStorage } from 'node:async_hooks';

/**
 * Marks the work of a charge run, through every await of it (an AsyncLocalStorage context), so that shared
 * infrastructure can favour it without the ledger, the gateway or the database code knowing of runs: the database
 * pool keeps the run a share of its connections (database/pool-share.ts).
 */
const chargeRun = new AsyncLocalStorage<true>();
const listeners = new Set<(running: number) => void>();
let running = 0;

/** Runs `work` as a charge run's. */
export async function asChargeRun<T>(work: () => Promise<T>): Promise<T> {
  running += 1;
  for (const l of listeners) l(running);
  try {
    return await chargeRun.run(true, work);
  } finally {
    running -= 1;
    for (const l of listeners) l(running);
  }
}

/** Whether the caller is a charge run's work. */
export function inChargeRun(): boolean {
  return chargeRun.getStore() === true;
}

/** How many charge runs execute in this process now. */
export function chargeRunsRunning(): number {
  return running;
}

/** Called with the number of charge runs executing whenever it changes; answers a function that stops it. */
export function onChargeRunsChange(listener: (running: number) => void): () => void {
  listeners.add(listener);
  return () => listeners.delete(listener);
}
