import { CallHandler, ExecutionContext, HttpStatus, Injectable, Logger, NestInterceptor, OnApplicationBootstrap, OnModuleDestroy } from '@nestjs/common';
import { HTTP_CODE_METADATA } from '@nestjs/common/constants';
import { Reflector } from '@nestjs/core';
import { InjectDataSource } from '@nestjs/typeorm';
import { createHash } from 'node:crypto';
import type { Request, Response } from 'express';
import { catchError, from, mergeMap, Observable, of } from 'rxjs';
import { DataSource, EntityManager } from 'typeorm';
import type { Actor } from '../auth/auth.decorators';
import { Clock } from '../common/clock';
import { returnedRows } from '../common/db-errors';
import { DomainError, InvalidInputError, STATUS_BY_KIND } from '../common/errors';
import { errorBody, StoredErrorResponse } from '../common/exception.filter';

/** How long an Idempotency-Key is kept (README: 24 hours). */
export const IDEMPOTENCY_RETENTION_MS = 24 * 60 * 60 * 1000;
const IN_PROGRESS_TAKEOVER_MS = 10 * 60 * 1000;
/** How often each instance removes expired keys. */
const SWEEP_EVERY_MS = 15 * 60 * 1000;

/**
 * Removes the idempotency records older than 24 hours; answers how many. Every instance runs it on a timer; a charge
 * run (or anything else holding a DataSource or EntityManager) may call it too.
 */
export async function sweepIdempotencyKeys(db: DataSource | EntityManager, now: Date): Promise<number> {
  const rows = returnedRows<{ id: string }>(
    await db.query(`DELETE FROM idempotency_keys WHERE created_at < $1 RETURNING id`, [new Date(now.getTime() - IDEMPOTENCY_RETENTION_MS)]),
  );
  return rows.length;
}

/** Fields that hold a secret shown once (webhook signing secrets, keys, tokens): never stored in a record. */
const SECRET_FIELD = /^(secret|signing_secret|api_key|key|token|access_token|refresh_token|session_token|password)$/i;
/** Values that are secrets whatever their field is called. */
const SECRET_VALUE = /^(whsec|bsk_admin|bsk_svc)_/;
export const WITHHELD = '[WITHHELD]';

/** A copy of an answer without its secrets, and whether there were any. */
export function withoutSecrets(value: unknown): { body: unknown; withheld: boolean } {
  let withheld = false;
  const walk = (v: unknown, depth: number): unknown => {
    if (typeof v === 'string' && SECRET_VALUE.test(v)) {
      withheld = true;
      return WITHHELD;
    }
    if (v === null || typeof v !== 'object' || depth > 32) return v;
    if (Array.isArray(v)) return v.map((x) => walk(x, depth + 1));
    const out: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(v as Record<string, unknown>)) {
      if (SECRET_FIELD.test(k) && typeof x === 'string' && x !== '') {
        withheld = true;
        out[k] = WITHHELD;
      } else out[k] = walk(x, depth + 1);
    }
    return out;
  };
  const body = walk(value, 0);
  return { body, withheld };
}

function canonical(value: unknown): string {
  if (value === null || typeof value !== 'object') return JSON.stringify(value) ?? 'null';
  if (Array.isArray(value)) return `[${value.map(canonical).join(',')}]`;
  const entries = Object.keys(value as object)
    .sort()
    .map((k) => `${JSON.stringify(k)}:${canonical((value as Record<string, unknown>)[k])}`);
  return `{${entries.join(',')}}`;
}

type Begin = { kind: 'fresh'; id: string } | { kind: 'replay'; status: number; body: unknown; withheld: boolean };

/**
 * Honours `Idempotency-Key` on every POST: the first request runs and its response is stored; the same key with
 * the same body gets the stored response again (header `Idempotent-Replayed: true`); the same key with another
 * body gets 422; while the first is still running, 409. Keys are scoped to the API key and kept 24 hours.
 * Stored: 2xx answers and payment failures (402). Other errors are not stored, so a corrected retry can run.
 * A record never holds a secret: an answer that carried one (a webhook endpoint's signing secret, shown once) is
 * stored without it, and its replay is refused with 409 (the secret is not shown twice; rotate it for a new one).
 * Records older than 24 hours are removed every 15 minutes.
 */
@Injectable()
export class IdempotencyInterceptor implements NestInterceptor, OnApplicationBootstrap, OnModuleDestroy {
  private readonly logger = new Logger('Idempotency');
  private timer?: NodeJS.Timeout;

  constructor(
    @InjectDataSource() private readonly db: DataSource,
    private readonly clock: Clock,
    private readonly reflector: Reflector,
  ) {}

  onApplicationBootstrap(): void {
    this.timer = setInterval(() => void this.sweep(), SWEEP_EVERY_MS);
    this.timer.unref();
    void this.sweep();
  }

  onModuleDestroy(): void {
    if (this.timer) clearInterval(this.timer);
  }

  private async sweep(): Promise<void> {
    try {
      const removed = await sweepIdempotencyKeys(this.db, this.clock.now());
      if (removed) this.logger.log({ message: 'expired idempotency keys removed', removed });
    } catch (err) {
      this.logger.warn({ message: 'idempotency sweep failed', error: err instanceof Error ? err.message : String(err) });
    }
  }

