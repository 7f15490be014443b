/**
 * Payment routes: the charge by billing key (POST /v2/subscribe/payment) and confirm (POST /v2/confirm); and the
 * rules a charge shares with a reservation's execution (its fields, the decline that applies, the payment record).
 */
import { TEST_CARD_BY_SCENARIO, TestCard } from './test-cards';
import { amount, FakeHttpError, invalid, Json, optString, reqString } from './fake-bootpay.http';
import type { FakeBillingKeys } from './fake-bootpay.billing-keys';
import type { FakeReceipts } from './fake-bootpay.receipts';
import type { FakeWebhooks } from './fake-bootpay.webhooks';
import { BillingKeyRec, FakeSite, FakeState, hexId, PaymentRec, pooledRandom, suffix } from './fake-bootpay.state';

/** The fields of a charge or a reservation, checked as Bootpay checks them. */
export function chargeFields(body: Json): { billingKey: string; orderName: string; price: number; taxFree: number; orderId: string } {
  const billingKey = reqString(body, 'billing_key');
  const orderName = reqString(body, 'order_name');
  const orderId = reqString(body, 'order_id');
  const price = amount(body, 'price', { required: true, min: 1 }) as number;
  const taxFree = amount(body, 'tax_free', { required: false, min: 0 }) ?? 0;
  if (taxFree > price) throw invalid('tax_free 는 price 보다 클 수 없습니다');
  return { billingKey, orderName, price, taxFree, orderId };
}

/** The decline that applies to this charge attempt, if any. `attempt` is the key's charge attempt count, 1-based. */
export function declineFor(bk: BillingKeyRec, attempt: number, now: Date): TestCard | null {
  if (bk.behavior === 'approve') return null;
  const scenario = bk.behavior ?? bk.cardScenario;
  if (scenario) {
    const card = TEST_CARD_BY_SCENARIO.get(scenario) as TestCard;
    if (scenario === 'insufficient_funds_from_second_charge') return attempt >= 2 ? card : null;
    return card;
  }
  if (now.getTime() > bk.expireAt.getTime()) return TEST_CARD_BY_SCENARIO.get('expired_card') as TestCard;
  return null;
}

/** The record of an approved payment (a failed reservation execution marks it failed). */
export function newPayment(
  bk: BillingKeyRec,
  f: { orderId: string; orderName: string; price: number; taxFree: number },
  extra: {
    metadata: unknown;
    user: unknown;
    feedbackUrl: string | null;
    source: 'charge' | 'reservation';
    now: Date;
  },
): PaymentRec {
  return {
    receiptId: hexId(),
    orderId: f.orderId,
    orderName: f.orderName,
    price: f.price,
    taxFree: f.taxFree,
    cancelledPrice: 0,
    cancelledTaxFree: 0,
    status: 1,
    pg: bk.pg,
    requestedAt: extra.now,
    purchasedAt: extra.now,
    cancelledAt: null,
    metadata: extra.metadata ?? {},
    user: extra.user ?? {},
    feedbackUrl: extra.feedbackUrl,
    bkSuffix: suffix(bk.billingKey),
    cardNoMasked: bk.cardNoMasked,
    cardCompany: bk.cardCompany,
    cardCompanyCode: bk.cardCompanyCode,
    tid: `fake${pooledRandom(10).toString('hex')}`,
    approveNo: String(pooledRandom(4).readUInt32BE(0) % 100_000_000).padStart(8, '0'),
    source: extra.source,
    failure: null,
    cancelIds: new Set(),
  };
}

/** Charges by billing key, and the confirm route (never ready: charges by billing key are approved at once). */
export class FakePayments {
  constructor(
    private readonly state: FakeState,
    private readonly fake: FakeSite,
    private readonly keys: FakeBillingKeys,
    private readonly receipts: FakeReceipts,
    private readonly webhooks: FakeWebhooks,
  ) {}

  charge(body: Json): Json {
    const f = chargeFields(body);
    const feedbackUrl = optString(body, 'feedback_url');
    this.state.duplicateOrder(f.orderId, false);
    const bk = this.keys.activeKey(f.billingKey);
    const now = this.fake.now();
    bk.chargeAttempts += 1;
    const decline = declineFor(bk, bk.chargeAttempts, now);
    if (decline) {
      this.state.failedCharges.push({
        receipt_id: null,
        order_id: f.orderId,
        billing_key_suffix: suffix(bk.billingKey),
        price: f.price,
        error_code: decline.chargeErrorCode,
        pg_error_code: decline.pgErrorCode,
        message: decline.message,
        at: now.toISOString(),
        source: 'charge',
      });
      throw new FakeHttpError(400, decline.chargeErrorCode, decline.message, decline.pgErrorCode);
    }
    const p = newPayment(bk, f, { metadata: body.metadata, user: body.user, feedbackUrl, source: 'charge', now });
    this.state.recordPayment(p);
    this.webhooks.queueWebhook(p, 'PAYMENT_COMPLETED');
    return this.receipts.receiptJson(p, false);
  }

  confirm(body: Json): Json {
    const receiptId = reqString(body, 'receipt_id');
    if (!this.state.payments.has(receiptId) && !this.state.billingKeysByReceipt.has(receiptId)) {
      throw new FakeHttpError(404, 'RC_NOT_FOUND', '결제 정보를 찾을 수 없습니다');
    }
    throw new FakeHttpError(400, 'RC_NOT_CONFIRM_READY', '승인 대기 상태의 결제가 아닙니다');
  }
}
