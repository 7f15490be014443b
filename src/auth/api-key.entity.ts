import { Column, Entity, PrimaryGeneratedColumn } from 'typeorm';

export type ApiKeyRole = 'service' | 'admin';
export const API_KEY_ROLES: readonly ApiKeyRole[] = ['service', 'admin'];

@Entity({ name: 'api_keys' })
export class ApiKeyEntity {
  @PrimaryGeneratedColumn('uuid')
  id: string;

  @Column({ type: 'varchar', length: 100 })
  name: string;

  @Column({ type: 'varchar', length: 16 })
  role: ApiKeyRole;

  /** SHA-256 of the key; the key itself is shown once at creation and never stored. */
  @Column({ name: 'key_hash', type: 'char', length: 64, select: false })
  keyHash: string;

  /** A short identifier holding no character of the key (apiKeyIdentifier). */
  @Column({ name: 'key_prefix', type: 'varchar', length: 32 })
  keyPrefix: string;

  @Column({ name: 'created_at', type: 'timestamptz' })
  createdAt: Date;

  @Column({ name: 'revoked_at', type: 'timestamptz', nullable: true })
  revokedAt: Date | null;
}