  intercept(ctx: ExecutionContext, next: CallHandler): Observable<unknown> {
    const req = ctx.switchToHttp().getRequest<Request & { actor?: Actor }>();
    const res = ctx.switchToHttp().getResponse<Response>();
    const raw = req.headers['idempotency-key'];
    if (req.method !== 'POST' || raw === undefined || !req.actor) return next.handle();
    const key = Array.isArray(raw) ? raw[0] : raw;
    if (!/^[\x21-\x7e]{1,255}$/.test(key)) {
      throw new InvalidInputError([{ field: 'Idempotency-Key', message: 'Idempotency-Key must be 1 to 255 printable characters without spaces' }]);
    }
    const actor = req.actor;
    const successStatus = this.reflector.get<number | undefined>(HTTP_CODE_METADATA, ctx.getHandler()) ?? HttpStatus.CREATED;
    const hash = createHash('sha256')
      .update(`${req.method} ${req.originalUrl}\n${canonical(req.body ?? null)}`)
      .digest('hex');

    return from(this.begin(actor.apiKeyId, key, req, hash)).pipe(
      mergeMap((begin) => {
        if (begin.kind === 'replay') {
          res.setHeader('Idempotent-Replayed', 'true');
          if (begin.withheld) {
            const id = (begin.body as { id?: unknown } | null)?.id;
            throw new DomainError(
              'conflict',
              'idempotent_replay_withheld',
              'The first answer to this Idempotency-Key carried a secret, which is shown once and not kept; read the resource with GET (and rotate its secret if it was lost)',
              [],
              typeof id === 'string' ? { resource_id: id } : {},
            );
          }
          // A stored answer whose status is not the route's usual one (an error, a 202) is sent as it was.
          if (begin.status !== successStatus) throw new StoredErrorResponse(begin.status, begin.body);
          return of(begin.body);
        }
        return next.handle().pipe(
          mergeMap(async (body: unknown) => {
            // A handler may set another 2xx itself (e.g. 202 for an outcome still unknown).
            await this.complete(begin.id, res.statusCode !== 200 ? res.statusCode : successStatus, body ?? null);
            return body;
          }),
          catchError(async (err: unknown) => {
            if (err instanceof DomainError && err.kind === 'payment_failed') {
              const status = STATUS_BY_KIND[err.kind];
              await this.complete(begin.id, status, errorBody(status, err.code, err.message, err.details, err.extra));
            } else {
              await this.release(begin.id);
            }
            throw err;
          }),
        );
      }),
    );
  }

  private async begin(apiKeyId: string, key: string, req: Request, hash: string): Promise<Begin> {
    const now = this.clock.now();
    await this.db.query(`DELETE FROM idempotency_keys WHERE api_key_id = $1 AND idempotency_key = $2 AND created_at < $3`, [
      apiKeyId,
      key,
      new Date(now.getTime() - IDEMPOTENCY_RETENTION_MS),
    ]);
    const inserted: { id: string }[] = await this.db.query(
      `INSERT INTO idempotency_keys (api_key_id, idempotency_key, method, path, request_hash, state, created_at)
       VALUES ($1, $2, $3, $4, $5, 'in_progress', $6)
       ON CONFLICT (api_key_id, idempotency_key) DO NOTHING RETURNING id`,
      [apiKeyId, key, req.method, req.originalUrl.slice(0, 512), hash, now],
    );
    if (inserted.length) return { kind: 'fresh', id: inserted[0].id };
    const [existing]: {
      id: string;
      request_hash: string;
      state: string;
      response_status: number | null;
      response_body: unknown;
      response_withheld: boolean;
      created_at: Date;
    }[] = await this.db.query(
      `SELECT id, request_hash, state, response_status, response_body, response_withheld, created_at FROM idempotency_keys
       WHERE api_key_id = $1 AND idempotency_key = $2`,
      [apiKeyId, key],
    );
    if (!existing) return this.begin(apiKeyId, key, req, hash);
    if (existing.request_hash !== hash) {
      throw new DomainError(
        'unprocessable',
        'idempotency_key_reused',
        'This Idempotency-Key was used with a different request; use a new key for a new request',
        [{ field: 'Idempotency-Key', message: 'was already used with a different request body or path' }],
      );
    }
    if (existing.state === 'completed') {
      return { kind: 'replay', status: existing.response_status ?? 200, body: existing.response_body, withheld: existing.response_withheld };
    }
    // A request that crashed mid-way leaves its key in progress; after a while another attempt may take it over.
    const takeover = returnedRows<{ id: string }>(
      await this.db.query(`UPDATE idempotency_keys SET created_at = $3 WHERE id = $1 AND state = 'in_progress' AND created_at < $2 RETURNING id`, [
        existing.id,
        new Date(now.getTime() - IN_PROGRESS_TAKEOVER_MS),
        now,
      ]),
    );
    if (takeover.length) return { kind: 'fresh', id: existing.id };
    throw new DomainError('conflict', 'idempotency_request_in_progress', 'A request with this Idempotency-Key is still being processed; retry later');
  }

  private async complete(id: string, status: number, body: unknown): Promise<void> {
    const stored = withoutSecrets(body);
    await this.db.query(
      `UPDATE idempotency_keys SET state = 'completed', response_status = $2, response_body = $3::jsonb, response_withheld = $5, completed_at = $4 WHERE id = $1`,
      [id, status, JSON.stringify(stored.body), this.clock.now(), stored.withheld],
    );
  }

  private async release(id: string): Promise<void> {
    await this.db.query(`DELETE FROM idempotency_keys WHERE id = $1 AND state = 'in_progress'`, [id]);
  }
}
