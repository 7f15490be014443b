/**
 * The Bootpay gateway, framework-free. `bootpay.gateway.ts` wraps it in a Nest injectable; this folder is the only
 * place in the project that imports `@bootpay/backend-js` (bootpay-gateway.session.ts does).
 *
 * - One isolated SDK instance per gateway (the package's default export is a process-wide singleton).
 * - Per-call time-outs through an AsyncLocalStorage context read by an axios request interceptor (the SDK's axios
 *   instance is shared by concurrent calls, so its defaults are never mutated per call). Each call also gets a hard
 *   deadline (AbortSignal), since axios' `timeout` is a socket idle time-out.
 * - Legacy application_id/private_key: one token, renewed (single-flight) once 25 minutes have passed on the injected
 *   Clock; on TOKEN_KEY_INVALID renewed once, and only idempotent calls (lookups) are retried.
 * - Every failure becomes a typed GatewayError (gateway.errors.ts). Nothing logged or thrown carries a billing key,
 *   card data, a token or a request body.
 *
 * This file holds the operations (billing keys, payments, reservations, health); the SDK instance, time-outs, token
 * and error mapping are in bootpay-gateway.session.ts, the reading of answers in bootpay-gateway.parse.ts, the
 * argument checks in bootpay-gateway.args.ts and the call outcomes in bootpay-gateway.outcome.ts.
 */
import { performance } from 'node:perf_hooks';
import { GatewayDeclinedError, GatewayError, GatewayInvalidBillingKeyError, GatewayUnknownOutcomeError, isDeclineHard } from './gateway.errors';
import type {
  BillingKeyInfo,
  CancelPaymentParams,
  ChargeParams,
  GatewayOperation,
  GatewayPing,
  GatewayReceipt,
  GatewayReservation,
  IssueBillingKeyParams,
  ReserveParams,
  ReserveResult,
} from './gateway.types';
import { checkAmounts, invalidArgument, nonEmpty, userOf } from './bootpay-gateway.args';
import { date, MalformedResponse, parseBillingKey, parseReceipt, parseReservation, reqStr, str } from './bootpay-gateway.parse';
import { BootpaySession, CallSpec } from './bootpay-gateway.session';

export { parseBillingKey, parseReceipt, parseReservation } from './bootpay-gateway.parse';
export { callOutcomeOf } from './bootpay-gateway.outcome';
export type { GatewayCallObserver, GatewayCallOutcome } from './bootpay-gateway.outcome';
export type { GatewayLogger } from './bootpay-gateway.session';

/** A receipt id that cannot exist: the health ping looks it up and expects RC_NOT_FOUND. */
const PING_RECEIPT_ID = '000000000000000000000000';

/** The gateway's operations, each one call to Bootpay sent through {@link BootpaySession}. */
export class BootpayGatewayCore extends BootpaySession {
  // ------------------------------------------------------------------------------------------------- billing keys

  async issueBillingKey(p: IssueBillingKeyParams): Promise<BillingKeyInfo> {
    const op: GatewayOperation = 'issueBillingKey';
    nonEmpty(op, 'pg', p.pg);
    nonEmpty(op, 'orderName', p.orderName);
    nonEmpty(op, 'subscriptionId', p.subscriptionId);
    return this.call(
      { operation: op, stateChanging: true, idempotent: false, secrets: [p.cardNo, p.cardPw, p.cardIdentityNo] },
      this.config.chargeTimeoutMs,
      () =>
        this.sdk.requestSubscribeBillingKey({
          pg: p.pg,
          order_name: p.orderName,
          subscription_id: p.subscriptionId,
          card_no: p.cardNo,
          card_pw: p.cardPw,
          card_expire_year: p.cardExpireYear,
          card_expire_month: p.cardExpireMonth,
          card_identity_no: p.cardIdentityNo,
          extra: { subscribe_test_payment: false },
          user: userOf(p.user),
          ...(p.metadata ? { metadata: p.metadata } : {}),
        }),
      parseBillingKey,
    );
  }

  async lookupBillingKeyByReceipt(receiptId: string): Promise<BillingKeyInfo> {
    const op: GatewayOperation = 'lookupBillingKeyByReceipt';
    nonEmpty(op, 'receiptId', receiptId);
    return this.call(
      { operation: op, stateChanging: false, idempotent: true, secrets: [] },
      this.config.timeoutMs,
      () => this.sdk.lookupSubscribeBillingKey(encodeURIComponent(receiptId)),
      parseBillingKey,
    );
  }

