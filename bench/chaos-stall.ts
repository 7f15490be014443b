/**
 * For `npm run chaos`: a watchdog for a service that stops making progress without failing (a pool or lock
 * deadlock). Every 5 s it asks PostgreSQL for sessions of the bench's database that are idle in a transaction, or
 * waiting for a lock, for longer than `stallSeconds`; the first time it finds some it takes a snapshot (each session's
 * state, ages, advisory locks, last statement, and which instance process holds it, from /proc) and reports it.
 * Sessions are never touched.
 */
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { Client } from 'pg';
import { log, onCleanup, sleep } from './lib';

export interface StalledSession {
  pid: number;
  clientPort: number | null;
  /** The instance slot whose process holds the connection (null: not an instance's). */
  slot: number | null;
  state: string;
  wait: string;
  xactAgeS: number | null;
  stateAgeS: number;
  advisoryLocks: string;
  query: string;
}

export interface StallReport {
  at: string;
  stallSeconds: number;
  stuck: number;
  sessions: StalledSession[];
}

/** Local TCP ports of the sockets a process holds (Linux /proc; empty elsewhere). */
function localPortsOf(pid: number): Set<number> {
  const inodes = new Set<string>();
  try {
    for (const fd of readdirSync(`/proc/${pid}/fd`)) {
      try {
        const m = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${pid}/fd/${fd}`));
        if (m) inodes.add(m[1]);
      } catch {
        /* closed meanwhile */
      }
    }
  } catch {
    return new Set();
  }
  const ports = new Set<number>();
  for (const file of ['/proc/net/tcp', '/proc/net/tcp6']) {
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch {
      continue;
    }
    for (const line of text.split('\n').slice(1)) {
      const f = line.trim().split(/\s+/);
      if (f.length > 9 && inodes.has(f[9])) ports.add(parseInt(f[1].split(':')[1], 16));
    }
  }
  return ports;
}

/**
 * Starts the watchdog on `databaseUrl`; `instancePids()` gives the instance processes by slot. Resolves `stalled`
 * with the snapshot when a stall is seen (never rejects); `stop()` ends it.
 */
export function watchStalls(
  databaseUrl: string,
  stallSeconds: number,
  instancePids: () => (number | undefined)[],
): { stalled: Promise<StallReport>; stop(): void } {
  let stopped = false;
  let found!: (r: StallReport) => void;
  const stalled = new Promise<StallReport>((r) => (found = r));
  const database = new URL(databaseUrl).pathname.slice(1);
  const tick = async (): Promise<StallReport | null> => {
    const c = new Client({ connectionString: databaseUrl, connectionTimeoutMillis: 3000 });
    c.on('error', () => undefined); // the database may be killed under it: the tick fails and the next one tries again
    try {
      await c.connect();
      const stuck = Number(
        (
          await c.query(
            `SELECT count(*)::int AS n FROM pg_stat_activity
             WHERE datname = $1 AND pid <> pg_backend_pid()
               AND ((state LIKE 'idle in transaction%' AND now() - state_change > make_interval(secs => $2))
                 OR (state = 'active' AND wait_event_type = 'Lock' AND now() - query_start > make_interval(secs => $2)))`,
            [database, stallSeconds],
          )
        ).rows[0].n,
      );
      if (!stuck) return null;
      const rows: {
        pid: number;
        client_port: number | null;
        state: string;
        wait: string;
        xact_age: number | null;
        state_age: number;
        advisory: string | null;
        query: string;
      }[] = (
        await c.query(
          `SELECT a.pid, a.client_port, a.state, coalesce(a.wait_event_type || '/' || a.wait_event, '') AS wait,
                  extract(epoch FROM now() - a.xact_start)::float8 AS xact_age, extract(epoch FROM now() - a.state_change)::float8 AS state_age,
                  (SELECT string_agg(l.objid::text || CASE WHEN l.granted THEN ' held' ELSE ' waited for' END, ', ')
                     FROM pg_locks l WHERE l.pid = a.pid AND l.locktype = 'advisory') AS advisory,
                  left(regexp_replace(a.query, '\\s+', ' ', 'g'), 200) AS query
           FROM pg_stat_activity a WHERE a.datname = $1 AND a.pid <> pg_backend_pid() AND a.backend_type = 'client backend'
           ORDER BY a.state, a.pid`,
          [database],
        )
      ).rows;
      const portsBySlot = instancePids().map((pid) => (pid ? localPortsOf(pid) : new Set<number>()));
      const sessions = rows.map((r) => {
        const slot = r.client_port === null ? -1 : portsBySlot.findIndex((ports) => ports.has(r.client_port!));
        return {
          pid: r.pid,
          clientPort: r.client_port,
          slot: slot >= 0 ? slot : null,
          state: r.state,
          wait: r.wait,
          xactAgeS: r.xact_age === null ? null : Math.round(r.xact_age),
          stateAgeS: Math.round(r.state_age),
          advisoryLocks: r.advisory ?? '',
          query: r.query,
        };
      });
      return { at: new Date().toISOString(), stallSeconds, stuck, sessions };
    } finally {
      await c.end().catch((err: unknown) => log(`stall watchdog: closing its client: ${String(err)}`));
    }
  };
  void (async () => {
    let failures = 0;
    while (!stopped) {
      await sleep(5000);
      if (stopped) break;
      try {
        const report = await tick();
        failures = 0;
        if (report && !stopped) {
          stopped = true;
          found(report);
        }
      } catch (err) {
        // The database is down now and then in this bench: say so only when it lasts (a minute).
        if (++failures % 12 === 0 && !stopped) log(`stall watchdog: ${err instanceof Error ? err.message : String(err)} (${failures} tries in a row)`);
      }
    }
  })();
  const stop = () => {
    stopped = true;
  };
  onCleanup(stop);
  return { stalled, stop };
}

/** The snapshot as lines for a person. */
export function describeStall(r: StallReport): string {
  const lines = [
    `the service looks stuck: ${r.stuck} sessions idle in a transaction or waiting for a lock for over ${r.stallSeconds} s (${r.at})`,
    'pid     port   instance  state                 wait                  xact s  state s  advisory locks                     statement',
  ];
  for (const s of r.sessions) {
    lines.push(
      [
        String(s.pid).padEnd(7),
        String(s.clientPort ?? '').padEnd(6),
        String(s.slot ?? '-').padEnd(9),
        s.state.padEnd(21),
        s.wait.padEnd(21),
        String(s.xactAgeS ?? '').padEnd(7),
        String(s.stateAgeS).padEnd(8),
        s.advisoryLocks.padEnd(34),
        s.query.slice(0, 100),
      ].join(' '),
    );
  }
  return lines.join('\n');
}
