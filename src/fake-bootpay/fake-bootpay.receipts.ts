/** The receipt lookup (GET /v2/receipt/:id) and the receipt body a charge, a cancel and a webhook answer with. */
import { FakeHttpError, Json } from './fake-bootpay.http';
import { BillingKeyRec, FakeSite, FakeState, iso, PaymentRec, STATUS_LOCALE } from './fake-bootpay.state';

/** Receipt bodies of payments and of billing key issues, as Bootpay serves them. */
export class FakeReceipts {
  constructor(
    private readonly state: FakeState,
    private readonly fake: FakeSite,
  ) {}

  receiptJson(p: PaymentRec, withUser: boolean): Json {
    const json: Json = {
      receipt_id: p.receiptId,
      order_id: p.orderId,
      price: p.price,
      tax_free: p.taxFree,
      cancelled_price: p.cancelledPrice,
      cancelled_tax_free: p.cancelledTaxFree,
      order_name: p.orderName,
      company_name: 'Fake Bootpay 상점',
      gateway_url: this.fake.url,
      metadata: p.metadata,
      sandbox: true,
      pg: p.pg,
      method: '카드자동',
      method_symbol: 'card_rebill',
      method_origin: '카드자동',
      method_origin_symbol: 'card_rebill',
      currency: 'KRW',
      purchased_at: iso(p.purchasedAt),
      requested_at: p.requestedAt.toISOString(),
      cancelled_at: iso(p.cancelledAt),
      status: p.status,
      status_locale: STATUS_LOCALE[p.status] ?? '',
    };
    if (p.failure) {
      json.error_message = p.failure.message;
      json.pg_error_code = p.failure.pgErrorCode;
      json.error_code_detail = p.failure.errorCode;
    } else {
      json.receipt_url = `${this.fake.url}/__fake/receipts/${p.receiptId}`;
      json.card_data = {
        tid: p.tid,
        card_approve_no: p.approveNo,
        card_no: p.cardNoMasked,
        card_quota: '00',
        card_company: p.cardCompany,
        card_company_code: p.cardCompanyCode,
        card_interest: '0',
        card_type: '신용',
        card_owner_type: '개인',
      };
    }
    if (withUser) json.user = p.user;
    return json;
  }

  private billingReceiptJson(b: BillingKeyRec): Json {
    const status = b.destroyedAt ? -11 : 11;
    return {
      receipt_id: b.receiptId,
      order_id: b.subscriptionId,
      price: 0,
      tax_free: 0,
      cancelled_price: 0,
      cancelled_tax_free: 0,
      order_name: b.orderName,
      company_name: 'Fake Bootpay 상점',
      gateway_url: this.fake.url,
      metadata: b.metadata,
      sandbox: true,
      pg: b.pg,
      method: '카드자동',
      method_symbol: 'card_rebill',
      method_origin: '카드자동',
      method_origin_symbol: 'card_rebill',
      currency: 'KRW',
      requested_at: b.requestedAt.toISOString(),
      status,
      status_locale: STATUS_LOCALE[status],
    };
  }

  receiptLookup(receiptId: string, withUser: boolean): Json {
    const p = this.state.payments.get(receiptId);
    if (p) return this.receiptJson(p, withUser);
    const b = this.state.billingKeysByReceipt.get(receiptId);
    if (b) return this.billingReceiptJson(b);
    throw new FakeHttpError(404, 'RC_NOT_FOUND', '결제 정보를 찾을 수 없습니다');
  }
}
