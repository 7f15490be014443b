/**
 * Test cards of the fake Bootpay server.
 *
 * Any well-formed card number (14 to 16 digits) is approved, except the numbers below. Scenario names are also the
 * values accepted by the key-behaviour control (`setKeyBehavior` / `POST /__fake/billing-keys/:receipt_id/behavior`).
 *
 * pg_error_code values are the fake's own (ISO 8583 response codes with an `F0` prefix); real PGs use their own codes.
 */

export type DeclineScenario =
  | 'insufficient_funds'
  | 'limit_exceeded'
  | 'lost_or_stolen'
  | 'expired_card'
  | 'suspended'
  | 'invalid_card_number'
  | 'pg_temporary_error'
  | 'insufficient_funds_from_second_charge';

export interface TestCard {
  scenario: DeclineScenario;
  cardNo: string;
  description: string;
  /** Where the card fails: at billing-key issue (`POST /v2/request/subscribe`) and/or at charge. */
  failsAt: { issue: boolean; charge: boolean };
  /** Bootpay error_code returned at issue, when the card fails at issue. */
  issueErrorCode: string | null;
  /** Bootpay error_code returned at charge (also used when a key is switched to this scenario). */
  chargeErrorCode: string;
  pgErrorCode: string;
  message: string;
  decline: 'hard' | 'soft';
}

export const TEST_CARDS: readonly TestCard[] = Object.freeze([
  {
    scenario: 'insufficient_funds',
    cardNo: '4111110000000051',
    description: 'Issued; every charge declined: insufficient funds',
    failsAt: { issue: false, charge: true },
    issueErrorCode: null,
    chargeErrorCode: 'RC_CONFIRM_FAILED',
    pgErrorCode: 'F051',
    message: '잔액부족',
    decline: 'soft',
  },
  {
    scenario: 'limit_exceeded',
    cardNo: '5111110000000061',
    description: 'Issued; every charge declined: credit limit exceeded',
    failsAt: { issue: false, charge: true },
    issueErrorCode: null,
    chargeErrorCode: 'RC_CONFIRM_FAILED',
    pgErrorCode: 'F061',
    message: '한도초과',
    decline: 'soft',
  },
  {
    scenario: 'lost_or_stolen',
    cardNo: '9411110000000043',
    description: 'Issued; every charge declined: card reported lost or stolen',
    failsAt: { issue: false, charge: true },
    issueErrorCode: null,
    chargeErrorCode: 'RC_CONFIRM_FAILED',
    pgErrorCode: 'F043',
    message: '분실/도난카드',
    decline: 'hard',
  },
  {
    scenario: 'expired_card',
    cardNo: '4111110000000054',
    description:
      'Refused at issue (SUBSCRIBE_PUBLISH_FAILED); a key switched to this scenario, or whose card expiry has passed on the fake clock, is declined at charge',
    failsAt: { issue: true, charge: true },
    issueErrorCode: 'SUBSCRIBE_PUBLISH_FAILED',
    chargeErrorCode: 'RC_CONFIRM_FAILED',
    pgErrorCode: 'F054',
    message: '유효기간이 만료된 카드입니다',
    decline: 'hard',
  },
  {
    scenario: 'suspended',
    cardNo: '371111000000062',
    description: 'Issued; every charge declined: card suspended / transaction not permitted',
    failsAt: { issue: false, charge: true },
    issueErrorCode: null,
    chargeErrorCode: 'RC_CONFIRM_FAILED',
    pgErrorCode: 'F062',
    message: '거래정지카드',
    decline: 'hard',
  },
  {
    scenario: 'invalid_card_number',
    cardNo: '4111110000000014',
    description: 'Refused at issue (SUBSCRIBE_PUBLISH_FAILED): invalid card number',
    failsAt: { issue: true, charge: false },
    issueErrorCode: 'SUBSCRIBE_PUBLISH_FAILED',
    chargeErrorCode: 'RC_CONFIRM_FAILED',
    pgErrorCode: 'F014',
    message: '유효하지 않은 카드번호입니다',
    decline: 'hard',
  },
  {
    scenario: 'pg_temporary_error',
    cardNo: '4111110000000096',
    description: 'Issued; every charge fails with a temporary PG error (RC_REQUEST_FAILED)',
    failsAt: { issue: false, charge: true },
    issueErrorCode: null,
    chargeErrorCode: 'RC_REQUEST_FAILED',
    pgErrorCode: 'F096',
    message: 'PG사 일시적인 오류입니다. 잠시 후 다시 시도해주세요',
    decline: 'soft',
  },
  {
    scenario: 'insufficient_funds_from_second_charge',
    cardNo: '4111110000002051',
    description: 'Issued; the 1st charge is approved, every charge from the 2nd on is declined: insufficient funds',
    failsAt: { issue: false, charge: true },
    issueErrorCode: null,
    chargeErrorCode: 'RC_CONFIRM_FAILED',
    pgErrorCode: 'F051',
    message: '잔액부족',
    decline: 'soft',
  },
] satisfies TestCard[]);

export const TEST_CARD_BY_NUMBER: ReadonlyMap<string, TestCard> = new Map(TEST_CARDS.map((c) => [c.cardNo, c]));
export const TEST_CARD_BY_SCENARIO: ReadonlyMap<DeclineScenario, TestCard> = new Map(TEST_CARDS.map((c) => [c.scenario, c]));

export function isDeclineScenario(value: unknown): value is DeclineScenario {
  return typeof value === 'string' && TEST_CARD_BY_SCENARIO.has(value as DeclineScenario);
}

/** Fake card company codes (two digits); real PGs use their own code tables. */
const CARD_COMPANY_CODES: Readonly<Record<string, string>> = {
  BC: '01',
  KB국민: '02',
  하나: '03',
  삼성: '04',
  신한: '06',
  현대: '07',
  롯데: '08',
};

/** A plausible Korean card company for a card number, from its first digits. */
export function cardCompanyFor(cardNo: string): { name: string; code: string } {
  let name: string;
  if (cardNo.startsWith('35')) name = '롯데';
  else if (cardNo.startsWith('3')) name = '현대';
  else if (cardNo.startsWith('4')) name = '신한';
  else if (cardNo.startsWith('5')) name = 'KB국민';
  else if (cardNo.startsWith('6')) name = '하나';
  else if (cardNo.startsWith('9')) name = 'BC';
  else name = '삼성';
  return { name, code: CARD_COMPANY_CODES[name] };
}

/** `4579730000001234` → `457973******1234` (first 6 and last 4 digits kept). */
export function maskCardNo(cardNo: string): string {
  if (cardNo.length <= 10) return '*'.repeat(cardNo.length);
  return cardNo.slice(0, 6) + '*'.repeat(cardNo.length - 10) + cardNo.slice(-4);
}
