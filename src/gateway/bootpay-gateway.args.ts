/** The checks of call arguments made before anything is sent, and the copy of the user fields Bootpay accepts. */
import { GatewayRequestError } from './gateway.errors';
import type { GatewayOperation, GatewayUser } from './gateway.types';

export function checkAmounts(op: GatewayOperation, price: number, taxFree: number): void {
  if (!Number.isSafeInteger(price) || price <= 0) throw invalidArgument(op, 'price must be a positive integer (KRW)');
  if (!Number.isSafeInteger(taxFree) || taxFree < 0 || taxFree > price) {
    throw invalidArgument(op, 'taxFree must be an integer between 0 and price');
  }
}

export function invalidArgument(op: GatewayOperation, message: string): GatewayRequestError {
  return new GatewayRequestError({ code: 'INVALID_ARGUMENT', operation: op, retryable: false, message: `${op}: ${message} (nothing sent)` });
}

export function nonEmpty(op: GatewayOperation, name: string, value: unknown): void {
  if (typeof value !== 'string' || value.trim() === '') throw invalidArgument(op, `${name} is required`);
}

export function userOf(user: GatewayUser | undefined): GatewayUser {
  if (!user) return {};
  const out: GatewayUser = {};
  if (user.id !== undefined) out.id = user.id;
  if (user.username !== undefined) out.username = user.username;
  if (user.phone !== undefined) out.phone = user.phone;
  if (user.email !== undefined) out.email = user.email;
  return out;
}
