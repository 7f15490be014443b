import { DataSource, QueryRunner } from 'typeorm';
import { dataSourceOptions } from '../src/database/database';
import { asChargeRun } from '../src/common/charge-run-context';
import { sharePoolWithChargeRuns } from '../src/database/pool-share';
import { createTestDatabase } from './utils/test-app';

/**
 * The charge run's share of the pool (DATABASE_POOL_RUN_RESERVE), on a real PostgreSQL pool of 4 with 2 kept for the
 * run: while a run executes, the rest of the process holds at most 2 connections, so the run's statements are answered
 * even when the API asks for every connection; with no run the API has the whole pool.
 */
describe('the charge run keeps its share of the database pool', () => {
  let db: { url: string; drop(): Promise<void> };
  let ds: DataSource;
  let unshare: () => void;

  beforeAll(async () => {
    db = await createTestDatabase();
    ds = new DataSource(dataSourceOptions(db.url, 4));
    await ds.initialize();
    unshare = sharePoolWithChargeRuns(ds, 2);
  });

  afterAll(async () => {
    unshare?.();
    await ds?.destroy();
    await db?.drop();
  });

  function deferred() {
    let resolve!: () => void;
    const promise = new Promise<void>((r) => (resolve = r));
    return { promise, resolve };
  }

  /** A connection checked out by the API (outside any run), with a flag set once it is granted. */
  function apiCheckout() {
    const qr = ds.createQueryRunner();
    const c = { qr, granted: false, ready: null as unknown as Promise<QueryRunner> };
    c.ready = qr.connect().then(() => {
      c.granted = true;
      return qr;
    });
    return c;
  }

  it('answers the run while the API asks for every connection, and gives the API the rest once the run ends', async () => {
    const started = deferred();
    const apiAsked = deferred();
    const runQueried = deferred();
    const runMayEnd = deferred();
    let runAnswer: string | null = null;
    const run = asChargeRun(async () => {
      started.resolve();
      await apiAsked.promise;
      runAnswer = (await ds.query(`SELECT 'run' AS who`))[0].who;
      runQueried.resolve();
      await runMayEnd.promise;
    });
    await started.promise;
    // The API (outside the run) asks for the whole pool while the run executes: it gets its share, 2.
    const api = [apiCheckout(), apiCheckout(), apiCheckout(), apiCheckout()];
    await Promise.all([api[0].ready, api[1].ready]);
    apiAsked.resolve();
    await runQueried.promise;
    expect(runAnswer).toBe('run');
    expect(api.map((c) => c.granted)).toEqual([true, true, false, false]);

    runMayEnd.resolve();
    await run;
    const all = await Promise.all(api.map((c) => c.ready));
    const who = await Promise.all(all.map((qr) => qr.query(`SELECT 'api' AS who`)));
    expect(who.map((r: { who: string }[]) => r[0].who)).toEqual(['api', 'api', 'api', 'api']);
    await Promise.all(all.map((qr) => qr.release()));
  });

  it('gives the API the whole pool when no run executes', async () => {
    const api = [apiCheckout(), apiCheckout(), apiCheckout(), apiCheckout()];
    const all = await Promise.all(api.map((c) => c.ready));
    expect(api.map((c) => c.granted)).toEqual([true, true, true, true]);
    await Promise.all(all.map((qr) => qr.release()));
    // Released connections go back to the share: the API can take the whole pool again.
    const again = [apiCheckout(), apiCheckout(), apiCheckout(), apiCheckout()];
    await Promise.all(again.map((c) => c.ready));
    await Promise.all(again.map((c) => c.qr.release()));
  });

  it("bounds a gated caller's whole wait by the pool's connection time-out, not the gate's and the pool's one after the other", async () => {
    // A pool of 2 with 1 kept for the run and a 1 s connection time-out. The API holds its one connection, and the run
    // holds the other and asks for a second. A second API caller (B) waits at the gate; at 0.4 s the API's connection
    // comes back, so B passes the gate, but the pool hands that connection to the run, and B waits in pg's queue.
    // B's whole wait is bounded by the 1 s it was given: it must give up at 1 s, not take the run's connection
    // returned at 1.2 s (which a second, fresh 1 s wait in the pool would allow).
    const small = new DataSource({ ...dataSourceOptions(db.url, 2), extra: { max: 2, connectionTimeoutMillis: 1000 } } as typeof ds.options);
    await small.initialize();
    const unshareSmall = sharePoolWithChargeRuns(small, 1);
    try {
      const runMayEnd = deferred();
      const runHolds = deferred();
      const apiHeld = small.createQueryRunner();
      await apiHeld.connect();
      const run = asChargeRun(async () => {
        const first = small.createQueryRunner();
        await first.connect();
        runHolds.resolve();
        const second = small.createQueryRunner();
        const secondReady = second.connect();
        await runMayEnd.promise;
        await first.release();
        await secondReady;
        await second.release();
      });
      await runHolds.promise;
      const b = small.createQueryRunner();
      const bOutcome = b.connect().then(
        async () => {
          await b.release();
          return 'connected';
        },
        (e: Error) => `failed: ${e.message}`,
      );
      setTimeout(() => void apiHeld.release(), 400);
      setTimeout(() => runMayEnd.resolve(), 1200);
      expect(await bOutcome).toMatch(/^failed: .*timeout/);
      await run;
    } finally {
      unshareSmall();
      await small.destroy();
    }
  });

  it('gives up on a caller still waiting at the share after the time-out, and leaves the share whole', async () => {
    // A pool of 2 with 1 kept for the run and a 0.5 s time-out: while a run executes, the API's second caller waits at
    // the share and gives up; once the API's connection comes back, the next caller gets it (nothing stayed held).
    const small = new DataSource({ ...dataSourceOptions(db.url, 2), extra: { max: 2, connectionTimeoutMillis: 500 } } as typeof ds.options);
    await small.initialize();
    const unshareSmall = sharePoolWithChargeRuns(small, 1);
    try {
      const runMayEnd = deferred();
      const runStarted = deferred();
      const run = asChargeRun(async () => {
        runStarted.resolve();
        await runMayEnd.promise;
      });
      await runStarted.promise;
      const held = small.createQueryRunner();
      await held.connect();
      const late = small.createQueryRunner();
      await expect(late.connect()).rejects.toThrow(/timeout/);
      await held.release();
      const next = small.createQueryRunner();
      await next.connect();
      expect((await next.query(`SELECT 'api' AS who`))[0].who).toBe('api');
      await next.release();
      runMayEnd.resolve();
      await run;
    } finally {
      unshareSmall();
      await small.destroy();
    }
  });
});
