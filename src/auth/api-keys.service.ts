import { Injectable } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { createHash, randomBytes } from 'node:crypto';
import { DataSource } from 'typeorm';
import { Clock } from '../common/clock';
import { DatabaseLock } from '../common/locks';
import { ApiKeyEntity, ApiKeyRole } from './api-key.entity';
import type { Actor } from './auth.decorators';

export function hashApiKey(key: string): string {
  return createHash('sha256').update(key).digest('hex');
}

/**
 * What is kept to tell keys apart in lists (`key_prefix`): the key's kind and the first 8 hex digits of its SHA-256
 * hash, e.g. `bsk_admin_#3f9a0c12`. No character of the key itself is kept (a key from the settings may be as short
 * as 24 characters, so even a few of them would be a real part of it).
 */
export function apiKeyIdentifier(key: string): string {
  const kind = /^bsk_(admin|svc)_/.exec(key)?.[0] ?? '';
  return `${kind}#${hashApiKey(key).slice(0, 8)}`;
}

export function generateApiKey(role: ApiKeyRole): string {
  return `${role === 'admin' ? 'bsk_admin' : 'bsk_svc'}_${randomBytes(24).toString('base64url')}`;
}

@Injectable()
export class ApiKeysService {
  constructor(
    @InjectDataSource() private readonly db: DataSource,
    private readonly clock: Clock,
  ) {}

  /** Creates a key and returns it in clear, once. Only its hash is stored. */
  async create(name: string, role: ApiKeyRole, key = generateApiKey(role)): Promise<{ key: string; id: string }> {
    const row = await this.db.getRepository(ApiKeyEntity).save({
      name,
      role,
      keyHash: hashApiKey(key),
      keyPrefix: apiKeyIdentifier(key),
      createdAt: this.clock.now(),
      revokedAt: null,
    });
    return { key, id: row.id };
  }

  async authenticate(key: string): Promise<Actor | null> {
    if (key.length < 8 || key.length > 256) return null;
    const row = await this.db
      .getRepository(ApiKeyEntity)
      .createQueryBuilder('k')
      .where('k.key_hash = :h AND k.revoked_at IS NULL', { h: hashApiKey(key) })
      .getOne();
    return row ? { apiKeyId: row.id, name: row.name, role: row.role } : null;
  }

  async list(): Promise<ApiKeyEntity[]> {
    return this.db.getRepository(ApiKeyEntity).find({ order: { createdAt: 'ASC' } });
  }

  async revoke(id: string): Promise<boolean> {
    const r = await this.db
      .getRepository(ApiKeyEntity)
      .createQueryBuilder()
      .update()
      .set({ revokedAt: this.clock.now() })
      .where('id = :id AND revoked_at IS NULL', { id })
      .execute();
    return (r.affected ?? 0) > 0;
  }

  /**
   * Makes sure the keys named in the settings exist (ADMIN_API_KEY, SERVICE_API_KEY). With `generateWhenEmpty`
   * (the embedded default), a database with no keys at all gets one of each, returned in clear to be printed once.
   * Runs under an advisory lock so that instances starting together create each key once.
   */
  async ensureInitialKeys(opts: { adminKey?: string; serviceKey?: string; generateWhenEmpty: boolean }): Promise<{ admin?: string; service?: string }> {
    return this.db.transaction(async (m) => {
      await m.query('SELECT pg_advisory_xact_lock($1)', [DatabaseLock.BootstrapApiKeys]);
      const repo = m.getRepository(ApiKeyEntity);
      const created: { admin?: string; service?: string } = {};
      const ensure = async (key: string | undefined, role: ApiKeyRole) => {
        if (!key) return;
        const exists = await repo
          .createQueryBuilder('k')
          .where('k.key_hash = :h', { h: hashApiKey(key) })
          .getCount();
        if (exists === 0) {
          await repo.save({
            name: `${role} (from settings)`,
            role,
            keyHash: hashApiKey(key),
            keyPrefix: apiKeyIdentifier(key),
            createdAt: this.clock.now(),
            revokedAt: null,
          });
        }
      };
      await ensure(opts.adminKey, 'admin');
      await ensure(opts.serviceKey, 'service');
      if (opts.generateWhenEmpty && (await repo.count()) === 0) {
        for (const role of ['admin', 'service'] as const) {
          const key = generateApiKey(role);
          await repo.save({
            name: `${role} (generated at first start)`,
            role,
            keyHash: hashApiKey(key),
            keyPrefix: apiKeyIdentifier(key),
            createdAt: this.clock.now(),
            revokedAt: null,
          });
          created[role] = key;
        }
      }
      return created;
    });
  }
}
