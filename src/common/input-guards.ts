import { FieldError } from './errors';

/** Names that class-validator's whitelist would take for declared fields (they exist on every object). */
const PROTOTYPE_NAMES = new Set([...Object.getOwnPropertyNames(Object.prototype), '__proto__', 'prototype']);

/**
 * Checks what no DTO can: unknown fields named like Object.prototype members (`toString`, `__proto__`, …), which the
 * whitelist would let through, and NUL characters anywhere (PostgreSQL cannot store them). Returns field errors.
 */
export function inspectInput(value: unknown, where: string, topLevelKeysAreFields = true): FieldError[] {
  const errors: FieldError[] = [];
  const walk = (v: unknown, path: string, depth: number, isTop: boolean) => {
    if (errors.length >= 20 || depth > MAX_JSON_DEPTH) return;
    if (typeof v === 'string') {
      if (v.includes('\u0000')) errors.push({ field: path || where, message: `${path || where} must not contain NUL characters` });
      return;
    }
    if (v === null || typeof v !== 'object') return;
    if (Array.isArray(v)) {
      v.forEach((x, i) => walk(x, `${path}[${i}]`, depth + 1, false));
      return;
    }
    for (const key of Object.keys(v)) {
      const field = path ? `${path}.${key}` : key;
      if (key.includes('\u0000')) errors.push({ field: where, message: `${where} has a field name with a NUL character` });
      else if (isTop && topLevelKeysAreFields && PROTOTYPE_NAMES.has(key)) errors.push({ field, message: `${field} is not a known field` });
      walk((v as Record<string, unknown>)[key], field, depth + 1, false);
    }
  };
  walk(value, '', 0, true);
  return errors;
}

/** Deepest nesting of objects and arrays a request body may have; every DTO needs far less. */
export const MAX_JSON_DEPTH = 32;

/**
 * Whether a parsed JSON value nests objects and arrays deeper than `limit` (a bare object is depth 1). Iterative, so
 * a body nested thousands deep is measured without recursion, and it stops as soon as the limit is passed.
 */
export function nestedDeeperThan(value: unknown, limit = MAX_JSON_DEPTH): boolean {
  const stack: [unknown, number][] = [[value, 0]];
  while (stack.length) {
    const [v, depth] = stack.pop()!;
    if (v === null || typeof v !== 'object') continue;
    if (depth + 1 > limit) return true;
    for (const child of Array.isArray(v) ? v : Object.values(v as Record<string, unknown>)) {
      if (child !== null && typeof child === 'object') stack.push([child, depth + 1]);
    }
  }
  return false;
}
