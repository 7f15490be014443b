import {
  GatewayConfigError,
  GatewayDeclinedError,
  GatewayError,
  GatewayInvalidBillingKeyError,
  GatewayNotFoundError,
  GatewayUnavailableError,
  GatewayUnknownOutcomeError,
} from './gateway.errors';
import { DomainError } from '../common/errors';

/** The failure as the API shows it (payments, 402 bodies, webhooks). */
export interface FailureView {
  code: string;
  pg_code: string | null;
  message: string;
  hard: boolean;
}

export function failureOf(err: GatewayError): FailureView {
  return {
    code: String(err.code),
    pg_code: err.pgCode === undefined || err.pgCode === null ? null : String(err.pgCode),
    message: err.message,
    hard: err instanceof GatewayDeclinedError ? err.hard : err instanceof GatewayInvalidBillingKeyError,
  };
}

/**
 * Maps a gateway failure met while serving an API request to the API's error. What the caller sent wrong is a
 * 4xx naming the field; a decline is 402 with the PG's reason; Bootpay being unreachable is 503; a request Bootpay
 * refused for reasons of ours is 502. Non-gateway errors pass through unchanged.
 */
export function toDomainError(err: unknown, opts: { receiptField?: string } = {}): unknown {
  if (!(err instanceof GatewayError)) return err;
  if (err instanceof GatewayDeclinedError) {
    return new DomainError('payment_failed', 'card_declined', `The card was declined: ${err.message}`, [], { failure: failureOf(err) });
  }
  if (
    opts.receiptField &&
    (err instanceof GatewayNotFoundError || err instanceof GatewayInvalidBillingKeyError || /NOT_SUBSCRIBE|NOT_FOUND/.test(String(err.code)))
  ) {
    return new DomainError('unprocessable', 'billing_key_not_found', 'Bootpay has no live billing key for this receipt_id', [
      { field: opts.receiptField, message: 'Bootpay has no live billing key for this receipt_id' },
    ]);
  }
  if (err instanceof GatewayInvalidBillingKeyError) {
    return new DomainError('unprocessable', 'billing_key_invalid', 'Bootpay no longer accepts this billing key', [], { failure: failureOf(err) });
  }
  if (err instanceof GatewayUnavailableError || err instanceof GatewayUnknownOutcomeError) {
    return new DomainError('gateway_unavailable', 'gateway_unavailable', 'Bootpay did not answer; try again shortly');
  }
  if (err instanceof GatewayConfigError) {
    return new DomainError('gateway_error', 'gateway_misconfigured', 'The service could not authenticate with Bootpay');
  }
  return new DomainError('gateway_error', 'gateway_rejected', `Bootpay refused the request (${String(err.code)})`);
}
