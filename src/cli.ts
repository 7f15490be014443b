import 'reflect-metadata';
import { INestApplication } from '@nestjs/common';
import { SingleBar, Presets } from 'cli-progress';
import { Command, CommanderError, Option } from 'commander';
import { createApp } from './app.factory';
import { API_KEY_ROLES, ApiKeyRole } from './auth/api-key.entity';
import { ApiKeysService } from './auth/api-keys.service';
import { resolveRuntime } from './bootstrap';
import { ConfigError, loadConfig } from './config/config';
import { JsonLogger } from './common/json-logger';
import { runMigrations } from './database/database';
import { ChargeRunsService, RunCounters } from './charging/charge-runs.service';
import { DataSource } from 'typeorm';
import { chargeRunExitCode, failureSummary, runFailures } from './charging/charge-run-report';
import { ReconciliationRunsService } from './reports/reconciliation-runs.service';
import { runOperatorsCommand } from './operators/operators.cli';

/** Exit codes of every command (README, "The charge run"): wrong usage is 2, a command that could not run 1. */
const USAGE_ERROR = 2;

const out = (s: string) => process.stdout.write(s);
const json = (value: unknown) => out(`${JSON.stringify(value)}\n`);

async function withApp<T>(fn: (app: INestApplication) => Promise<T>, opts: { useRunningFake?: boolean } = {}): Promise<T> {
  const config = loadConfig({ ...process.env, CHARGE_RUN_CRON_ENABLED: 'false' });
  const logger = new JsonLogger(process.env.LOG_LEVEL === 'debug' ? 'debug' : 'warn');
  const resolved = await resolveRuntime(config, logger, { startFake: false, useRunningFake: opts.useRunningFake });
  try {
    if (!config.skipMigrations) await runMigrations(resolved.runtime.databaseUrl);
    const app = await createApp(resolved.runtime);
    try {
      return await fn(app);
    } finally {
      await app.close();
    }
  } finally {
    await resolved.stop();
  }
}

const countsLine = (c: RunCounters) =>
  `  due ${c.due}  charged ${c.charged}  failed ${c.failed}  unknown ${c.unknown}  skipped ${c.skipped}  resolved ${c.resolved}  canceled ${c.canceled}  resumed ${c.resumed}\n`;

/**
 * The progress of a charge run: a bar on a terminal (cli-progress, on stderr), a line of counts per batch otherwise
 * (logs, CI). The total grows as batches are claimed: the run does not count its due subscriptions ahead.
 */
function progressOf(enabled: boolean, tty: boolean): { update(c: RunCounters): void; stop(): void } {
  if (!enabled) return { update: () => undefined, stop: () => undefined };
  if (!tty) return { update: (c) => out(countsLine(c)), stop: () => undefined };
  const bar = new SingleBar(
    {
      format: '  {bar} {value}/{total} claimed | charged {charged}  failed {failed}  unknown {unknown}  skipped {skipped}',
      hideCursor: true,
      clearOnComplete: false,
    },
    Presets.shades_classic,
  );
  let started = false;
  return {
    update: (c) => {
      const done = c.charged + c.failed + c.unknown + c.skipped + c.localFaults;
      const payload = { charged: c.charged, failed: c.failed, unknown: c.unknown, skipped: c.skipped };
      if (!started) {
        bar.start(Math.max(c.due, 1), done, payload);
        started = true;
      }
      bar.setTotal(Math.max(c.due, done, 1));
      bar.update(done, payload);
    },
    stop: () => {
      if (started) bar.stop();
    },
  };
}

