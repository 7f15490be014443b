import { LoggerService } from '@nestjs/common';
import pino, { Logger as Pino } from 'pino';
import { REDACTED, redact } from './redact';

export type LogLevel = 'debug' | 'info' | 'warn' | 'error';
const ORDER: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 };

export type LogSink = (line: string) => void;

/** Fields whose place is known: pino's `redact` paths censor them wherever a log line has them at these depths. */
const SECRET_FIELDS = [
  'billing_key',
  'billingKey',
  'card_no',
  'cardNo',
  'card_number',
  'card_pw',
  'cardPw',
  'card_identity_no',
  'password',
  'secret',
  'secret_key',
  'signing_secret',
  'private_key',
  'client_key',
  'access_token',
  'token',
  'authorization',
  'api_key',
  'cookie',
  'ciphertext',
];
export const REDACT_PATHS: string[] = [
  ...SECRET_FIELDS,
  ...SECRET_FIELDS.map((f) => `*.${f}`),
  ...SECRET_FIELDS.map((f) => `*.*.${f}`),
  'headers["set-cookie"]',
  'req.headers["x-api-key"]',
];

/**
 * Nest's start-up lines (a line per module and per mapped route) are written at debug: a quiet start at info.
 */
const START_UP_CONTEXTS = new Set(['RoutesResolver', 'RouterExplorer', 'InstanceLoader']);

/**
 * The service's logger: Nest's LoggerService over pino, one JSON object per line (`time` ISO from the injected clock,
 * `level` as a word, `message`, `context`). Secrets are censored twice over, on top of the rule that code never logs
 * them: pino's `redact` paths for the fields whose names and places are known, and {@link redact} for any field named
 * like a key, card number, token or secret at any depth (which fast-redact's exact paths cannot express).
 * The sink and the clock are injectable: tests pass theirs and read every line.
 */
export class JsonLogger implements LoggerService {
  /** The pino logger itself (for pino-http or child loggers). */
  readonly pino: Pino;

  constructor(
    private readonly level: LogLevel = 'info',
    sink: LogSink = (line) => process.stdout.write(line + '\n'),
    clock: () => Date = () => new Date(),
  ) {
    // pino calls `timestamp` once while it is built (to find where the time starts); the clock is read per line only.
    let built = false;
    this.pino = pino(
      {
        level,
        base: undefined,
        messageKey: 'message',
        timestamp: () => `,"time":"${built ? clock().toISOString() : new Date(0).toISOString()}"`,
        formatters: { level: (label) => ({ level: label }) },
        redact: { paths: REDACT_PATHS, censor: REDACTED },
      },
      { write: (chunk: string) => sink(chunk.endsWith('\n') ? chunk.slice(0, -1) : chunk) },
    );
    built = true;
  }

  log(message: unknown, ...rest: unknown[]): void {
    this.write('info', message, rest);
  }
  error(message: unknown, ...rest: unknown[]): void {
    this.write('error', message, rest);
  }
  warn(message: unknown, ...rest: unknown[]): void {
    this.write('warn', message, rest);
  }
  debug(message: unknown, ...rest: unknown[]): void {
    this.write('debug', message, rest);
  }
  verbose(message: unknown, ...rest: unknown[]): void {
    this.write('debug', message, rest);
  }
  fatal(message: unknown, ...rest: unknown[]): void {
    this.write('error', message, rest);
  }

  private write(level: LogLevel, message: unknown, rest: unknown[]): void {
    // Nest passes (message, context) or (message, stack, context).
    const args = [...rest];
    const context = typeof args[args.length - 1] === 'string' ? (args.pop() as string) : undefined;
    if (level === 'info' && context && START_UP_CONTEXTS.has(context)) level = 'debug';
    if (ORDER[level] < ORDER[this.level]) return;
    const entry: Record<string, unknown> = {};
    if (typeof message === 'string') entry.message = message;
    else if (message instanceof Error) {
      entry.message = message.message;
      entry.error = redact(message);
    } else if (message && typeof message === 'object') Object.assign(entry, redact(message) as object);
    else entry.message = String(message);
    for (const extra of args) {
      if (typeof extra === 'string') entry.stack = extra;
      else if (extra !== undefined) entry.detail = redact(extra);
    }
    // pino writes time and level itself; a logged object's fields of those names would shadow them.
    delete entry.time;
    delete entry.level;
    if (context) entry.context = context;
    else delete entry.context;
    this.pino[level](entry);
  }
}
