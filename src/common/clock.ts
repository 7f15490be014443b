/**
 * The service's only source of time. Every time-based decision goes through an injected Clock so that
 * tests and the non-production test-clock endpoint can move it.
 */
export abstract class Clock {
  abstract now(): Date;
}

/**
 * The instants the service can be run at: billing periods, trials, retries and reservations reach up to about a
 * hundred years past "now", and the billing math and PostgreSQL stop at year 9999. The test clock cannot be set
 * outside this range, and business days outside it are not reported on.
 */
export const EARLIEST_SUPPORTED_INSTANT = new Date('1970-01-01T00:00:00.000Z');
export const LATEST_SUPPORTED_INSTANT = new Date('8999-12-31T23:59:59.999Z');

export function isSupportedInstant(d: Date): boolean {
  const ms = d.getTime();
  return !Number.isNaN(ms) && ms >= EARLIEST_SUPPORTED_INSTANT.getTime() && ms <= LATEST_SUPPORTED_INSTANT.getTime();
}

export class SystemClock extends Clock {
  now(): Date {
    return new Date();
  }
}

/**
 * A clock that can be set. Once set it is frozen at that instant until set or advanced again;
 * before it is set it follows the system clock.
 */
export class TestClock extends Clock {
  private fixed: number | null = null;

  now(): Date {
    return new Date(this.fixed ?? Date.now());
  }

  set(now: Date): void {
    if (!isSupportedInstant(now)) throw new RangeError(`The clock cannot be set to ${String(now)}`);
    this.fixed = now.getTime();
  }

  advance(ms: number): void {
    this.set(new Date((this.fixed ?? Date.now()) + ms));
  }

  isFrozen(): boolean {
    return this.fixed !== null;
  }

  reset(): void {
    this.fixed = null;
  }
}
