/** Types of the Bootpay gateway adapter. Nothing here depends on the SDK or on Nest. */

/** DI token of the {@link GatewayConfig} object. */
export const BOOTPAY_GATEWAY_CONFIG = 'BOOTPAY_GATEWAY_CONFIG';

export type BootpayMode = 'development' | 'stage' | 'production';

export interface GatewayConfig {
  /** Preferred credentials (Basic auth on every request). */
  clientKey?: string;
  secretKey?: string;
  /** Legacy credentials (Bearer token from `POST /v2/request/token`); used only when clientKey/secretKey are absent. */
  applicationId?: string;
  privateKey?: string;
  mode: BootpayMode;
  /** Overrides the SDK entry point of `mode`, e.g. `http://127.0.0.1:7070/v2` for the fake. */
  apiBaseUrl?: string;
  /** Time-out of lookups, token requests and the health ping. */
  timeoutMs: number;
  /** Time-out of the calls that go to the card company: issue, charge, reserve, cancel, destroy, reservation revoke. */
  chargeTimeoutMs: number;
  /** Max sockets of the keep-alive agent (default 64). */
  maxSockets?: number;
}

export interface GatewayUser {
  id?: string;
  username?: string;
  phone?: string;
  email?: string;
}

export type GatewayMetadata = Record<string, unknown>;

export interface IssueBillingKeyParams {
  pg: string;
  cardNo: string;
  /** First 2 digits of the card password. */
  cardPw: string;
  /** YY */
  cardExpireYear: string;
  /** MM */
  cardExpireMonth: string;
  /** Birth date YYMMDD (6 digits) or business registration number (10 digits). */
  cardIdentityNo: string;
  orderName: string;
  subscriptionId: string;
  user?: GatewayUser;
  metadata?: GatewayMetadata;
}

export interface BillingKeyInfo {
  billingKey: string;
  receiptId: string;
  pg: string | null;
  method: string | null;
  cardCompany: string | null;
  cardCompanyCode: string | null;
  /** e.g. `457973******1234` */
  cardNoMasked: string | null;
  cardType: number | null;
  publishedAt: Date | null;
  expiresAt: Date | null;
}

export interface ChargeParams {
  billingKey: string;
  /** Unique per attempt; a re-send of an approved order_id is refused as a duplicate. */
  orderId: string;
  orderName: string;
  /** KRW, integer > 0. */
  price: number;
  /** KRW, integer 0..price. */
  taxFree: number;
  feedbackUrl?: string;
  metadata?: GatewayMetadata;
  user?: GatewayUser;
}

export interface ReserveParams {
  billingKey: string;
  orderId: string;
  orderName: string;
  price: number;
  taxFree: number;
  executeAt: Date;
  feedbackUrl?: string;
  metadata?: GatewayMetadata;
}

export interface ReserveResult {
  reserveId: string;
  executeAt: Date;
}

export interface CancelPaymentParams {
  receiptId: string;
  /** Omitted: cancel everything that remains. */
  cancelPrice?: number;
  cancelTaxFree?: number;
  /** Deterministic id (e.g. the refund id): Bootpay refuses a repeated cancel_id, so a re-send cannot cancel twice. */
  cancelId: string;
  username?: string;
  message?: string;
}

/** Receipt status values (Bootpay's status table). */
export const RECEIPT_STATUS = Object.freeze({
  COMPLETED: 1,
  AWAITING_CONFIRM: 2,
  BILLING_KEY_ISSUED: 11,
  CANCELLED: 20,
  FAILED_MIDWAY: -1,
  APPROVAL_FAILED: -2,
});

export interface GatewayReceipt {
  receiptId: string;
  orderId: string;
  orderName: string | null;
  price: number;
  taxFree: number;
  /** Cumulative. */
  cancelledPrice: number;
  /** Cumulative. */
  cancelledTaxFree: number;
  /** 1 completed (also after a partial cancel), 20 fully cancelled, -2 approval failed, ... */
  status: number;
  statusLocale: string;
  purchasedAt: Date | null;
  requestedAt: Date | null;
  cancelledAt: Date | null;
  cardApproveNo: string | null;
  cardNoMasked: string | null;
  cardCompany: string | null;
  receiptUrl: string | null;
  metadata: GatewayMetadata | null;
}

/**
 * Reservation status numbers. Bootpay does not document them; these are the fake server's (see
 * src/fake-bootpay/README.md): 1 reserved, 2 executing, 3 executed (approved), -3 executed (failed), -1 revoked.
 */
export const RESERVATION_STATUS = Object.freeze({
  RESERVED: 1,
  EXECUTING: 2,
  EXECUTED: 3,
  EXECUTION_FAILED: -3,
  REVOKED: -1,
});

export interface GatewayReservation {
  reserveId: string;
  orderId: string;
  /** Set once executed. */
  receiptId: string | null;
  price: number;
  taxFree: number;
  status: number;
  executeAt: Date | null;
  revokedAt: Date | null;
  finishedAt: Date | null;
}

export interface GatewayPing {
  ok: boolean;
  latencyMs: number;
  /** Error code when not ok (never secrets). */
  error?: string;
}

export type GatewayOperation =
  | 'getAccessToken'
  | 'issueBillingKey'
  | 'lookupBillingKeyByReceipt'
  | 'lookupBillingKey'
  | 'destroyBillingKey'
  | 'charge'
  | 'reserve'
  | 'lookupReservation'
  | 'cancelReservation'
  | 'getReceipt'
  | 'cancelPayment'
  | 'ping';
