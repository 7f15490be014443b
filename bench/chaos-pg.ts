/**
 * For `npm run chaos`: a PostgreSQL that can be killed and started again. Embedded (the service's own
 * startEmbeddedPostgres) on a persistent data dir in a temp dir, so the data survives a SIGKILL of its postmaster and
 * a start on the same dir and port runs crash recovery, as a server restarted by its supervisor would; the dir is
 * removed at cleanup. With BENCH_DATABASE_URL, that server is used as bench/processes.ts startDatabaseServer uses it, and
 * it cannot be killed (`restartable` false).
 */
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { EmbeddedDatabase, startEmbeddedPostgres } from '../src/database/embedded-postgres';
import { runMigrations } from '../src/database/database';
import { cpuOfProcessTree, freePort, log, onCleanup, sleep } from './lib';
import { adminQuery, DatabaseServer, FreshDatabase, freshDatabaseName, startDatabaseServer, withDatabase } from './processes';

export interface RestartableDatabaseServer extends DatabaseServer {
  /** Whether kill/start work (an embedded server this process started). */
  restartable: boolean;
  /** The postmaster's PID, from its data dir's postmaster.pid (null when it is not running or not embedded). */
  postmasterPid(): number | null;
  /** SIGKILLs the postmaster (only it: its backends exit on their own, as they do when it dies) and waits for them to go. */
  kill(): Promise<{ pid: number; children: number; childrenLeftMs: number }>;
  /** Starts it again on the same data dir and port (retrying while the old backends still hold shared memory). */
  start(timeoutMs?: number): Promise<{ ms: number; tries: number }>;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    // A zombie is not alive: it is gone but not yet reaped.
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z';
  } catch {
    return false;
  }
}

/** The PIDs whose parent is `ppid` (Linux /proc; empty elsewhere). */
function childrenOf(ppid: number): number[] {
  return [...cpuOfProcessTree(ppid).keys()].filter((pid) => pid !== ppid);
}

/**
 * An embedded PostgreSQL that survives being killed (or, with BENCH_DATABASE_URL, the given server, not restartable).
 * `fresh` makes migrated databases as bench/processes.ts startDatabaseServer does.
 */
export async function startRestartableDatabaseServer(): Promise<RestartableDatabaseServer> {
  if (process.env.BENCH_DATABASE_URL?.trim()) {
    const server = await startDatabaseServer();
    return {
      ...server,
      restartable: false,
      postmasterPid: () => null,
      kill: () => Promise.reject(new Error('the database is BENCH_DATABASE_URL: not killed')),
      start: () => Promise.reject(new Error('the database is BENCH_DATABASE_URL: not restarted')),
    };
  }
  const dir = mkdtempSync(join(tmpdir(), 'chaos-pg-'));
  const port = await freePort();
  const logTail: string[] = [];
  const onLog = (line: string) => {
    logTail.push(line.trimEnd());
    if (logTail.length > 40) logTail.shift();
  };
  log(`starting embedded PostgreSQL (restartable) in ${dir} on port ${port}`);
  const open = (): Promise<EmbeddedDatabase> => startEmbeddedPostgres({ dir, port, database: 'bench_admin', persistent: true, onLog });
  let current: EmbeddedDatabase | null = await open();
  const adminUrl = current.url;

  const postmasterPid = (): number | null => {
    const file = join(dir, 'postmaster.pid');
    if (!existsSync(file)) return null;
    const pid = Number(readFileSync(file, 'utf8').split('\n')[0]);
    return Number.isInteger(pid) && pid > 0 && alive(pid) ? pid : null;
  };

  let stopped = false;
  onCleanup(async () => {
    if (stopped) return;
    stopped = true;
    const pid = postmasterPid();
    if (current && pid) {
      // A fast shutdown; never wait for ever (a stop of an instance whose process died would not end).
      await Promise.race([current.stop().catch((err: unknown) => log(`stopping the embedded PostgreSQL: ${String(err)}`)), sleep(15_000)]);
      if (alive(pid)) process.kill(pid, 'SIGKILL');
    }
    rmSync(dir, { recursive: true, force: true });
  });

  return {
    adminUrl,
    embedded: true,
    restartable: true,
    postmasterPid,
    stop: async () => {
      const pid = postmasterPid();
      if (current && pid) await Promise.race([current.stop().catch((err: unknown) => log(`stopping the embedded PostgreSQL: ${String(err)}`)), sleep(15_000)]);
      current = null;
    },
    kill: async () => {
      const pid = postmasterPid();
      if (!pid) throw new Error('PostgreSQL is not running');
      const children = childrenOf(pid);
      process.kill(pid, 'SIGKILL');
      current = null;
      const t = Date.now();
      // Its backends and helpers notice the postmaster's death and exit; a start before that finds its shared memory in use.
      while ((alive(pid) || children.some(alive)) && Date.now() - t < 30_000) await sleep(50);
      return { pid, children: children.length, childrenLeftMs: Date.now() - t };
    },
    start: async (timeoutMs = 60_000) => {
      const t = Date.now();
      let tries = 0;
      for (;;) {
        tries++;
        try {
          current = await open();
          return { ms: Date.now() - t, tries };
        } catch (err) {
          if (Date.now() - t > timeoutMs) {
            throw new Error(
              `PostgreSQL did not start again within ${timeoutMs} ms (${tries} tries): ${err instanceof Error ? err.message : String(err)}\n${logTail.join('\n')}`,
              { cause: err },
            );
          }
          await sleep(500);
        }
      }
    },
    fresh: async (label: string): Promise<FreshDatabase> => {
      const name = freshDatabaseName(label);
      await adminQuery(adminUrl, `CREATE DATABASE ${name}`);
      // The whole server goes at cleanup; dropping first keeps a failed cleanup from leaving a big dir behind.
      const drop = async () => {
        if (postmasterPid())
          await adminQuery(adminUrl, `DROP DATABASE IF EXISTS ${name} WITH (FORCE)`).catch((err: unknown) => log(`dropping a bench database: ${String(err)}`));
      };
      const url = withDatabase(adminUrl, name);
      await runMigrations(url);
      return { url, name, drop };
    },
  };
}
