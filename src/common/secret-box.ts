import { createCipheriv, createDecipheriv, createHmac, hkdfSync, randomBytes } from 'node:crypto';

/**
 * AES-256-GCM encryption of secrets at rest (Bootpay billing keys).
 * Stored form: `v1.<iv>.<tag>.<ciphertext>` in base64url. The fingerprint is an HMAC-SHA256 under a key derived
 * from the same secret, so the same billing key can be found without decrypting anything.
 */
export class SecretBox {
  private readonly encKey: Buffer;
  private readonly macKey: Buffer;

  constructor(masterKey: Buffer) {
    if (masterKey.length !== 32) throw new Error('SecretBox needs a 32-byte key');
    this.encKey = Buffer.from(hkdfSync('sha256', masterKey, Buffer.alloc(0), 'billing-key-encryption', 32));
    this.macKey = Buffer.from(hkdfSync('sha256', masterKey, Buffer.alloc(0), 'billing-key-fingerprint', 32));
  }

  encrypt(plain: string, associatedData: string): string {
    const iv = randomBytes(12);
    const cipher = createCipheriv('aes-256-gcm', this.encKey, iv);
    cipher.setAAD(Buffer.from(associatedData));
    const ct = Buffer.concat([cipher.update(plain, 'utf8'), cipher.final()]);
    const tag = cipher.getAuthTag();
    return ['v1', iv.toString('base64url'), tag.toString('base64url'), ct.toString('base64url')].join('.');
  }

  decrypt(stored: string, associatedData: string): string {
    const [version, iv, tag, ct] = stored.split('.');
    if (version !== 'v1' || !iv || !tag || ct === undefined) throw new Error('Unrecognised ciphertext format');
    const tagBytes = Buffer.from(tag, 'base64url');
    if (tagBytes.length !== 16) throw new Error('Unrecognised ciphertext format');
    const decipher = createDecipheriv('aes-256-gcm', this.encKey, Buffer.from(iv, 'base64url'), { authTagLength: 16 });
    decipher.setAAD(Buffer.from(associatedData));
    decipher.setAuthTag(tagBytes);
    return Buffer.concat([decipher.update(Buffer.from(ct, 'base64url')), decipher.final()]).toString('utf8');
  }

  fingerprint(plain: string): string {
    return createHmac('sha256', this.macKey).update(plain).digest('hex');
  }

  /** A fingerprint of the master key itself (not of a secret), kept to recognise a start with another key. */
  keyFingerprint(): string {
    return createHmac('sha256', this.macKey).update('encryption-key-fingerprint').digest('hex');
  }
}