  async lookupBillingKey(billingKey: string): Promise<BillingKeyInfo> {
    const op: GatewayOperation = 'lookupBillingKey';
    nonEmpty(op, 'billingKey', billingKey);
    return this.call(
      { operation: op, stateChanging: false, idempotent: true, billingKeyCall: true, secrets: [billingKey] },
      this.config.timeoutMs,
      () => this.sdk.lookupBillingKey(encodeURIComponent(billingKey)),
      parseBillingKey,
    );
  }

  /** Destroying a key does NOT revoke its reservations: revoke them first. A key already gone counts as success. */
  async destroyBillingKey(billingKey: string): Promise<{ alreadyDestroyed: boolean }> {
    const op: GatewayOperation = 'destroyBillingKey';
    nonEmpty(op, 'billingKey', billingKey);
    try {
      return await this.call(
        { operation: op, stateChanging: true, idempotent: false, billingKeyCall: true, secrets: [billingKey] },
        this.config.chargeTimeoutMs,
        () => this.sdk.destroyBillingKey(encodeURIComponent(billingKey)),
        () => ({ alreadyDestroyed: false }),
      );
    } catch (e) {
      if (e instanceof GatewayInvalidBillingKeyError && e.code === 'SUBSCRIBE_BK_EXPIRED') return { alreadyDestroyed: true };
      throw e;
    }
  }

  // ------------------------------------------------------------------------------------------------- payments

  /** One attempt, never retried here. On GatewayUnknownOutcomeError re-send only with the SAME orderId. */
  async charge(p: ChargeParams): Promise<GatewayReceipt> {
    const op: GatewayOperation = 'charge';
    nonEmpty(op, 'billingKey', p.billingKey);
    nonEmpty(op, 'orderId', p.orderId);
    nonEmpty(op, 'orderName', p.orderName);
    checkAmounts(op, p.price, p.taxFree);
    const spec: CallSpec = { operation: op, stateChanging: true, idempotent: false, billingKeyCall: true, secrets: [p.billingKey] };
    return this.call(
      spec,
      this.config.chargeTimeoutMs,
      () =>
        this.sdk.requestSubscribePayment({
          billing_key: p.billingKey,
          order_id: p.orderId,
          order_name: p.orderName,
          price: p.price,
          tax_free: p.taxFree,
          ...(p.feedbackUrl ? { feedback_url: p.feedbackUrl, content_type: 'application/json' } : {}),
          ...(p.metadata ? { metadata: p.metadata } : {}),
          ...(p.user ? { user: userOf(p.user) } : {}),
        }),
      (body) => {
        const receipt = parseReceipt(body);
        if (receipt.orderId !== p.orderId || receipt.price !== p.price) {
          throw new GatewayUnknownOutcomeError({
            code: 'UNEXPECTED_RESPONSE',
            operation: op,
            reason: 'unexpected_response',
            message: `charge order_id=${p.orderId}: the answer is for another order or amount`,
          });
        }
        if (receipt.status === 1) return receipt;
        if (receipt.status === -1 || receipt.status === -2) {
          const code = str(body, 'error_code') ?? 'RC_CONFIRM_FAILED';
          const pgCode = str(body, 'pg_error_code') ?? undefined;
          const message = str(body, 'error_message') ?? str(body, 'message') ?? '';
          throw new GatewayDeclinedError({
            code,
            operation: op,
            ...(pgCode ? { pgCode } : {}),
            hard: isDeclineHard(code, pgCode, message),
            message: `charge failed: ${code}${pgCode ? ` (pg ${pgCode})` : ''}`,
          });
        }
        throw new GatewayUnknownOutcomeError({
          code: 'UNEXPECTED_STATUS',
          operation: op,
          reason: 'unexpected_response',
          message: `charge order_id=${p.orderId}: receipt status ${receipt.status}`,
        });
      },
    );
  }

  async getReceipt(receiptId: string): Promise<GatewayReceipt> {
    const op: GatewayOperation = 'getReceipt';
    nonEmpty(op, 'receiptId', receiptId);
    return this.call(
      { operation: op, stateChanging: false, idempotent: true, secrets: [] },
      this.config.timeoutMs,
      () => this.sdk.receiptPayment(encodeURIComponent(receiptId), false),
      parseReceipt,
    );
  }

