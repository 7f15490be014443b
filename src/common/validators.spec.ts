import { validateSync } from 'class-validator';
import { IsMetadata, IsPlainText, KOREAN_PHONE, normalizePhone } from './validators';

class MetadataDto {
  @IsMetadata()
  metadata: unknown;
}

class NameDto {
  @IsPlainText()
  name: unknown;
}

class CustomMessageDto {
  @IsPlainText({ message: 'memo is required' })
  memo: unknown;
}

function errorsOf<T extends object>(Dto: new () => T, values: Record<string, unknown>): Record<string, string>[] {
  const dto = Object.assign(new Dto(), values);
  return validateSync(dto).map((e) => e.constraints ?? {});
}

describe('KOREAN_PHONE', () => {
  it.each(['010-1234-5678', '01012345678', '+82-10-1234-5678', '+821012345678', '02-123-4567', '031-123-4567', '070-1234-5678', '011-123-4567'])(
    'should accept %s',
    (phone) => {
      expect(KOREAN_PHONE.test(phone)).toBe(true);
    },
  );

  it.each(['12345', '010-12-34', '', '010-1234-56789', '+82-010-1234-5678', '010 1234 5678', '1-010-1234-5678', '010-1234-5678x'])(
    'should reject %j',
    (phone) => {
      expect(KOREAN_PHONE.test(phone)).toBe(false);
    },
  );
});

describe(normalizePhone.name, () => {
  it.each([
    ['010-1234-5678', '01012345678'],
    ['01012345678', '01012345678'],
    ['+82-10-1234-5678', '01012345678'],
    ['+821012345678', '01012345678'],
    ['02-123-4567', '021234567'],
  ])('should turn %s into %s', (input, expected) => {
    expect(normalizePhone(input)).toBe(expected);
  });
});

describe(IsMetadata.name, () => {
  const MESSAGE = 'metadata must be an object of at most 20 string values, keys of 1-40 letters, digits or _ and values of at most 500 characters';

  it.each([
    ['an empty object', {}],
    ['string values', { plan: 'pro', seat_count: '3', ERP_ID: 'A-1' }],
    ['20 keys', Object.fromEntries(Array.from({ length: 20 }, (_, i) => [`k${i}`, 'v']))],
    ['a 40-character key', { ['k'.repeat(40)]: 'v' }],
    ['a 500-character value', { note: 'x'.repeat(500) }],
    ['an empty string value', { note: '' }],
  ])('should accept %s', (_label, metadata) => {
    expect(errorsOf(MetadataDto, { metadata })).toEqual([]);
  });

  it.each([
    ['null', null],
    ['undefined', undefined],
    ['a string', 'plan=pro'],
    ['an array', ['pro']],
    ['a number value', { seats: 3 }],
    ['a nested object', { address: { city: 'Seoul' } }],
    ['a null value', { note: null }],
    ['21 keys', Object.fromEntries(Array.from({ length: 21 }, (_, i) => [`k${i}`, 'v']))],
    ['a 41-character key', { ['k'.repeat(41)]: 'v' }],
    ['an empty key', { '': 'v' }],
    ['a key with a dash', { 'plan-name': 'pro' }],
    ['a key with a space', { 'plan name': 'pro' }],
    ['a 501-character value', { note: 'x'.repeat(501) }],
    ['a Date', new Date(0)],
    ['an object without prototype', Object.assign(Object.create(null) as object, { a: 'b' })],
  ])('should reject %s', (_label, metadata) => {
    expect(errorsOf(MetadataDto, { metadata })).toEqual([{ isMetadata: MESSAGE }]);
  });
});

describe(IsPlainText.name, () => {
  const MESSAGE = 'name must be non-blank text without control characters';

  it.each(['Basic plan', '프리미엄 요금제', ' padded ', 'a'])('should accept %j', (name) => {
    expect(errorsOf(NameDto, { name })).toEqual([]);
  });

  it.each([
    ['an empty string', ''],
    ['only spaces', '   '],
    ['a newline', 'line\nbreak'],
    ['a tab', 'tab\there'],
    ['a NUL character', 'nul\u0000'],
    ['DEL', 'del\u007f'],
    ['a number', 42],
    ['null', null],
    ['undefined', undefined],
  ])('should reject %s', (_label, name) => {
    expect(errorsOf(NameDto, { name })).toEqual([{ isPlainText: MESSAGE }]);
  });

  it('should use a message given in the options', () => {
    expect(errorsOf(CustomMessageDto, { memo: '' })).toEqual([{ isPlainText: 'memo is required' }]);
  });
});
