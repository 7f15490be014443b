/** The cancel route (POST /v2/cancel): full and partial refunds of an approved payment, at most once per cancel_id. */
import { amount, FakeHttpError, invalid, Json, optString, reqString } from './fake-bootpay.http';
import type { FakeReceipts } from './fake-bootpay.receipts';
import type { FakeWebhooks } from './fake-bootpay.webhooks';
import type { FakeSite, FakeState } from './fake-bootpay.state';

/** Cancels (refunds) of approved payments. */
export class FakeCancels {
  constructor(
    private readonly state: FakeState,
    private readonly fake: FakeSite,
    private readonly receipts: FakeReceipts,
    private readonly webhooks: FakeWebhooks,
  ) {}

  cancel(body: Json): Json {
    const receiptId = reqString(body, 'receipt_id');
    const cancelPrice = amount(body, 'cancel_price', { required: false, min: 1 });
    const cancelTaxFreeIn = amount(body, 'cancel_tax_free', { required: false, min: 0 });
    const cancelId = optString(body, 'cancel_id');
    const p = this.state.payments.get(receiptId);
    if (!p) {
      if (this.state.billingKeysByReceipt.has(receiptId)) throw invalid('빌링키 발급 건은 취소할 수 없습니다. 빌링키 삭제를 이용하세요');
      throw new FakeHttpError(404, 'RC_NOT_FOUND', '결제 정보를 찾을 수 없습니다');
    }
    if (p.failure) throw invalid('승인되지 않은 결제는 취소할 수 없습니다');
    if (cancelId !== null && p.cancelIds.has(cancelId)) {
      throw new FakeHttpError(400, 'RC_CANCEL_ID_DUPLICATED', '이미 처리된 취소 요청(cancel_id)입니다');
    }
    const remaining = p.price - p.cancelledPrice;
    const remainingTaxFree = p.taxFree - p.cancelledTaxFree;
    if (remaining <= 0) throw new FakeHttpError(400, 'RC_ALREADY_CANCELLED', '이미 취소된 결제입니다');
    const price = cancelPrice ?? remaining;
    if (price > remaining) {
      throw new FakeHttpError(400, 'RC_CANCEL_PRICE_EXCEEDED', `취소 가능 금액(${remaining}원)을 초과했습니다`);
    }
    const full = price === remaining;
    const taxFree = cancelTaxFreeIn ?? (full ? remainingTaxFree : 0);
    if (taxFree > price) throw invalid('cancel_tax_free 는 cancel_price 보다 클 수 없습니다');
    if (taxFree > remainingTaxFree) {
      throw new FakeHttpError(400, 'RC_CANCEL_PRICE_EXCEEDED', `취소 가능 면세 금액(${remainingTaxFree}원)을 초과했습니다`);
    }
    const now = this.fake.now();
    p.cancelledPrice += price;
    p.cancelledTaxFree += taxFree;
    p.cancelledAt = now;
    if (cancelId !== null) p.cancelIds.add(cancelId);
    if (full) p.status = 20;
    this.state.cancels.push({ receipt_id: p.receiptId, cancel_id: cancelId, cancel_price: price, cancel_tax_free: taxFree, cancelled_at: now.toISOString() });
    this.webhooks.queueWebhook(p, full ? 'PAYMENT_CANCELLED' : 'PAYMENT_PARTIAL_CANCELLED');
    return this.receipts.receiptJson(p, false);
  }
}
