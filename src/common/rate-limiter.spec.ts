import { RateLimiter } from './rate-limiter';

describe(RateLimiter.name, () => {
  it('should allow a burst of perMinute calls per key, then refuse with the seconds to wait', () => {
    let now = 1_000_000;
    const sut = new RateLimiter(3, () => now);
    expect([sut.take('a'), sut.take('a'), sut.take('a')]).toEqual([0, 0, 0]);
    expect(sut.take('a')).toBe(20);
    expect(sut.take('b')).toBe(0);
    now += 20_000;
    expect(sut.take('a')).toBe(0);
    expect(sut.take('a')).toBeGreaterThan(0);
  });

  it('should allow everything when the limit is 0 (off)', () => {
    const sut = new RateLimiter(0);
    for (let i = 0; i < 100; i++) expect(sut.take('a')).toBe(0);
  });
});
