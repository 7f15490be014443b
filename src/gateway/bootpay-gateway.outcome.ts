/**
 * How a call to Bootpay ended, as the latency histograms label it: the labels, the observer that receives them, and the
 * label of an error.
 */
import {
  GatewayConfigError,
  GatewayDeclinedError,
  GatewayDuplicateError,
  GatewayError,
  GatewayInvalidBillingKeyError,
  GatewayNotFoundError,
  GatewayUnavailableError,
  GatewayUnknownOutcomeError,
} from './gateway.errors';
import type { GatewayOperation } from './gateway.types';

/** How a call to Bootpay ended, as the latency histograms label it. */
export type GatewayCallOutcome = 'ok' | 'declined' | 'unknown' | 'unavailable' | 'duplicate' | 'not_found' | 'refused' | 'config_error' | 'error';
export type GatewayCallObserver = (operation: GatewayOperation, outcome: GatewayCallOutcome, seconds: number) => void;

export function callOutcomeOf(e: unknown): GatewayCallOutcome {
  if (e instanceof GatewayDeclinedError || e instanceof GatewayInvalidBillingKeyError) return 'declined';
  if (e instanceof GatewayUnknownOutcomeError) return 'unknown';
  if (e instanceof GatewayUnavailableError) return 'unavailable';
  if (e instanceof GatewayDuplicateError) return 'duplicate';
  if (e instanceof GatewayNotFoundError) return 'not_found';
  if (e instanceof GatewayConfigError) return 'config_error';
  if (e instanceof GatewayError) return 'refused';
  return 'error';
}
