import {
  ErrorContext,
  GatewayAlreadyCancelledError,
  GatewayConfigError,
  GatewayDeclinedError,
  GatewayDuplicateError,
  GatewayInvalidBillingKeyError,
  GatewayNotFoundError,
  GatewayRequestError,
  GatewayReservationAlreadyDoneError,
  GatewayReservationLimitError,
  GatewayUnavailableError,
  GatewayUnknownOutcomeError,
  redactSecrets,
  toGatewayError,
} from './gateway.errors';

const charge: ErrorContext = { operation: 'charge', stateChanging: true, billingKeyCall: true };
const lookup: ErrorContext = { operation: 'getReceipt', stateChanging: false };

describe(toGatewayError.name, () => {
  it('should treat a bare string (non-JSON body) as unknown outcome for a charge and unavailable for a read', () => {
    expect(toGatewayError('<html>502 Bad Gateway</html>', charge)).toBeInstanceOf(GatewayUnknownOutcomeError);
    const read = toGatewayError('boom', lookup);
    expect(read).toBeInstanceOf(GatewayUnavailableError);
    expect(read.retryable).toBe(true);
  });

  it.each([
    ['connect ECONNREFUSED 127.0.0.1:7070', GatewayUnavailableError],
    ['getaddrinfo ENOTFOUND api.bootpay.co.kr', GatewayUnavailableError],
    ['socket hang up', GatewayUnknownOutcomeError],
    ['read ECONNRESET', GatewayUnknownOutcomeError],
    ['timeout of 3000ms exceeded', GatewayUnknownOutcomeError],
    ['canceled', GatewayUnknownOutcomeError],
  ])('should map a -100 "%s" on a charge', (detail, type) => {
    const err = toGatewayError({ error_code: -100, message: `Request Rest Api Failed to Bootpay Server, ${detail}` }, charge);
    expect(err).toBeInstanceOf(type);
    expect(err.code).toBe('-100');
  });

  it('should never call a -100 "not sent" once the gateway deadline fired', () => {
    const err = toGatewayError({ error_code: -100, message: 'x, connect ECONNREFUSED' }, { ...charge, deadlineExceeded: true });
    expect(err).toBeInstanceOf(GatewayUnknownOutcomeError);
    expect((err as GatewayUnknownOutcomeError).reason).toBe('timeout');
  });

  it('should map every -100 on a read to unavailable (retryable)', () => {
    const err = toGatewayError({ error_code: -100, message: 'x, socket hang up' }, lookup);
    expect(err).toBeInstanceOf(GatewayUnavailableError);
    expect(err.retryable).toBe(true);
  });

  it.each([
    [{ error_code: -101, message: '인증 정보가 없습니다.' }, GatewayConfigError],
    [{ error_code: 'TOKEN_KEY_INVALID', message: 'ACCESS TOKEN 값을 확인해주세요' }, GatewayConfigError],
    [{ error_code: 'APP_KEY_NOT_FOUND' }, GatewayConfigError],
    [{ error_code: 'RC_DUPLICATE_ORDER_ID' }, GatewayDuplicateError],
    [{ error_code: 'RC_CANCEL_ID_DUPLICATED' }, GatewayDuplicateError],
    [{ error_code: 'RC_RESERVE_LIMIT_EXCEEDED' }, GatewayReservationLimitError],
    [{ error_code: 'RC_RESERVE_ALREADY_DONE' }, GatewayReservationAlreadyDoneError],
    [{ error_code: 'SUBSCRIBE_BK_EXPIRED' }, GatewayInvalidBillingKeyError],
    [{ error_code: 'RC_NOT_FOUND' }, GatewayInvalidBillingKeyError],
    [{ error_code: 'RC_ALREADY_CANCELLED' }, GatewayAlreadyCancelledError],
    [{ error_code: 'RC_INVALID_PARAMETER' }, GatewayRequestError],
    [{ error_code: 'RC_CONFIRM_CRITICAL_FAILED' }, GatewayUnknownOutcomeError],
    [{ error_code: 'SERVICE_UNAVAILABLE', http_status: 503 }, GatewayUnknownOutcomeError],
    [{ error_code: 'SOMETHING_NEW' }, GatewayUnknownOutcomeError],
    [{ message: 'no code at all' }, GatewayUnknownOutcomeError],
  ])('should map %j on a charge', (body, type) => {
    expect(toGatewayError(body, charge)).toBeInstanceOf(type);
  });

  it('should map RC_NOT_FOUND of a receipt call to not found, and an unknown code of a read to a request error', () => {
    expect(toGatewayError({ error_code: 'RC_NOT_FOUND' }, lookup)).toBeInstanceOf(GatewayNotFoundError);
    expect(toGatewayError({ error_code: 'SOMETHING_NEW' }, lookup)).toBeInstanceOf(GatewayRequestError);
  });

  it.each([
    ['RC_CONFIRM_FAILED', 'F043', '분실/도난카드', true],
    ['RC_CONFIRM_FAILED', 'F051', '잔액부족', false],
    ['RC_REQUEST_FAILED', undefined, 'PG사 일시적인 오류', false],
    ['RC_CONFIRM_FAILED', '9999', '도난 분실 카드입니다', true],
    ['RC_CONFIRM_FAILED', '9999', '한도초과', false],
    ['RC_CONFIRM_FAILED', '9999', '알 수 없는 오류', false],
    ['SUBSCRIBE_PUBLISH_FAILED', 'X1', '유효기간 오류', true],
    ['RC_INVALID_EXP_MONTH', undefined, '유효기간(월)', true],
  ])('should classify %s / pg %s "%s" as hard=%s', (code, pg, message, hard) => {
    const err = toGatewayError({ error_code: code, pg_error_code: pg, message }, charge);
    expect(err).toBeInstanceOf(GatewayDeclinedError);
    expect((err as GatewayDeclinedError).hard).toBe(hard);
    expect(err.retryable).toBe(!hard);
    expect(err.pgCode).toBe(pg);
  });

  it('should keep numeric pg codes as strings', () => {
    expect(toGatewayError({ error_code: 'RC_CONFIRM_FAILED', pg_error_code: 5209, message: 'x' }, charge).pgCode).toBe('5209');
  });

  it('should redact secrets, card numbers and token-like strings from messages', () => {
    const billingKey = 'r0B7DXeJsAlDMskf54tErY6dHOJHc85cCImh7Qk9x4Sq';
    const err = toGatewayError(
      { error_code: 'RC_CONFIRM_FAILED', message: `key ${billingKey} card 4579-7300-0000-1234 pw secretpw` },
      { ...charge, secrets: ['secretpw'] },
    );
    expect(err.message).not.toContain(billingKey);
    expect(err.message).not.toContain('4579-7300-0000-1234');
    expect(err.message).not.toContain('secretpw');
    expect(redactSecrets('receipt 6584f1c2a1b2c3d4e5f60718 ok')).toBe('receipt 6584f1c2a1b2c3d4e5f60718 ok');
  });
});
