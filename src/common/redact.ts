/** Keys whose values never reach a log line, at any depth. */
const SENSITIVE_KEY =
  /(billing_?key(?!_?id)|card_?no|card_?number|card_?pw|card_?identity|cvc|cvv|password|secret|private_?key|client_?key|token|authorization|api_?key(?!_?id)|encryption|ciphertext|cookie)/i;

export const REDACTED = '[REDACTED]';

export function isSensitiveKey(key: string): boolean {
  return SENSITIVE_KEY.test(key);
}

/** A deep copy of `value` with every sensitive field replaced. Cycles and depth are bounded. */
export function redact(value: unknown, depth = 0, seen = new WeakSet<object>()): unknown {
  if (value === null || typeof value !== 'object') return value;
  if (depth > 8) return '[…]';
  if (value instanceof Date) return value.toISOString();
  if (seen.has(value)) return '[circular]';
  // `seen` holds only the ancestors of the value being copied: an object met twice side by side is copied twice.
  seen.add(value);
  try {
    return copy(value, depth, seen);
  } finally {
    seen.delete(value);
  }
}

function copy(value: object, depth: number, seen: WeakSet<object>): unknown {
  if (value instanceof Error) {
    return { name: value.name, message: value.message, ...(redact({ ...value }, depth + 1, seen) as object) };
  }
  if (Array.isArray(value)) return value.map((v) => redact(v, depth + 1, seen));
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) {
    out[k] = isSensitiveKey(k) ? REDACTED : redact(v, depth + 1, seen);
  }
  return out;
}
