/** Public types of the fake Bootpay server (control API bodies and ledger). snake_case = the JSON served over HTTP. */

export interface FakeBootpayOptions {
  clientKey?: string;
  secretKey?: string;
  applicationId?: string;
  privateKey?: string;
  /** Delay added to every /v2 request before it is handled (default 0). */
  latencyMs?: number;
  /** Global webhook URL, used when a payment/reservation has no feedback_url. */
  webhookUrl?: string;
  /** The fake's clock (token lifetime, reservation due times, card expiry, timestamps). Default: system time. */
  now?: () => Date;
  /** Seed of the PRNGs behind `timeout_after_charge.rate` and `fail_rate` (default 1). */
  seed?: number;
  /** First webhook retry delay; doubles on each retry, capped at `webhookMaxDelayMs` (default 20 ms). */
  webhookBaseDelayMs?: number;
  /** Cap of the webhook retry delay (default 2000 ms). */
  webhookMaxDelayMs?: number;
  /** Retries after the first failed webhook delivery (default 10, so at most 11 attempts). */
  webhookMaxRetries?: number;
  /** Time-out of one webhook delivery attempt (default 5000 ms). */
  webhookTimeoutMs?: number;
}

export interface FakeCredentials {
  clientKey: string;
  secretKey: string;
  applicationId: string;
  privateKey: string;
}

/** Answer the next `count` matching /v2 requests with a non-2xx error JSON, doing nothing else. */
export interface FailNextFault {
  count: number;
  status?: 500 | 502 | 503;
  /** Route filter, e.g. `subscribe/payment`, `DELETE subscribe/payment/reserve`, `cancel`; absent or `*` = every /v2 route. */
  route?: string;
}

/**
 * Answer a share of the matching /v2 requests with a non-2xx error JSON (the shape of fail_next), doing nothing else:
 * Bootpay having a bad moment on some routes, for example its lookups.
 */
export interface FailRateFault {
  /** Probability (0..1) per matching request, drawn from the seeded PRNG (a stream of its own, apart from the time-outs'). */
  rate: number;
  status?: 500 | 502 | 503;
  /** Route filter or filters (as fail_next's), e.g. `['GET receipt', 'GET subscribe/payment/reserve']`; absent or `*` = every /v2 route. */
  route?: string | string[];
}

/** Do the work (the charge is made and recorded) and then give the client no answer. */
export interface TimeoutAfterChargeFault {
  /** Apply to the next `count` matching requests; when absent, `rate` is used. */
  count?: number;
  /** Probability (0..1) per matching request, drawn from the seeded PRNG. */
  rate?: number;
  /** `drop`: destroy the socket at once. `hang`: hold the response `hang_ms`, then destroy the socket. */
  mode?: 'drop' | 'hang';
  hang_ms?: number;
  /** Route filter (default `subscribe/payment`); `subscribe/payment/reserve` and `cancel` are the other useful ones. */
  route?: string;
}

export interface FakeFaults {
  /** Overrides the start-up latency while set. */
  latency_ms?: number;
  fail_next?: FailNextFault | null;
  fail_rate?: FailRateFault | null;
  timeout_after_charge?: TimeoutAfterChargeFault | null;
  /** Re-seeds the PRNGs. */
  seed?: number;
}

export interface LedgerCharge {
  receipt_id: string;
  order_id: string;
  billing_key_suffix: string;
  price: number;
  tax_free: number;
  cancelled_price: number;
  status: number;
  purchased_at: string;
  source: 'charge' | 'reservation';
}

export interface LedgerFailedCharge {
  /** Set for failed reservation executions (they create a failed receipt, status -2); null for direct charges. */
  receipt_id: string | null;
  order_id: string;
  billing_key_suffix: string;
  price: number;
  error_code: string;
  pg_error_code: string | null;
  message: string;
  at: string;
  source: 'charge' | 'reservation';
}

export interface LedgerCancel {
  receipt_id: string;
  cancel_id: string | null;
  cancel_price: number;
  cancel_tax_free: number;
  cancelled_at: string;
}

export interface LedgerReservation {
  reserve_id: string;
  order_id: string;
  status: number;
  price: number;
  reserve_execute_at: string;
  receipt_id?: string;
  revoked_at?: string;
  billing_key_suffix: string;
}

export interface LedgerBillingKey {
  receipt_id: string;
  billing_key_suffix: string;
  card_no_masked: string;
  card_company: string;
  status: 'active' | 'destroyed';
  behavior: string | null;
  published_at: string;
  destroyed_at?: string;
}

export interface LedgerWebhookAttempt {
  at: string;
  status_code: number | null;
  ok: boolean;
  error?: string;
}

export interface LedgerWebhook {
  url: string;
  webhook_type: string;
  receipt_id: string;
  attempts: number;
  delivered: boolean;
  /** True once delivered or given up (after the last retry). */
  done: boolean;
  history: LedgerWebhookAttempt[];
}

export interface FakeLedger {
  charges: LedgerCharge[];
  failed_charges: LedgerFailedCharge[];
  cancels: LedgerCancel[];
  reservations: LedgerReservation[];
  billing_keys: LedgerBillingKey[];
  webhooks: LedgerWebhook[];
}

export interface ReservationExecution {
  reserve_id: string;
  order_id: string;
  /** The receipt created by the execution (status 1 on success, -2 on failure). */
  receipt_id: string;
  result: 'success' | 'failed';
  /** Reservation status after the execution: 3 executed (success) or -3 executed (failed). */
  reservation_status: number;
  error_code?: string;
  pg_error_code?: string | null;
  message?: string;
  executed_at: string;
}
