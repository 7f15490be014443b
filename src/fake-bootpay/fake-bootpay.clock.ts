/** The fake's clock: its time source (FakeBootpayOptions.now, else system time) moved by an offset the tests set. */
import type { FakeBootpayOptions } from './fake-bootpay.types';

export class FakeClock {
  offsetMs = 0;

  constructor(private readonly opts: FakeBootpayOptions) {}

  /** The fake's time: its time source moved by the clock offset. */
  now(): Date {
    const base = this.opts.now ? this.opts.now() : new Date();
    return this.offsetMs === 0 ? base : new Date(base.getTime() + this.offsetMs);
  }

  /** Sets the clock offset and/or moves it by `advanceMs` (PUT /__fake/clock). */
  move(change: { offsetMs?: number; advanceMs?: number }): { now: Date; offsetMs: number } {
    if (change.offsetMs !== undefined) this.offsetMs = change.offsetMs;
    if (change.advanceMs !== undefined) this.offsetMs += change.advanceMs;
    return { now: this.now(), offsetMs: this.offsetMs };
  }

  /** Moves the fake's clock forward (or back, with a negative value) relative to its time source. */
  advance(ms: number): Date {
    this.offsetMs += ms;
    return this.now();
  }
}
