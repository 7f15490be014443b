/** The fake's fault settings: their validation and the deterministic randomness of fault rates. */
import type { FailNextFault, FailRateFault, FakeFaults, TimeoutAfterChargeFault } from './fake-bootpay.types';
import { isObject } from './fake-bootpay.http';

/** The fail_rate PRNG's seed, apart from the time-outs' so that turning it on does not change their pattern. */
export const failRateSeed = (seed: number) => (seed ^ 0x5bd1e995) >>> 0;

/** mulberry32: small deterministic PRNG for fault rates. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** The faults a test sets (PUT /__fake/faults or setFaults), checked: an Error names the first bad field. */
export function validateFaults(input: unknown): FakeFaults {
  if (!isObject(input)) throw new Error('faults must be an object');
  const out: FakeFaults = {};
  const nonNegInt = (v: unknown, name: string): number => {
    if (typeof v !== 'number' || !Number.isInteger(v) || v < 0) throw new Error(`${name} must be a non-negative integer`);
    return v;
  };
  if (input.latency_ms !== undefined && input.latency_ms !== null) out.latency_ms = nonNegInt(input.latency_ms, 'latency_ms');
  if (input.seed !== undefined) out.seed = nonNegInt(input.seed, 'seed');
  if (isObject(input.fail_next)) {
    const f = input.fail_next;
    const status = f.status ?? 500;
    if (status !== 500 && status !== 502 && status !== 503) throw new Error('fail_next.status must be 500, 502 or 503');
    if (f.route !== undefined && typeof f.route !== 'string') throw new Error('fail_next.route must be a string');
    const fail: FailNextFault = { count: nonNegInt(f.count ?? 1, 'fail_next.count'), status };
    if (typeof f.route === 'string') fail.route = f.route;
    out.fail_next = fail;
  } else if (input.fail_next !== undefined && input.fail_next !== null) {
    throw new Error('fail_next must be an object');
  }
  if (isObject(input.fail_rate)) {
    const f = input.fail_rate;
    const status = f.status ?? 500;
    if (status !== 500 && status !== 502 && status !== 503) throw new Error('fail_rate.status must be 500, 502 or 503');
    if (typeof f.rate !== 'number' || !(f.rate >= 0 && f.rate <= 1)) throw new Error('fail_rate.rate must be within 0..1');
    const routes = f.route;
    if (routes !== undefined && typeof routes !== 'string' && !(Array.isArray(routes) && routes.length > 0 && routes.every((r) => typeof r === 'string'))) {
      throw new Error('fail_rate.route must be a string or a non-empty list of strings');
    }
    const fault: FailRateFault = { rate: f.rate, status };
    if (routes !== undefined) fault.route = Array.isArray(routes) ? [...(routes as string[])] : (routes as string);
    out.fail_rate = fault;
  } else if (input.fail_rate !== undefined && input.fail_rate !== null) {
    throw new Error('fail_rate must be an object');
  }
  if (isObject(input.timeout_after_charge)) {
    const t = input.timeout_after_charge;
    const mode = t.mode ?? 'drop';
    if (mode !== 'drop' && mode !== 'hang') throw new Error("timeout_after_charge.mode must be 'drop' or 'hang'");
    if (t.route !== undefined && typeof t.route !== 'string') throw new Error('timeout_after_charge.route must be a string');
    const fault: TimeoutAfterChargeFault = { mode };
    if (t.count !== undefined) fault.count = nonNegInt(t.count, 'timeout_after_charge.count');
    if (t.rate !== undefined) {
      if (typeof t.rate !== 'number' || t.rate < 0 || t.rate > 1) throw new Error('timeout_after_charge.rate must be within 0..1');
      fault.rate = t.rate;
    }
    if (fault.count === undefined && fault.rate === undefined) fault.count = 1;
    if (t.hang_ms !== undefined) fault.hang_ms = nonNegInt(t.hang_ms, 'timeout_after_charge.hang_ms');
    if (typeof t.route === 'string') fault.route = t.route;
    out.timeout_after_charge = fault;
  } else if (input.timeout_after_charge !== undefined && input.timeout_after_charge !== null) {
    throw new Error('timeout_after_charge must be an object');
  }
  return out;
}
