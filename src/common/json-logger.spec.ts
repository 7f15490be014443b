import { JsonLogger, LogLevel } from './json-logger';

const T0 = new Date('2025-03-01T00:00:00.000Z');

function setup(level?: LogLevel, clock: () => Date = () => T0) {
  const lines: string[] = [];
  const logger = new JsonLogger(level, (line) => lines.push(line), clock);
  const entries = () => lines.map((l) => JSON.parse(l) as Record<string, unknown>);
  return { logger, lines, entries };
}

describe(JsonLogger.name, () => {
  it('should write one JSON object per call on a single line', () => {
    const { logger, lines, entries } = setup();
    logger.log('first');
    logger.warn('second\nwith a newline');
    expect(lines).toHaveLength(2);
    for (const line of lines) expect(line).not.toContain('\n');
    expect(entries()).toEqual([
      { time: T0.toISOString(), level: 'info', message: 'first' },
      { time: T0.toISOString(), level: 'warn', message: 'second\nwith a newline' },
    ]);
  });

  describe('level filtering', () => {
    it('should drop debug and verbose at the default info level', () => {
      const { logger, entries } = setup();
      logger.debug('d');
      logger.verbose('v');
      logger.log('i');
      expect(entries().map((e) => e.message)).toEqual(['i']);
    });

    it('should keep only warn and error at warn level', () => {
      const { logger, entries } = setup('warn');
      logger.debug('d');
      logger.log('i');
      logger.warn('w');
      logger.error('e');
      logger.fatal('f');
      expect(entries().map((e) => [e.level, e.message])).toEqual([
        ['warn', 'w'],
        ['error', 'e'],
        ['error', 'f'],
      ]);
    });

    it('should keep only errors at error level', () => {
      const { logger, entries } = setup('error');
      logger.warn('w');
      logger.error('e');
      expect(entries().map((e) => e.message)).toEqual(['e']);
    });

    it('should write verbose as debug at debug level', () => {
      const { logger, entries } = setup('debug');
      logger.debug('d');
      logger.verbose('v');
      expect(entries().map((e) => [e.level, e.message])).toEqual([
        ['debug', 'd'],
        ['debug', 'v'],
      ]);
    });
  });

  describe('as Nest calls it', () => {
    it('should take a trailing string as the context', () => {
      const { logger, entries } = setup();
      logger.log('Nest application successfully started', 'NestApplication');
      expect(entries()).toEqual([{ time: T0.toISOString(), level: 'info', context: 'NestApplication', message: 'Nest application successfully started' }]);
    });

    it('should take (message, stack, context) for errors', () => {
      const { logger, entries } = setup();
      const stack = 'Error: boom\n    at handler (app.ts:1:1)';
      logger.error('boom', stack, 'ExceptionsHandler');
      expect(entries()).toEqual([{ time: T0.toISOString(), level: 'error', context: 'ExceptionsHandler', message: 'boom', stack }]);
    });

    it('should leave the context out when none is given', () => {
      const { logger, entries } = setup();
      logger.log('plain');
      expect(entries()[0]).not.toHaveProperty('context');
    });

    it('should write an Error message with its name and message', () => {
      const { logger, entries } = setup();
      logger.error(new RangeError('out of range'), 'Charges');
      expect(entries()).toEqual([
        {
          time: T0.toISOString(),
          level: 'error',
          context: 'Charges',
          message: 'out of range',
          error: { name: 'RangeError', message: 'out of range' },
        },
      ]);
    });

    it('should write a non-string message as text', () => {
      const { logger, entries } = setup();
      logger.log(42);
      logger.log(null);
      expect(entries().map((e) => e.message)).toEqual(['42', 'null']);
    });
  });

  describe('redaction', () => {
    it('should merge an object message into the entry with its billing key redacted', () => {
      const { logger, lines, entries } = setup();
      logger.log({ message: 'billing key registered', billing_key: 'bk_live_SECRET', billing_key_id: 'bk_1' }, 'BillingKeys');
      expect(lines.join('\n')).not.toContain('bk_live_SECRET');
      expect(entries()).toEqual([
        {
          time: T0.toISOString(),
          level: 'info',
          context: 'BillingKeys',
          message: 'billing key registered',
          billing_key: '[REDACTED]',
          billing_key_id: 'bk_1',
        },
      ]);
    });

    it('should redact nested card data in an object message', () => {
      const { logger, lines } = setup();
      logger.warn({ message: 'charge', request: { card_no: '5570123456789012', card: { cardPw: '12' } } });
      expect(lines).toHaveLength(1);
      expect(lines[0]).not.toContain('5570123456789012');
      expect(JSON.parse(lines[0]).request).toEqual({ card_no: '[REDACTED]', card: { cardPw: '[REDACTED]' } });
    });

    it('should redact an extra object argument into detail', () => {
      const { logger, lines, entries } = setup();
      logger.log('bootpay response', { receipt_id: 'r_1', access_token: 'tok_SECRET' }, 'Gateway');
      expect(lines[0]).not.toContain('tok_SECRET');
      expect(entries()).toEqual([
        {
          time: T0.toISOString(),
          level: 'info',
          context: 'Gateway',
          message: 'bootpay response',
          detail: { receipt_id: 'r_1', access_token: '[REDACTED]' },
        },
      ]);
    });

    it('should write a cyclic object message without throwing', () => {
      const { logger, entries } = setup();
      const msg: Record<string, unknown> = { message: 'cyclic' };
      msg.self = msg;
      logger.log(msg);
      expect(entries()).toEqual([{ time: T0.toISOString(), level: 'info', message: 'cyclic', self: '[circular]' }]);
    });
  });

  describe('through pino', () => {
    it("should censor known secret fields with pino's redact paths when pino is called directly", () => {
      const { logger, lines, entries } = setup();
      logger.pino.info({ message: 'raw', card_no: '5570123456789012', request: { billing_key: 'bk_live_SECRET', headers: { authorization: 'Bearer bsk_x' } } });
      expect(lines.join('\n')).not.toMatch(/5570123456789012|bk_live_SECRET|bsk_x/);
      expect(entries()).toEqual([
        {
          time: T0.toISOString(),
          level: 'info',
          message: 'raw',
          card_no: '[REDACTED]',
          request: { billing_key: '[REDACTED]', headers: { authorization: '[REDACTED]' } },
        },
      ]);
    });

    it("should keep a logged object's time and level fields from shadowing the entry's", () => {
      const { logger, entries } = setup();
      logger.warn({ message: 'shadow', time: 'yesterday', level: 'debug' });
      expect(entries()).toEqual([{ time: T0.toISOString(), level: 'warn', message: 'shadow' }]);
    });
  });

  describe('a quiet start', () => {
    it("should write Nest's line per mapped route and per module at debug, not info", () => {
      const quiet = setup('info');
      quiet.logger.log('Mapped {/v1/plans, GET} route', 'RouterExplorer');
      quiet.logger.log('PlansController {/v1/plans}:', 'RoutesResolver');
      quiet.logger.log('AppModule dependencies initialized', 'InstanceLoader');
      quiet.logger.log('Nest application successfully started', 'NestApplication');
      expect(quiet.entries().map((e) => e.message)).toEqual(['Nest application successfully started']);
      const verbose = setup('debug');
      verbose.logger.log('Mapped {/v1/plans, GET} route', 'RouterExplorer');
      expect(verbose.entries()).toEqual([{ time: T0.toISOString(), level: 'debug', context: 'RouterExplorer', message: 'Mapped {/v1/plans, GET} route' }]);
    });
  });

  describe('time', () => {
    it('should come from the injected clock on every call', () => {
      const clock = jest.fn<Date, []>().mockReturnValueOnce(new Date('2025-01-01T00:00:00.000Z')).mockReturnValueOnce(new Date('2025-01-01T00:00:01.500Z'));
      const { logger, entries } = setup('info', clock);
      logger.log('a');
      logger.error('b');
      expect(clock).toHaveBeenCalledTimes(2);
      expect(entries().map((e) => e.time)).toEqual(['2025-01-01T00:00:00.000Z', '2025-01-01T00:00:01.500Z']);
    });

    it('should not read the clock for a filtered-out entry', () => {
      const clock = jest.fn(() => T0);
      const { logger, lines } = setup('warn', clock);
      logger.log('dropped');
      expect(lines).toEqual([]);
      expect(clock).not.toHaveBeenCalled();
    });
  });
});
