import { randomBytes } from 'node:crypto';
import { SecretBox } from './secret-box';

const MASTER = Buffer.from('0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef', 'hex');
const OTHER_MASTER = Buffer.from('fedcba9876543210fedcba9876543210fedcba9876543210fedcba9876543210', 'hex');
const BILLING_KEY = '66b1e6a0d01c7e001e4b2b0a';
const ROW_ID = '3f1c9b6e-8a1d-4f0e-9b35-2a6d1c0e7f41';

/** Flips one bit of the byte at `index` of the base64url part `part` (1 iv, 2 tag, 3 ciphertext). */
function tamper(stored: string, part: 1 | 2 | 3, index = 0): string {
  const parts = stored.split('.');
  const bytes = Buffer.from(parts[part], 'base64url');
  bytes[index] ^= 0x01;
  parts[part] = bytes.toString('base64url');
  return parts.join('.');
}

describe(SecretBox.name, () => {
  const box = new SecretBox(MASTER);

  describe('encrypt and decrypt', () => {
    it('should give back the plain text', () => {
      expect(box.decrypt(box.encrypt(BILLING_KEY, ROW_ID), ROW_ID)).toBe(BILLING_KEY);
    });

    it('should round trip non-ASCII and empty text', () => {
      expect(box.decrypt(box.encrypt('빌링키-テスト-✓', ROW_ID), ROW_ID)).toBe('빌링키-テスト-✓');
      expect(box.decrypt(box.encrypt('', ROW_ID), ROW_ID)).toBe('');
    });

    it('should decrypt with another instance built from the same master key', () => {
      const stored = box.encrypt(BILLING_KEY, ROW_ID);
      expect(new SecretBox(Buffer.from(MASTER)).decrypt(stored, ROW_ID)).toBe(BILLING_KEY);
    });

    it('should store v1.<iv>.<tag>.<ciphertext> with a 12-byte iv and a 16-byte tag', () => {
      const parts = box.encrypt(BILLING_KEY, ROW_ID).split('.');
      expect(parts).toHaveLength(4);
      expect(parts[0]).toBe('v1');
      expect(Buffer.from(parts[1], 'base64url')).toHaveLength(12);
      expect(Buffer.from(parts[2], 'base64url')).toHaveLength(16);
      expect(Buffer.from(parts[3], 'base64url')).toHaveLength(Buffer.byteLength(BILLING_KEY));
    });

    it('should produce a different ciphertext each time for the same input', () => {
      const a = box.encrypt(BILLING_KEY, ROW_ID);
      const b = box.encrypt(BILLING_KEY, ROW_ID);
      expect(a).not.toBe(b);
      expect(a.split('.')[1]).not.toBe(b.split('.')[1]);
      expect(a.split('.')[3]).not.toBe(b.split('.')[3]);
    });

    it('should not contain the plain text', () => {
      const stored = box.encrypt(BILLING_KEY, ROW_ID);
      expect(stored).not.toContain(BILLING_KEY);
      expect(stored).not.toContain(Buffer.from(BILLING_KEY).toString('base64url'));
      expect(Buffer.from(stored.split('.')[3], 'base64url').toString('utf8')).not.toBe(BILLING_KEY);
    });

    it('should refuse to decrypt under another associated data (row id)', () => {
      const stored = box.encrypt(BILLING_KEY, ROW_ID);
      expect(() => box.decrypt(stored, '00000000-0000-4000-8000-000000000000')).toThrow();
      expect(() => box.decrypt(stored, '')).toThrow();
    });

    it('should refuse to decrypt under another master key', () => {
      const stored = box.encrypt(BILLING_KEY, ROW_ID);
      expect(() => new SecretBox(OTHER_MASTER).decrypt(stored, ROW_ID)).toThrow();
    });

    it.each([
      ['the ciphertext', 3],
      ['the last ciphertext byte', 3, BILLING_KEY.length - 1],
      ['the tag', 2],
      ['the iv', 1],
    ] as const)('should refuse a ciphertext with %s tampered', (_label, part, index = 0) => {
      const stored = box.encrypt(BILLING_KEY, ROW_ID);
      const bad = tamper(stored, part, index);
      expect(bad).not.toBe(stored);
      expect(() => box.decrypt(bad, ROW_ID)).toThrow();
    });

    it.each([
      ['another version', (s: string) => s.replace(/^v1\./, 'v2.')],
      ['a missing part', (s: string) => s.split('.').slice(0, 3).join('.')],
      ['plain text', () => BILLING_KEY],
    ])('should refuse a stored value with %s', (_label, mangle) => {
      const stored = mangle(box.encrypt(BILLING_KEY, ROW_ID));
      expect(() => box.decrypt(stored, ROW_ID)).toThrow('Unrecognised ciphertext format');
    });
  });

  describe('fingerprint', () => {
    it('should be the same for the same key and master key, across instances', () => {
      const fp = box.fingerprint(BILLING_KEY);
      expect(fp).toMatch(/^[0-9a-f]{64}$/);
      expect(box.fingerprint(BILLING_KEY)).toBe(fp);
      expect(new SecretBox(Buffer.from(MASTER)).fingerprint(BILLING_KEY)).toBe(fp);
    });

    it('should differ for different billing keys', () => {
      expect(box.fingerprint(BILLING_KEY)).not.toBe(box.fingerprint(BILLING_KEY + 'x'));
    });

    it('should differ across master keys', () => {
      expect(new SecretBox(OTHER_MASTER).fingerprint(BILLING_KEY)).not.toBe(box.fingerprint(BILLING_KEY));
    });

    it('should not contain the billing key', () => {
      expect(box.fingerprint(BILLING_KEY)).not.toContain(BILLING_KEY);
    });
  });

  describe('constructor', () => {
    it.each([0, 16, 31, 33, 64])('should refuse a %i-byte key', (length) => {
      expect(() => new SecretBox(randomBytes(length))).toThrow('SecretBox needs a 32-byte key');
    });

    it('should accept a 32-byte key', () => {
      expect(() => new SecretBox(randomBytes(32))).not.toThrow();
    });
  });
});
