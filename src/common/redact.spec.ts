import { isSensitiveKey, REDACTED, redact } from './redact';

describe(redact.name, () => {
  it.each([
    'billing_key',
    'billingKey',
    'BILLING_KEY',
    'card_no',
    'cardNo',
    'card_number',
    'card_pw',
    'card_identity_no',
    'authorization',
    'Authorization',
    'secret_key',
    'access_token',
    'private_key',
    'client_key',
    'api_key',
    'password',
    'cookie',
  ])('should replace the value of %s', (key) => {
    expect(redact({ [key]: 'sensitive-value', other: 'kept' })).toEqual({ [key]: REDACTED, other: 'kept' });
  });

  it.each(['billing_key_id', 'api_key_id', 'customer_id', 'subscription_id', 'idempotency_key', 'order_id'])('should keep the value of %s', (key) => {
    expect(redact({ [key]: 'id-123' })).toEqual({ [key]: 'id-123' });
  });

  it('should redact at any depth in nested objects and arrays', () => {
    const input = {
      customer: {
        id: 'cus_1',
        cards: [
          { card_no: '5570-1234-5678-9012', cardNo: '5570123456789012', card_pw: '12', card_identity_no: '900101', label: 'main' },
          [{ billing_key: 'bk_secret' }],
        ],
      },
      headers: { authorization: 'Bearer abc', 'content-type': 'application/json' },
      bootpay: { secret_key: 'sk', access_token: 'tok', receipt_id: 'r_1' },
      billingKey: 'bk_secret_2',
      billing_key_id: 'bk_id_1',
      api_key_id: 'ak_id_1',
    };
    expect(redact(input)).toEqual({
      customer: {
        id: 'cus_1',
        cards: [{ card_no: REDACTED, cardNo: REDACTED, card_pw: REDACTED, card_identity_no: REDACTED, label: 'main' }, [{ billing_key: REDACTED }]],
      },
      headers: { authorization: REDACTED, 'content-type': 'application/json' },
      bootpay: { secret_key: REDACTED, access_token: REDACTED, receipt_id: 'r_1' },
      billingKey: REDACTED,
      billing_key_id: 'bk_id_1',
      api_key_id: 'ak_id_1',
    });
  });

  it('should replace a sensitive key holding an object as a whole', () => {
    expect(redact({ billing_key: { value: 'bk', issued: 'now' } })).toEqual({ billing_key: REDACTED });
  });

  it('should not change its input', () => {
    const input = { billing_key: 'bk', nested: { card_no: '1234' } };
    redact(input);
    expect(input).toEqual({ billing_key: 'bk', nested: { card_no: '1234' } });
  });

  it('should pass primitives through and turn dates into ISO strings', () => {
    expect(redact('text')).toBe('text');
    expect(redact(42)).toBe(42);
    expect(redact(null)).toBeNull();
    expect(redact(undefined)).toBeUndefined();
    expect(redact({ at: new Date('2025-03-01T00:00:00.000Z') })).toEqual({ at: '2025-03-01T00:00:00.000Z' });
  });

  it('should keep the name and message of an Error', () => {
    expect(redact(new TypeError('card declined'))).toEqual({ name: 'TypeError', message: 'card declined' });
  });

  it('should keep the enumerable fields of an Error and redact the sensitive ones', () => {
    const err = Object.assign(new Error('charge failed'), { code: 'RC_CARD_DECLINED', billing_key: 'bk_secret' });
    expect(redact(err)).toEqual({ name: 'Error', message: 'charge failed', code: 'RC_CARD_DECLINED', billing_key: REDACTED });
  });

  it('should mark a cycle instead of following it', () => {
    const a: Record<string, unknown> = { id: 'a' };
    a.self = a;
    const list: unknown[] = ['x'];
    list.push(list);
    expect(redact(a)).toEqual({ id: 'a', self: '[circular]' });
    expect(redact(list)).toEqual(['x', '[circular]']);
  });

  it('should stop below depth 8', () => {
    let deep: Record<string, unknown> = { leaf: true };
    for (let i = 0; i < 12; i++) deep = { next: deep };
    let out = redact(deep) as Record<string, unknown>;
    for (let i = 0; i < 8; i++) out = out.next as Record<string, unknown>;
    expect(out).toEqual({ next: '[…]' });
  });
});

describe(isSensitiveKey.name, () => {
  it('should flag billing keys and card data but not their ids', () => {
    expect(isSensitiveKey('billing_key')).toBe(true);
    expect(isSensitiveKey('card_identity_no')).toBe(true);
    expect(isSensitiveKey('billing_key_id')).toBe(false);
    expect(isSensitiveKey('api_key_id')).toBe(false);
  });
});
