/**
 * Billing key routes: issue (POST /v2/request/subscribe), look up by receipt or by key, destroy; and the programmatic
 * bulk issue and per-key behaviour used by benchmarks and tests.
 */
import { randomBytes } from 'node:crypto';
import { cardCompanyFor, isDeclineScenario, maskCardNo, TEST_CARD_BY_NUMBER, TEST_CARDS, TestCard } from './test-cards';
import { FakeHttpError, invalid, isObject, Json, reqString, validBirth } from './fake-bootpay.http';
import { BillingKeyRec, FakeSite, FakeState, hexId, STATUS_LOCALE } from './fake-bootpay.state';

const KST_OFFSET_MS = 9 * 3600_000;

/** The billing keys: issued, looked up and destroyed. */
export class FakeBillingKeys {
  constructor(
    private readonly state: FakeState,
    private readonly fake: FakeSite,
  ) {}

  issueBillingKey(body: Json): Json {
    const pg = reqString(body, 'pg');
    const orderName = reqString(body, 'order_name');
    const subscriptionId = reqString(body, 'subscription_id');
    if (body.price !== undefined && body.price !== null && body.price !== 0) {
      throw invalid('fake: 빌링키 발급과 동시 결제(price > 0)는 지원하지 않습니다');
    }
    const publishFailed = (pgCode: string, message: string) => new FakeHttpError(400, 'SUBSCRIBE_PUBLISH_FAILED', message, pgCode);
    const cardNo = typeof body.card_no === 'string' ? body.card_no : '';
    if (!/^\d{14,16}$/.test(cardNo)) throw publishFailed('F014', '유효하지 않은 카드번호입니다');
    if (typeof body.card_pw !== 'string' || !/^\d{2}$/.test(body.card_pw)) {
      throw publishFailed('F055', '카드 비밀번호 앞 2자리를 확인해주세요');
    }
    const year = body.card_expire_year;
    const month = body.card_expire_month;
    if (typeof year !== 'string' || !/^\d{2}$/.test(year)) throw publishFailed('F057', '카드 유효기간(년)을 확인해주세요');
    if (typeof month !== 'string' || !/^(0[1-9]|1[0-2])$/.test(month)) {
      throw new FakeHttpError(400, 'RC_INVALID_EXP_MONTH', '카드 유효기간(월)을 확인해주세요');
    }
    const identity = body.card_identity_no;
    if (typeof identity !== 'string' || !/^(\d{6}|\d{10})$/.test(identity) || (identity.length === 6 && !validBirth(identity))) {
      throw publishFailed('F056', '생년월일(6자리) 또는 사업자번호(10자리)를 확인해주세요');
    }
    const now = this.fake.now();
    // The card is valid through the last day of its expiry month (KST).
    const expireAt = new Date(Date.UTC(2000 + Number(year), Number(month), 1) - KST_OFFSET_MS - 1000);
    if (now.getTime() > expireAt.getTime()) throw publishFailed('F054', '유효기간이 만료된 카드입니다');
    const testCard = TEST_CARD_BY_NUMBER.get(cardNo);
    if (testCard?.failsAt.issue) {
      throw new FakeHttpError(400, testCard.issueErrorCode ?? 'SUBSCRIBE_PUBLISH_FAILED', testCard.message, testCard.pgErrorCode);
    }
    const rec = this.keep(randomBytes(33).toString('base64url'), cardNo, testCard, now, expireAt, {
      subscriptionId,
      orderName,
      pg,
      metadata: isObject(body.metadata) ? body.metadata : {},
      user: isObject(body.user) ? body.user : {},
    });
    return this.billingKeyJson(rec);
  }

  /** Records a newly issued billing key for `cardNo` and indexes it by key and by receipt. */
  private keep(
    billingKey: string,
    cardNo: string,
    testCard: TestCard | undefined,
    now: Date,
    expireAt: Date,
    of: Pick<BillingKeyRec, 'subscriptionId' | 'orderName' | 'pg' | 'metadata' | 'user'>,
  ): BillingKeyRec {
    const company = cardCompanyFor(cardNo);
    const rec: BillingKeyRec = {
      billingKey,
      receiptId: hexId(),
      ...of,
      cardNoMasked: maskCardNo(cardNo),
      cardCompany: company.name,
      cardCompanyCode: company.code,
      cardScenario: testCard?.scenario ?? null,
      behavior: null,
      chargeAttempts: 0,
      activeReservations: 0,
      requestedAt: now,
      publishedAt: now,
      expireAt,
      destroyedAt: null,
    };
    this.state.billingKeys.set(rec.billingKey, rec);
    this.state.billingKeysByReceipt.set(rec.receiptId, rec);
    this.state.billingKeyList.push(rec);
    return rec;
  }

