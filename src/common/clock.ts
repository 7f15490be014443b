/**
 * The service's only source of time. Every time-based decision goes through an injected Clock so that
 * tests and the non-production test-clock endpoint can move it.
 */
export abstract class Clock {
  abstract now(): Date;
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
    this.fixed = now.getTime();
  }

  advance(ms: number): void {
    this.fixed = (this.fixed ?? Date.now()) + ms;
  }

  isFrozen(): boolean {
    return this.fixed !== null;
  }

  reset(): void {
    this.fixed = null;
  }
}
