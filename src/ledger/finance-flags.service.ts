import { Injectable } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { DataSource, EntityManager } from 'typeorm';
import { Clock } from '../common/clock';
import { returnedRows } from '../common/db-errors';
import { InvalidInputError, NotFoundError } from '../common/errors';
import { decodeCursor, encodeCursor, Page } from '../common/pagination';

/** What finance must look at: money that moved and was not applied, or a receipt that does not fit its payment. */
export type FinanceFlagKind =
  /** An approval the subscription refused (late, stale, after a pause or cancel): refunded automatically. */
  | 'charge_not_applied'
  /** Bootpay's receipt differs from the payment it names (price, tax-free part, status, card or payment id). */
  | 'receipt_mismatch'
  /** An automatic refund could not be recorded (another refund of the payment was in flight). */
  | 'refund_needed'
  /** A refund made at Bootpay (its admin console), not asked of this service. */
  | 'refund_outside'
  /** A reservation Bootpay never confirmed was withdrawn; Bootpay may still execute it. */
  | 'reservation_unconfirmed';

export interface FinanceFlagInput {
  kind: FinanceFlagKind;
  subscriptionId: string | null;
  paymentId: string | null;
  message: string;
  data?: Record<string, unknown>;
}

export interface FinanceFlagView {
  id: string;
  kind: string;
  subscription_id: string | null;
  payment_id: string | null;
  message: string;
  data: Record<string, unknown> | null;
  created_at: string;
  resolved_at: string | null;
  resolved_by: string | null;
  resolution: string | null;
}

interface Row {
  id: string;
  kind: string;
  subscription_id: string | null;
  payment_id: string | null;
  message: string;
  data: Record<string, unknown> | null;
  created_at: Date;
  resolved_at: Date | null;
  resolved_by: string | null;
  resolution: string | null;
}

/** Items for finance, written by the ledger in the transaction of the change that raised them. */
@Injectable()
export class FinanceFlagsService {
  constructor(
    @InjectDataSource() private readonly db: DataSource,
    private readonly clock: Clock,
  ) {}

  /** Raises a flag in the caller's transaction; the same kind for the same payment is raised once. */
  async raise(m: EntityManager, flag: FinanceFlagInput): Promise<void> {
    await m.query(
      `INSERT INTO finance_flags (kind, subscription_id, payment_id, message, data, created_at) VALUES ($1, $2, $3, $4, $5, $6)
       ON CONFLICT DO NOTHING`,
      [flag.kind, flag.subscriptionId, flag.paymentId, flag.message.slice(0, 500), flag.data ? JSON.stringify(flag.data) : null, this.clock.now()],
    );
  }

  /** Newest first, keyset-paged on (created_at, id) descending. */
  async list(q: { open?: boolean; subscriptionId?: string; limit?: number; cursor?: string }): Promise<Page<FinanceFlagView>> {
    const limit = q.limit ?? 20;
    const after = q.cursor ? decodeCursor(q.cursor) : null;
    const rows: Row[] = await this.db.query(
      `SELECT * FROM finance_flags
       WHERE ($1::boolean IS NULL OR (resolved_at IS NULL) = $1) AND ($2::uuid IS NULL OR subscription_id = $2)
         AND ($4::timestamptz IS NULL OR (created_at, id) < ($4::timestamptz, $5::uuid))
       ORDER BY created_at DESC, id DESC LIMIT $3`,
      [q.open ?? null, q.subscriptionId ?? null, limit + 1, after?.t ?? null, after?.id ?? null],
    );
    const page = rows.slice(0, limit);
    const last = page[page.length - 1];
    const hasMore = rows.length > limit;
    return { data: page.map(view), has_more: hasMore, next_cursor: hasMore && last ? encodeCursor(new Date(last.created_at), last.id) : null };
  }

  async resolve(id: string, resolution: string, by: string): Promise<FinanceFlagView> {
    if (typeof resolution !== 'string' || !resolution.trim() || resolution.length > 500) {
      throw new InvalidInputError([{ field: 'resolution', message: 'resolution must be non-blank text of at most 500 characters' }]);
    }
    const rows = returnedRows<Row>(
      await this.db.query(
        `UPDATE finance_flags SET resolved_at = COALESCE(resolved_at, $2), resolved_by = COALESCE(resolved_by, $3), resolution = COALESCE(resolution, $4)
         WHERE id = $1 RETURNING *`,
        [id, this.clock.now(), by.slice(0, 100), resolution],
      ),
    );
    if (!rows.length) throw new NotFoundError('Finance flag', id);
    return view(rows[0]);
  }
}

function view(r: Row): FinanceFlagView {
  return {
    id: r.id,
    kind: r.kind,
    subscription_id: r.subscription_id,
    payment_id: r.payment_id,
    message: r.message,
    data: r.data,
    created_at: new Date(r.created_at).toISOString(),
    resolved_at: r.resolved_at ? new Date(r.resolved_at).toISOString() : null,
    resolved_by: r.resolved_by,
    resolution: r.resolution,
  };
}
