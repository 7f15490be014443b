import { Injectable, Logger, OnApplicationBootstrap } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { DataSource } from 'typeorm';
import { SecretBox } from '../common/secret-box';

const SETTING = 'billing_key_encryption_fingerprint';

/**
 * Refuses to start with a BILLING_KEY_ENCRYPTION_KEY other than the one the stored billing keys were encrypted with.
 * With another key every stored key would be unreadable: the service could charge no one, and must never take that
 * for a deleted key (a decline, dunning, cancels). The key's fingerprint is kept in service_settings on the first
 * start; a database that already holds keys but no fingerprint (older versions) is checked by decrypting one.
 */
@Injectable()
export class EncryptionKeyCheck implements OnApplicationBootstrap {
  private readonly logger = new Logger(EncryptionKeyCheck.name);

  constructor(
    @InjectDataSource() private readonly db: DataSource,
    private readonly box: SecretBox,
  ) {}

  async onApplicationBootstrap(): Promise<void> {
    const mine = this.box.keyFingerprint();
    const [stored] = await this.db.query(`SELECT value FROM service_settings WHERE key = $1`, [SETTING]);
    if (stored) {
      if (stored.value !== mine) throw new Error(mismatch());
      return;
    }
    const [sample] = await this.db.query(`SELECT id, billing_key_ciphertext FROM billing_keys WHERE billing_key_ciphertext IS NOT NULL LIMIT 1`);
    if (sample) {
      try {
        this.box.decrypt(sample.billing_key_ciphertext, sample.id);
      } catch {
        throw new Error(mismatch());
      }
    }
    await this.db.query(`INSERT INTO service_settings (key, value) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING`, [SETTING, mine]);
    const [now] = await this.db.query(`SELECT value FROM service_settings WHERE key = $1`, [SETTING]);
    if (now.value !== mine) throw new Error(mismatch()); // another instance with another key recorded first
    this.logger.log({ message: 'billing-key encryption key recorded (fingerprint only)' });
  }
}

function mismatch(): string {
  return 'BILLING_KEY_ENCRYPTION_KEY does not match the key the stored billing keys were encrypted with; refusing to start (with it no billing key could be read). Start with the original key.';
}