  billingKeyJson(b: BillingKeyRec): Json {
    return {
      billing_key: b.billingKey,
      billing_data: {
        card_no: b.cardNoMasked,
        card_company: b.cardCompany,
        card_company_code: b.cardCompanyCode,
        card_type: 0,
        card_hash: null,
      },
      receipt_id: b.receiptId,
      subscription_id: b.subscriptionId,
      gateway_url: this.fake.url,
      metadata: b.metadata,
      pg: b.pg,
      method: '카드자동',
      method_symbol: 'card_rebill',
      method_origin: '카드자동',
      method_origin_symbol: 'card_rebill',
      published_at: b.publishedAt.toISOString(),
      requested_at: b.requestedAt.toISOString(),
      receipt_data: null,
      billing_expire_at: b.expireAt.toISOString(),
      status: 11,
      status_locale: STATUS_LOCALE[11],
    };
  }

  activeKey(billingKey: string): BillingKeyRec {
    const bk = this.state.billingKeys.get(billingKey);
    if (!bk) throw new FakeHttpError(404, 'RC_NOT_FOUND', '빌링키 정보를 찾을 수 없습니다');
    if (bk.destroyedAt) throw new FakeHttpError(400, 'SUBSCRIBE_BK_EXPIRED', '만료되었거나 삭제된 빌링키입니다');
    return bk;
  }

  activeKeyByReceipt(receiptId: string): BillingKeyRec {
    const bk = this.state.billingKeysByReceipt.get(receiptId);
    if (!bk) {
      if (this.state.payments.has(receiptId)) throw new FakeHttpError(400, 'RC_NOT_SUBSCRIBE', '정기결제 빌링키 발급 건이 아닙니다');
      throw new FakeHttpError(404, 'RC_NOT_FOUND', '결제 정보를 찾을 수 없습니다');
    }
    if (bk.destroyedAt) throw new FakeHttpError(400, 'SUBSCRIBE_BK_EXPIRED', '만료되었거나 삭제된 빌링키입니다');
    return bk;
  }

  destroyBillingKey(billingKey: string): Json {
    const bk = this.activeKey(billingKey);
    bk.destroyedAt = this.fake.now();
    return { billing_key: bk.billingKey };
  }

  /** `decline`: a test-card scenario name, `'approve'` (always approve), or null (back to the card's own behaviour). */
  setKeyBehavior(receiptId: string, decline: string | null): void {
    const bk = this.state.billingKeysByReceipt.get(receiptId);
    if (!bk) throw new Error(`no billing key issued with receipt ${receiptId}`);
    if (decline !== null && decline !== 'approve' && !isDeclineScenario(decline)) {
      throw new Error(`unknown scenario ${decline}; one of ${TEST_CARDS.map((c) => c.scenario).join(', ')}, approve`);
    }
    bk.behavior = decline;
  }

  /**
   * Seeding for benchmarks and soak tests: issues `count` working billing keys at once, as `POST request/subscribe`
   * would one by one (same records, same lookups, same charge behaviour), without an HTTP round trip per key.
   * `cardNo` picks the card (a test card makes the keys behave like it); any well-formed number approves.
   */
  issueBillingKeysBulk(count: number, opts: { cardNo?: string; pg?: string } = {}): Array<{ billing_key: string; receipt_id: string }> {
    if (!Number.isInteger(count) || count < 1 || count > 100_000) throw new Error('count must be an integer from 1 to 100000');
    const cardNo = opts.cardNo ?? '4242424242424242';
    if (!/^\d{14,16}$/.test(cardNo)) throw new Error('card_no must be 14 to 16 digits');
    const testCard = TEST_CARD_BY_NUMBER.get(cardNo);
    if (testCard?.failsAt.issue) throw new Error(`card ${cardNo} is refused at key issue`);
    const now = this.fake.now();
    // Valid through the end of the month three years ahead (KST), like a freshly issued card.
    const expireAt = new Date(Date.UTC(now.getUTCFullYear() + 3, now.getUTCMonth() + 1, 1) - KST_OFFSET_MS - 1000);
    const keyBytes = randomBytes(33 * count);
    const out: Array<{ billing_key: string; receipt_id: string }> = new Array(count);
    for (let i = 0; i < count; i++) {
      const billingKey = keyBytes.subarray(i * 33, (i + 1) * 33).toString('base64url');
      const of = { subscriptionId: `bulk_${i}`, orderName: 'Bulk billing key', pg: opts.pg ?? 'nicepay', metadata: {}, user: {} };
      const rec = this.keep(billingKey, cardNo, testCard, now, expireAt, of);
      out[i] = { billing_key: rec.billingKey, receipt_id: rec.receiptId };
    }
    return out;
  }
}
