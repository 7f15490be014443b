import { Column, Entity, PrimaryGeneratedColumn } from 'typeorm';

export type BillingKeyStatus = 'active' | 'deleting' | 'deleted';

@Entity({ name: 'billing_keys' })
export class BillingKeyEntity {
  @PrimaryGeneratedColumn('uuid')
  id: string;

  @Column({ name: 'customer_id', type: 'uuid' })
  customerId: string;

  /** AES-256-GCM ciphertext of Bootpay's billing key. Never selected unless asked for, never returned. */
  @Column({ name: 'billing_key_ciphertext', type: 'text', nullable: true, select: false })
  billingKeyCiphertext: string | null;

  /** HMAC of the billing key, so the same key is not registered twice; not reversible. */
  @Column({ name: 'billing_key_fingerprint', type: 'char', length: 64, nullable: true, select: false })
  billingKeyFingerprint: string | null;

  @Column({ name: 'bootpay_receipt_id', type: 'varchar', length: 64 })
  bootpayReceiptId: string;

  @Column({ type: 'varchar', length: 64, nullable: true })
  pg: string | null;

  @Column({ type: 'varchar', length: 64, nullable: true })
  method: string | null;

  @Column({ name: 'card_company', type: 'varchar', length: 64, nullable: true })
  cardCompany: string | null;

  @Column({ name: 'card_company_code', type: 'varchar', length: 16, nullable: true })
  cardCompanyCode: string | null;

  @Column({ name: 'card_no_masked', type: 'varchar', length: 32, nullable: true })
  cardNoMasked: string | null;

  @Column({ name: 'card_type', type: 'varchar', length: 16, nullable: true })
  cardType: string | null;

  @Column({ type: 'varchar', length: 16 })
  status: BillingKeyStatus;

  @Column({ name: 'issued_at', type: 'timestamptz', nullable: true })
  issuedAt: Date | null;

  @Column({ name: 'expires_at', type: 'timestamptz', nullable: true })
  expiresAt: Date | null;

  @Column({ name: 'deleted_at', type: 'timestamptz', nullable: true })
  deletedAt: Date | null;

  @Column({ name: 'created_at', type: 'timestamptz' })
  createdAt: Date;

  @Column({ name: 'updated_at', type: 'timestamptz' })
  updatedAt: Date;
}
