import 'reflect-metadata';
import { INestApplication } from '@nestjs/common';
import { createApp } from './app.factory';
import { API_KEY_ROLES, ApiKeyRole } from './auth/api-key.entity';
import { ApiKeysService } from './auth/api-keys.service';
import { resolveRuntime } from './bootstrap';
import { ConfigError, loadConfig } from './config/config';
import { JsonLogger } from './common/json-logger';
import { runMigrations } from './database/database';
import { ChargeRunsService } from './charging/charge-runs.service';
import { DataSource } from 'typeorm';
import { chargeRunExitCode, failureSummary, runFailures } from './charging/charge-run-report';
import { ReconciliationRunsService } from './reports/reconciliation-runs.service';
import { OPERATOR_COMMANDS, OPERATORS_USAGE, runOperatorsCommand } from './operators/operators.cli';

const USAGE = `Usage: npm run cli -- <command>
  migrate                                   apply pending migrations
  api-keys:create --role admin|service --name NAME
                                            create an API key (printed once; only its hash is kept)
  api-keys:list                             list API keys (never the keys themselves)
  api-keys:revoke ID                        revoke an API key
  charge-run [--json]                       run the charge run now and show its progress; exit code 0 when every
                                            due subscription was charged or declined, 3 when unknown outcomes or
                                            aborted attempts remain, 4 when the run failed
  reconcile [--json]                        reconcile the rolling window with Bootpay now (exit 3 when it differs)
${OPERATORS_USAGE}`;

function flag(args: string[], name: string): string | undefined {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : undefined;
}

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

async function main(argv: string[]): Promise<number> {
  const [command, ...args] = argv;
  switch (command) {
    case 'migrate': {
      const config = loadConfig();
      const resolved = await resolveRuntime(config, new JsonLogger('warn'), { startFake: false });
      try {
        const applied = await runMigrations(resolved.runtime.databaseUrl);
        process.stdout.write(applied.length ? `Applied: ${applied.join(', ')}\n` : 'No pending migrations\n');
      } finally {
        await resolved.stop();
      }
      return 0;
    }
    case 'api-keys:create': {
      const role = flag(args, 'role') as ApiKeyRole | undefined;
      const name = flag(args, 'name');
      if (!role || !API_KEY_ROLES.includes(role) || !name || name.length > 100) {
        process.stderr.write('api-keys:create needs --role admin|service and --name (at most 100 characters)\n');
        return 2;
      }
      const created = await withApp((app) => app.get(ApiKeysService).create(name, role));
      process.stdout.write(`Created ${role} key ${created.id}\n${created.key}\nKeep it now: only its hash is stored.\n`);
      return 0;
    }
    case 'api-keys:list': {
      const keys = await withApp((app) => app.get(ApiKeysService).list());
      for (const k of keys) {
        process.stdout.write(`${k.id}  ${k.role.padEnd(7)}  ${k.keyPrefix}…  ${k.name}${k.revokedAt ? '  (revoked)' : ''}\n`);
      }
      return 0;
    }
    case 'api-keys:revoke': {
      const id = args[0];
      if (!id || !/^[0-9a-f-]{36}$/i.test(id)) {
        process.stderr.write('api-keys:revoke needs the key id (a UUID from api-keys:list)\n');
        return 2;
      }
      const ok = await withApp((app) => app.get(ApiKeysService).revoke(id));
      process.stdout.write(ok ? `Revoked ${id}\n` : `No active key ${id}\n`);
      return ok ? 0 : 1;
    }
    case 'charge-run': {
      // Exit codes: see CHARGE_RUN_EXIT (0 all charged or declined, 3 unknown or aborted attempts remain, 4 run failed).
      const json = args.includes('--json');
      const { run, failures } = await withApp(
        async (app) => {
          const runs = app.get(ChargeRunsService);
          const created = (await runs.create('cli', { requestedBy: 'cli' }))!;
          if (!json) process.stdout.write(`Charge run ${created.id} as of ${created.asOf.toISOString()}\n`);
          const done = await runs.execute(created, (c) => {
            if (json) return;
            process.stdout.write(
              `  due ${c.due}  charged ${c.charged}  failed ${c.failed}  unknown ${c.unknown}  skipped ${c.skipped}  resolved ${c.resolved}  canceled ${c.canceled}  resumed ${c.resumed}\n`,
            );
          });
          return { run: runs.map(done), failures: await runFailures(app.get(DataSource), done.id) };
        },
        { useRunningFake: !process.env.BOOTPAY_CLIENT_KEY && !process.env.BOOTPAY_APPLICATION_ID },
      );
      const code = chargeRunExitCode(run.status, failures);
      if (json) {
        process.stdout.write(`${JSON.stringify({ run, exit_code: code, failures })}\n`);
      } else {
        process.stdout.write(failureSummary(failures));
        process.stdout.write(`Run ${run.status}${run.error ? `: ${run.error}` : ''} (exit code ${code})\n`);
      }
      return code;
    }
    case 'reconcile': {
      const run = await withApp(async (app) => {
        const runs = app.get(ReconciliationRunsService);
        return runs.map(await runs.execute((await runs.create('cli', { requestedBy: 'cli' }))!));
      });
      if (args.includes('--json')) process.stdout.write(`${JSON.stringify(run)}\n`);
      else {
        process.stdout.write(`Reconciliation ${run.id} ${run.status}: ${run.checked.payments} payments, ${run.checked.reservations} reservations checked\n`);
        process.stdout.write(`  differences ${run.counts.differences}  new ${run.counts.new}  persistent ${run.counts.persistent}  resolved ${run.counts.resolved}\n`);
        for (const d of run.differences.slice(0, 20)) {
          process.stdout.write(`  ${d.kind} ${d.id} ${d.field}: here ${JSON.stringify(d.local)}, Bootpay ${JSON.stringify(d.bootpay)} (first seen ${d.first_seen_at})\n`);
        }
      }
      return run.status === 'completed' ? (run.counts.differences ? 3 : 0) : 4;
    }
    default:
      if (OPERATOR_COMMANDS.includes(command)) return runOperatorsCommand(command, args, withApp);
      process.stderr.write(`${USAGE}\n`);
      return command ? 2 : 0;
  }
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`${err instanceof ConfigError ? err.message : `Failed: ${err instanceof Error ? err.message : String(err)}`}\n`);
    process.exit(1);
  },
);
