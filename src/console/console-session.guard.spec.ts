import type { Request } from 'express';
import { readCookie, sameToken, sessionCookie } from './console-session.guard';

describe('console session cookie', () => {
  it('should be httpOnly, SameSite=Strict and limited to /console, and Secure in production only', () => {
    const dev = sessionCookie('tok', false);
    expect(dev).toBe('console_session=tok; Path=/console; HttpOnly; SameSite=Strict; Max-Age=43200');
    expect(sessionCookie('tok', true)).toBe(`${dev}; Secure`);
    expect(sessionCookie('', true, 0)).toContain('Max-Age=0');
  });

  it('should read one cookie among several', () => {
    const req = { headers: { cookie: 'a=1; console_session=abc%2Bdef; b=2' } } as unknown as Request;
    expect(readCookie(req, 'console_session')).toBe('abc+def');
    expect(readCookie(req, 'missing')).toBeUndefined();
    expect(readCookie({ headers: {} } as Request, 'console_session')).toBeUndefined();
  });

  it('should compare CSRF tokens exactly, refusing missing or other values', () => {
    expect(sameToken('abc', 'abc')).toBe(true);
    expect(sameToken('abd', 'abc')).toBe(false);
    expect(sameToken('ab', 'abc')).toBe(false);
    expect(sameToken(undefined, 'abc')).toBe(false);
    expect(sameToken(['abc'], 'abc')).toBe(false);
    expect(sameToken('', '')).toBe(false);
  });
});
