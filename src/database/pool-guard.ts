import { Injectable, Logger, OnModuleInit } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import type { Pool, PoolClient } from 'pg';
import { DataSource } from 'typeorm';

/**
 * Keeps a lost database connection from ending the process. When PostgreSQL goes away (a restart, a fail-over), every
 * client of the pool emits 'error'; a client that has no listener at that moment (pg's pool listens while a client is
 * idle, TypeORM while it runs a query) would throw it as an uncaught exception. Each new client gets a listener of its
 * own that logs it; the pool drops broken clients and connects again once the database is back.
 */
@Injectable()
export class PoolGuard implements OnModuleInit {
  private readonly logger = new Logger(PoolGuard.name);

  constructor(@InjectDataSource() private readonly db: DataSource) {}

  onModuleInit(): void {
    const pool = (this.db.driver as unknown as { master?: Pool }).master;
    if (!pool) return;
    const listen = (client: PoolClient) =>
      client.on('error', (err: Error & { code?: string }) =>
        this.logger.warn({ message: 'database connection lost; the pool reconnects', code: err.code, error: err.message }),
      );
    pool.on('connect', listen);
    // The clients made before this hook (TypeORM's first connection) get one too.
    for (const client of (pool as unknown as { _clients?: PoolClient[] })._clients ?? []) listen(client);
  }
}
