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
    if (errors.length >= 20 || depth > 16) return;
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
