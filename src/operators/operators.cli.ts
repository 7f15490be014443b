import type { INestApplication } from '@nestjs/common';
import { DomainError } from '../common/errors';
import { OPERATOR_ROLES, OperatorRole, OperatorsService } from './operators.service';

export const OPERATOR_COMMANDS = ['operators:create', 'operators:list', 'operators:reset-password'];

export const OPERATORS_USAGE = `  operators:create --email EMAIL --role finance|viewer [--name NAME]
                                            create a console operator (its password is printed once)
  operators:list                            list console operators
  operators:reset-password --email EMAIL    a new password (printed once); unlocks and signs out the operator`;

function flag(args: string[], name: string): string | undefined {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : undefined;
}

/** The CLI's operator commands; `withApp` is the CLI's way to run with the application (and its database). */
export async function runOperatorsCommand(
  command: string,
  args: string[],
  withApp: <T>(fn: (app: INestApplication) => Promise<T>) => Promise<T>,
  out: (s: string) => void = (s) => process.stdout.write(s),
  err: (s: string) => void = (s) => process.stderr.write(s),
): Promise<number> {
  switch (command) {
    case 'operators:create': {
      const email = flag(args, 'email');
      const role = flag(args, 'role') as OperatorRole | undefined;
      const name = flag(args, 'name');
      if (!email || !role || !OPERATOR_ROLES.includes(role)) {
        err('operators:create needs --email EMAIL and --role finance|viewer (and optionally --name NAME)\n');
        return 2;
      }
      try {
        const { operator, password } = await withApp((app) => app.get(OperatorsService).create({ email, role, name }));
        out(
          `Created ${operator.role} operator ${operator.email} (${operator.id})\nPassword: ${password}\nKeep it now: only its hash is stored. It signs in once; the console then asks for a new one.\n`,
        );
        return 0;
      } catch (e) {
        if (e instanceof DomainError) {
          err(`${e.message}\n`);
          return 1;
        }
        throw e;
      }
    }
    case 'operators:list': {
      const list = await withApp((app) => app.get(OperatorsService).list());
      for (const o of list) {
        out(`${o.id}  ${o.role.padEnd(7)}  ${o.email}${o.name ? `  ${o.name}` : ''}${o.lockedUntil && o.lockedUntil > new Date() ? '  (locked)' : ''}\n`);
      }
      return 0;
    }
    case 'operators:reset-password': {
      const email = flag(args, 'email');
      if (!email) {
        err('operators:reset-password needs --email EMAIL\n');
        return 2;
      }
      const password = await withApp((app) => app.get(OperatorsService).resetPassword(email));
      if (!password) {
        err(`No operator ${email}\n`);
        return 1;
      }
      out(`New password for ${email}: ${password}\nKeep it now: only its hash is stored. It signs in once; the console then asks for a new one.\n`);
      return 0;
    }
    default:
      return 2;
  }
}