/** Builds the command line; `setCode` receives each command's exit code. */
function buildProgram(setCode: (code: number) => void): Command {
  const program = new Command('cli')
    .description('Operations of the Bootpay billing scheduler (npm run cli -- <command>; npm run charge-run)')
    .showHelpAfterError('(add --help for usage)')
    .exitOverride();

  program
    .command('migrate')
    .description('apply pending migrations')
    .option('--json', 'print one JSON object')
    .action(async (opts: { json?: boolean }) => {
      const config = loadConfig();
      const resolved = await resolveRuntime(config, new JsonLogger('warn'), { startFake: false });
      try {
        const applied = await runMigrations(resolved.runtime.databaseUrl);
        if (opts.json) json({ applied });
        else out(applied.length ? `Applied: ${applied.join(', ')}\n` : 'No pending migrations\n');
      } finally {
        await resolved.stop();
      }
      setCode(0);
    });

  program
    .command('api-keys:create')
    .description('create an API key (printed once; only its hash is kept)')
    .addOption(new Option('--role <role>', 'the role of the key').choices([...API_KEY_ROLES]))
    .option('--name <name>', 'a name for the key (at most 100 characters)')
    .option('--json', 'print one JSON object')
    .action(async (opts: { role?: ApiKeyRole; name?: string; json?: boolean }) => {
      const { role, name } = opts;
      if (!role || !name || name.length > 100) {
        process.stderr.write('api-keys:create needs --role admin|service and --name (at most 100 characters)\n');
        return setCode(USAGE_ERROR);
      }
      const created = await withApp((app) => app.get(ApiKeysService).create(name, role));
      if (opts.json) json({ id: created.id, role, name, key: created.key });
      else out(`Created ${role} key ${created.id}\n${created.key}\nKeep it now: only its hash is stored.\n`);
      setCode(0);
    });

  program
    .command('api-keys:list')
    .description('list API keys (never the keys themselves)')
    .option('--json', 'print one JSON object per key')
    .action(async (opts: { json?: boolean }) => {
      const keys = await withApp((app) => app.get(ApiKeysService).list());
      for (const k of keys) {
        if (opts.json) json({ id: k.id, role: k.role, key_prefix: k.keyPrefix, name: k.name, revoked_at: k.revokedAt?.toISOString() ?? null });
        else out(`${k.id}  ${k.role.padEnd(7)}  ${k.keyPrefix}…  ${k.name}${k.revokedAt ? '  (revoked)' : ''}\n`);
      }
      setCode(0);
    });

  program
    .command('api-keys:revoke')
    .description('revoke an API key (exit 1 when no active key has that id)')
    .argument('[id]', 'the key id (a UUID from api-keys:list)')
    .option('--json', 'print one JSON object')
    .action(async (id: string | undefined, opts: { json?: boolean }) => {
      if (!id || !/^[0-9a-f-]{36}$/i.test(id)) {
        process.stderr.write('api-keys:revoke needs the key id (a UUID from api-keys:list)\n');
        return setCode(USAGE_ERROR);
      }
      const ok = await withApp((app) => app.get(ApiKeysService).revoke(id));
      if (opts.json) json({ id, revoked: ok });
      else out(ok ? `Revoked ${id}\n` : `No active key ${id}\n`);
      setCode(ok ? 0 : 1);
    });

  program
    .command('charge-run')
    .summary('run the charge run now and show its progress (exit 0, 3 or 4)')
    .description(
      'run the charge run now and show its progress. Exit code 0 when every due subscription was charged or declined, ' +
        '3 when unknown outcomes or aborted attempts remain, 4 when the run failed or was interrupted (SIGTERM/SIGINT: ' +
        'no more claims, the charges in flight are finished and recorded)',
    )
    .option('--json', 'print one JSON object: the run, its exit code and every failure')
    .option('--no-progress', 'no progress bar or count lines')
    .action(async (opts: { json?: boolean; progress: boolean }) => {
      // Exit codes: see CHARGE_RUN_EXIT (0 all charged or declined, 3 unknown or aborted attempts remain, 4 run failed).
      const progress = progressOf(!opts.json && opts.progress, Boolean(process.stderr.isTTY));
      const { run, failures } = await withApp(
        async (app) => {
          const runs = app.get(ChargeRunsService);
          const stop = () => void runs.stop(loadConfig().shutdownTimeoutMs);
          process.once('SIGTERM', stop);
          process.once('SIGINT', stop);
          const created = (await runs.create('cli', { requestedBy: 'cli' }))!;
          if (!opts.json) out(`Charge run ${created.id} as of ${created.asOf.toISOString()}\n`);
          try {
            const done = await runs.execute(created, (c) => progress.update(c));
            return { run: runs.map(done), failures: await runFailures(app.get(DataSource), done.id) };
          } finally {
            progress.stop();
            process.removeListener('SIGTERM', stop);
            process.removeListener('SIGINT', stop);
          }
        },
        { useRunningFake: !process.env.BOOTPAY_CLIENT_KEY && !process.env.BOOTPAY_APPLICATION_ID },
      );
      const code = chargeRunExitCode(run.status, failures);
      if (opts.json) {
        json({ run, exit_code: code, failures });
      } else {
        out(failureSummary(failures));
        out(`Run ${run.status}${run.error ? `: ${run.error}` : ''} (exit code ${code})\n`);
      }
      setCode(code);
    });

  program
    .command('reconcile')
    .summary('reconcile the rolling window with Bootpay now')
    .description('reconcile the rolling window with Bootpay now (exit 3 when it differs, 4 when the run failed)')
    .option('--json', 'print one JSON object: the run and its differences')
    .action(async (opts: { json?: boolean }) => {
      const run = await withApp(async (app) => {
        const runs = app.get(ReconciliationRunsService);
        return runs.map(await runs.execute((await runs.create('cli', { requestedBy: 'cli' }))!));
      });
      if (opts.json) json(run);
      else {
        out(`Reconciliation ${run.id} ${run.status}: ${run.checked.payments} payments, ${run.checked.reservations} reservations checked\n`);
        out(`  differences ${run.counts.differences}  new ${run.counts.new}  persistent ${run.counts.persistent}  resolved ${run.counts.resolved}\n`);
        for (const d of run.differences.slice(0, 20)) {
          out(`  ${d.kind} ${d.id} ${d.field}: here ${JSON.stringify(d.local)}, Bootpay ${JSON.stringify(d.bootpay)} (first seen ${d.first_seen_at})\n`);
        }
      }
      setCode(run.status === 'completed' ? (run.counts.differences ? 3 : 0) : 4);
    });

  // The console's operators: the options are checked (and the output written) by operators.cli.ts.
  const operatorArgs = (opts: Record<string, string | undefined>) => Object.entries(opts).flatMap(([k, v]) => (v === undefined ? [] : [`--${k}`, v]));
  program
    .command('operators:create')
    .description('create a console operator (its password is printed once)')
    .option('--email <email>', 'the operator email')
    .option('--role <role>', 'finance or viewer')
    .option('--name <name>', 'a display name')
    .action(async (opts: Record<string, string | undefined>) => setCode(await runOperatorsCommand('operators:create', operatorArgs(opts), withApp)));
  program
    .command('operators:list')
    .description('list console operators')
    .action(async () => setCode(await runOperatorsCommand('operators:list', [], withApp)));
  program
    .command('operators:reset-password')
    .description('a new password (printed once); unlocks and signs out the operator')
    .option('--email <email>', 'the operator email')
    .action(async (opts: Record<string, string | undefined>) => setCode(await runOperatorsCommand('operators:reset-password', operatorArgs(opts), withApp)));

  return program;
}

async function main(argv: string[]): Promise<number> {
  let code = 0;
  const program = buildProgram((c) => (code = c));
  if (!argv.length) {
    program.outputHelp();
    return 0;
  }
  try {
    await program.parseAsync(argv, { from: 'user' });
  } catch (err) {
    if (err instanceof CommanderError) {
      // --help (and help after nothing else) is 0; an unknown command or option, a missing or wrong value, 2.
      return err.code === 'commander.helpDisplayed' || err.code === 'commander.help' || err.code === 'commander.version' ? 0 : USAGE_ERROR;
    }
    throw err;
  }
  return code;
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`${err instanceof ConfigError ? err.message : `Failed: ${err instanceof Error ? err.message : String(err)}`}\n`);
    process.exit(1);
  },
);
