import { LoggerService } from '@nestjs/common';
import { redact } from './redact';

export type LogLevel = 'debug' | 'info' | 'warn' | 'error';
const ORDER: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 };

export type LogSink = (line: string) => void;

/**
 * Structured JSON logs, one object per line. Objects passed as messages or context are redacted
 * (billing keys, card data, tokens and secrets never appear), on top of the rule that code never logs them.
 */
export class JsonLogger implements LoggerService {
  constructor(
    private readonly level: LogLevel = 'info',
    private readonly sink: LogSink = (line) => process.stdout.write(line + '\n'),
    private readonly clock: () => Date = () => new Date(),
  ) {}

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
    if (ORDER[level] < ORDER[this.level]) return;
    // Nest passes (message, context) or (message, stack, context).
    const args = [...rest];
    const context = typeof args[args.length - 1] === 'string' ? (args.pop() as string) : undefined;
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
    // Set last, so that fields of a logged object cannot overwrite them.
    entry.time = this.clock().toISOString();
    entry.level = level;
    if (context) entry.context = context;
    else delete entry.context;
    let line: string;
    try {
      line = JSON.stringify(entry);
    } catch {
      line = JSON.stringify({ time: entry.time, level, context, message: '[unserialisable log entry]' });
    }
    this.sink(line);
  }
}
