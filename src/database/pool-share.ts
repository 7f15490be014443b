import { Inject, Injectable, OnModuleDestroy, OnModuleInit } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import type { Pool, PoolClient } from 'pg';
import { DataSource } from 'typeorm';
import { chargeRunsRunning, inChargeRun, onChargeRunsChange } from '../common/charge-run-context';
import { Runtime, RUNTIME } from '../config/runtime';

/**
 * The charge run's share of the database pool. While a run executes in this process, the rest of the process (the
 * API, the console, the outbox) may hold at most `size - reserve` of the pool's connections at once; the run's own
 * statements never wait behind them. Without it, 100 API connections keep all of the pool busy with dozens of
 * requests queued, and the run's every statement waits its turn in that queue (measured: the run charged at a third
 * of its pace while the load lasted). With no run, the API has the whole pool.
 *
 * The run marks its work with asChargeRun (common/charge-run-context.ts), which carries the mark through every await
 * of the run, so the ledger and the gateway need not know of it.
 */

/** pg's own message when no connection came free in time, so callers see one error for both waits. */
const timedOut = () => new Error('timeout exceeded when trying to connect');

type ConnectCallback = (err: Error | undefined, client: PoolClient | undefined, done: (release?: unknown) => void) => void;

/** Holds the callers that are not the run's to `size - reserve` connections while a run executes. */
class PoolGate {
  private held = 0;
  private readonly waiting: (() => void)[] = [];

  constructor(
    private readonly size: number,
    private readonly reserve: number,
  ) {}

  private limit(): number {
    return chargeRunsRunning() > 0 ? this.size - this.reserve : this.size;
  }

  /**
   * Calls `granted` once a connection of the share is free (at once when one is). Answers a function that withdraws a
   * caller still waiting (true) or does nothing once it was granted (false).
   */
  acquire(granted: () => void): () => boolean {
    if (this.held < this.limit() && this.waiting.length === 0) {
      this.held += 1;
      granted();
      return () => false;
    }
    this.waiting.push(granted);
    return () => {
      const i = this.waiting.indexOf(granted);
      if (i < 0) return false;
      this.waiting.splice(i, 1);
      return true;
    };
  }

  release(): void {
    this.held -= 1;
    this.wake();
  }

  wake(): void {
    while (this.waiting.length > 0 && this.held < this.limit()) {
      this.held += 1;
      this.waiting.shift()!();
    }
  }
}

/**
 * Gives the charge run its share of the pool of `db` (TypeORM's pg pool): `reserve` of its connections stay free for
 * the run while one executes. `reserve` 0 leaves the pool as it is. Answers a function to call when the pool closes.
 */
export function sharePoolWithChargeRuns(db: DataSource, reserve: number): () => void {
  const pool = (db.driver as unknown as { master?: Pool }).master;
  if (!pool || reserve <= 0) return () => undefined;
  const { max: size, connectionTimeoutMillis } = (pool as unknown as { options: { max: number; connectionTimeoutMillis?: number } }).options;
  // The configuration keeps it below the pool's size; a pool made smaller elsewhere (a test's) keeps one for the rest.
  const gate = new PoolGate(size, Math.min(reserve, size - 1));
  const stop = onChargeRunsChange(() => gate.wake());
  const connect = pool.connect.bind(pool) as (cb: ConnectCallback) => void;
  // pg's pool.query and TypeORM both check clients out through connect(callback); a promise caller gets the same.
  const shared = (cb?: ConnectCallback): Promise<PoolClient> | undefined => {
    if (!cb) {
      return new Promise<PoolClient>((resolve, reject) => shared((err, client) => (err || !client ? reject(err ?? new Error('no client')) : resolve(client))));
    }
    if (inChargeRun()) return void connect(cb);
    // One deadline, the pool's connection time-out, bounds the caller's whole wait: at the gate, then in pg's queue
    // (whose own time-out would start again). A client that comes after it goes back to the pool.
    const timeoutMs = connectionTimeoutMillis ?? 0;
    let waitingAt: 'gate' | 'pool' | 'answered' = 'gate';
    const deadline =
      timeoutMs > 0
        ? setTimeout(() => {
            if (waitingAt === 'gate') withdraw();
            else if (waitingAt === 'pool') gate.release();
            else return;
            waitingAt = 'answered';
            cb(timedOut(), undefined, () => undefined);
          }, timeoutMs)
        : null;
    const withdraw = gate.acquire(() => {
      waitingAt = 'pool';
      connect((err, client, done) => {
        if (waitingAt === 'answered') {
          if (client) done();
          return;
        }
        waitingAt = 'answered';
        if (deadline) clearTimeout(deadline);
        if (err || !client) {
          gate.release();
          return cb(err, client, done);
        }
        let returned = false;
        const release = client.release.bind(client);
        const giveBack = (e?: unknown) => {
          if (!returned) {
            returned = true;
            gate.release();
          }
          return release(e as Error | boolean | undefined);
        };
        client.release = giveBack;
        cb(undefined, client, giveBack);
      });
    });
    return undefined;
  };
  (pool as unknown as { connect: typeof shared }).connect = shared;
  return stop;
}

/** Sets the charge run's share of the service's pool (`DATABASE_POOL_RUN_RESERVE`) at start. */
@Injectable()
export class PoolShare implements OnModuleInit, OnModuleDestroy {
  private stop = (): void => undefined;

  constructor(
    @InjectDataSource() private readonly db: DataSource,
    @Inject(RUNTIME) private readonly runtime: Runtime,
  ) {}

  onModuleInit(): void {
    this.stop = sharePoolWithChargeRuns(this.db, this.runtime.config.databasePoolRunReserve);
  }

  onModuleDestroy(): void {
    this.stop();
  }
}
