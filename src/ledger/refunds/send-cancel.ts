import { Injectable, Logger } from '@nestjs/common';
import { BootpayGateway } from '../../gateway/bootpay.gateway';
import {
  GatewayAlreadyCancelledError,
  GatewayConfigError,
  GatewayDeclinedError,
  GatewayDuplicateError,
  GatewayError,
  GatewayInvalidBillingKeyError,
  GatewayNotFoundError,
  GatewayRequestError,
  GatewayUnavailableError,
  GatewayUnknownOutcomeError,
} from '../../gateway/gateway.errors';
import type { GatewayReceipt } from '../../gateway/gateway.types';
import { RefundEntity } from '../refund.entity';
import { REFUNDS_LOG_CONTEXT } from './refund-shared';

export interface RefundFailure {
  code: string;
  pg_code: string | null;
  message: string;
}

/**
 * What Bootpay said about one cancel request.
 * - succeeded: cancelled (its receipt, with Bootpay's cumulative figures), or refused as a duplicate cancel_id (the
 *   same cancel went through before) and the receipt fetched;
 * - unknown: sent, no usable answer;
 * - not_sent: Bootpay never processed it (unreachable before sending, credentials, the gateway's own checks);
 * - refused: Bootpay processed and refused the cancel itself (`gatewaySide`: for reasons of ours or Bootpay's,
 *   not of the refund).
 */
export type CancelOutcome =
  | { kind: 'succeeded'; receipt: GatewayReceipt; duplicate: boolean }
  | { kind: 'unknown'; reason: string }
  | { kind: 'not_sent'; failure: RefundFailure; unavailable: boolean }
  | { kind: 'refused'; failure: RefundFailure; gatewaySide: boolean };

/** Sends a refund's cancel to Bootpay, for its first send and for every re-send of resolveUnknown. */
@Injectable()
export class RefundCancelSender {
  private readonly logger = new Logger(REFUNDS_LOG_CONTEXT);

  constructor(private readonly gateway: BootpayGateway) {}

  /** Sends the refund's cancel (always the same cancel_id and amounts) and classifies Bootpay's answer. */
  async send(refund: RefundEntity, receiptId: string): Promise<CancelOutcome> {
    try {
      const receipt = await this.gateway.cancelPayment({
        receiptId,
        cancelPrice: refund.amount,
        cancelTaxFree: refund.taxFreeAmount,
        cancelId: refund.cancelId,
        username: refund.requestedByName,
        message: refund.reason,
      });
      return { kind: 'succeeded', receipt, duplicate: false };
    } catch (err) {
      if (err instanceof GatewayDuplicateError) {
        // This cancel_id was processed before: the refund went through. Bootpay's receipt has the figures.
        try {
          return { kind: 'succeeded', receipt: await this.gateway.getReceipt(receiptId), duplicate: true };
        } catch {
          return { kind: 'unknown', reason: 'cancel_id already processed; the receipt could not be fetched' };
        }
      }
      if (err instanceof GatewayUnknownOutcomeError) return { kind: 'unknown', reason: err.reason };
      if (err instanceof GatewayUnavailableError) return { kind: 'not_sent', failure: failureOf(err), unavailable: true };
      if (err instanceof GatewayConfigError) return { kind: 'not_sent', failure: failureOf(err), unavailable: false };
      if (err instanceof GatewayError) {
        if (err.code === 'INVALID_ARGUMENT') return { kind: 'not_sent', failure: failureOf(err), unavailable: false };
        const refusalOfTheCancel =
          err instanceof GatewayAlreadyCancelledError ||
          err instanceof GatewayDeclinedError ||
          err instanceof GatewayNotFoundError ||
          err instanceof GatewayInvalidBillingKeyError ||
          (err instanceof GatewayRequestError && err.code !== 'RC_CANCEL_SERVER_ERROR');
        return { kind: 'refused', failure: failureOf(err), gatewaySide: !refusalOfTheCancel };
      }
      // Anything unexpected once the request may have left: unknown, never a refusal.
      this.logger.error({ message: 'unexpected error while refunding', refund_id: refund.id, error_name: err instanceof Error ? err.name : typeof err });
      return { kind: 'unknown', reason: 'unexpected_error' };
    }
  }
}

function failureOf(err: GatewayError): RefundFailure {
  return { code: String(err.code).slice(0, 64), pg_code: err.pgCode ? String(err.pgCode) : null, message: err.message };
}