  /** Full cancel when cancelPrice is omitted. A repeated cancelId is refused (GatewayDuplicateError), never applied twice. */
  async cancelPayment(p: CancelPaymentParams): Promise<GatewayReceipt> {
    const op: GatewayOperation = 'cancelPayment';
    nonEmpty(op, 'receiptId', p.receiptId);
    nonEmpty(op, 'cancelId', p.cancelId);
    if (p.cancelPrice !== undefined && (!Number.isSafeInteger(p.cancelPrice) || p.cancelPrice <= 0)) {
      throw invalidArgument(op, 'cancelPrice must be a positive integer');
    }
    if (p.cancelTaxFree !== undefined && (!Number.isSafeInteger(p.cancelTaxFree) || p.cancelTaxFree < 0)) {
      throw invalidArgument(op, 'cancelTaxFree must be a non-negative integer');
    }
    return this.call(
      { operation: op, stateChanging: true, idempotent: false, secrets: [] },
      this.config.chargeTimeoutMs,
      () =>
        this.sdk.cancelPayment({
          receipt_id: p.receiptId,
          cancel_id: p.cancelId,
          ...(p.cancelPrice !== undefined ? { cancel_price: p.cancelPrice } : {}),
          ...(p.cancelTaxFree !== undefined ? { cancel_tax_free: p.cancelTaxFree } : {}),
          ...(p.username !== undefined ? { cancel_username: p.username } : {}),
          ...(p.message !== undefined ? { cancel_message: p.message } : {}),
        }),
      (body) => {
        const receipt = parseReceipt(body);
        if (receipt.receiptId !== p.receiptId) throw new MalformedResponse('answer is for another receipt');
        return receipt;
      },
    );
  }

  // ------------------------------------------------------------------------------------------------- reservations

  async reserve(p: ReserveParams): Promise<ReserveResult> {
    const op: GatewayOperation = 'reserve';
    nonEmpty(op, 'billingKey', p.billingKey);
    nonEmpty(op, 'orderId', p.orderId);
    nonEmpty(op, 'orderName', p.orderName);
    checkAmounts(op, p.price, p.taxFree);
    if (!(p.executeAt instanceof Date) || Number.isNaN(p.executeAt.getTime())) throw invalidArgument(op, 'executeAt must be a valid Date');
    return this.call(
      { operation: op, stateChanging: true, idempotent: false, billingKeyCall: true, secrets: [p.billingKey] },
      this.config.chargeTimeoutMs,
      () =>
        this.sdk.subscribePaymentReserve({
          billing_key: p.billingKey,
          order_id: p.orderId,
          order_name: p.orderName,
          price: p.price,
          tax_free: p.taxFree,
          reserve_execute_at: p.executeAt,
          ...(p.feedbackUrl ? { feedback_url: p.feedbackUrl, content_type: 'application/json' as const } : {}),
          ...(p.metadata ? { metadata: p.metadata } : {}),
        }),
      (body) => ({ reserveId: reqStr(body, 'reserve_id'), executeAt: date(body, 'reserve_execute_at') ?? p.executeAt }),
    );
  }

  async lookupReservation(reserveId: string): Promise<GatewayReservation> {
    const op: GatewayOperation = 'lookupReservation';
    nonEmpty(op, 'reserveId', reserveId);
    return this.call(
      { operation: op, stateChanging: false, idempotent: true, secrets: [] },
      this.config.timeoutMs,
      () => this.sdk.subscribePaymentReserveLookup(encodeURIComponent(reserveId)),
      parseReservation,
    );
  }

  /**
   * Revokes a pending reservation. Already executed/revoked → GatewayReservationAlreadyDoneError; key destroyed →
   * GatewayInvalidBillingKeyError (Bootpay then refuses to revoke: the reservation will fail when it executes).
   */
  async cancelReservation(reserveId: string): Promise<void> {
    const op: GatewayOperation = 'cancelReservation';
    nonEmpty(op, 'reserveId', reserveId);
    await this.call(
      { operation: op, stateChanging: true, idempotent: false, secrets: [] },
      this.config.chargeTimeoutMs,
      () => this.sdk.cancelSubscribeReserve(encodeURIComponent(reserveId)),
      (body) => {
        if (body.success !== true) throw new MalformedResponse('revoke not confirmed');
      },
    );
  }

  // ------------------------------------------------------------------------------------------------- health

  /** Looks up a receipt that cannot exist: RC_NOT_FOUND proves reachability and valid credentials. */
  async ping(): Promise<GatewayPing> {
    const started = performance.now();
    const latency = (): number => Math.round(performance.now() - started);
    try {
      await this.call(
        { operation: 'ping', stateChanging: false, idempotent: true, secrets: [] },
        this.config.timeoutMs,
        () => this.sdk.receiptPayment(PING_RECEIPT_ID, false),
        () => undefined,
      );
      return { ok: true, latencyMs: latency() };
    } catch (e) {
      const code = e instanceof GatewayError ? e.code : 'UNKNOWN';
      if (code === 'RC_NOT_FOUND') return { ok: true, latencyMs: latency() };
      return { ok: false, latencyMs: latency(), error: code };
    }
  }
}
