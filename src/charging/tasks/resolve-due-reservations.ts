import { Injectable, Logger } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { DataSource } from 'typeorm';
import { ChargeAttemptsService } from '../../ledger/charge-attempts.service';
import { PaymentEntity } from '../../payments/payment.entity';
import { RUN_LOG_CONTEXT, RunCounters } from './run-task';

/**
 * Reservations whose execution time is past (plus a grace period) without a webhook: asked of Bootpay by
 * reservation lookup and settled from the receipt. One whose registration was never confirmed (no reserve_id) is
 * resolved like an unknown charge: the same order_id is sent; a duplicate means it executed.
 */
@Injectable()
export class ResolveDueReservationsTask {
  private readonly logger = new Logger(RUN_LOG_CONTEXT);

  constructor(
    @InjectDataSource() private readonly db: DataSource,
    private readonly attempts: ChargeAttemptsService,
  ) {}

  async run(asOf: Date, c: RunCounters): Promise<void> {
    const graceMs = 10 * 60 * 1000;
    const rows = await this.db
      .getRepository(PaymentEntity)
      .createQueryBuilder('p')
      .where(`p.status = 'READY' AND p.reserve_execute_at <= :before`, { before: new Date(asOf.getTime() - graceMs) })
      .orderBy('p.reserve_execute_at', 'ASC')
      .limit(1000)
      .getMany();
    for (const p of rows) {
      try {
        if (await this.attempts.resolveReservation(p, { sendUnconfirmed: true })) c.resolved++;
      } catch (err) {
        this.logger.warn({ message: 'reservation not resolved yet', payment_id: p.id, error: err instanceof Error ? err.message : String(err) });
      }
    }
  }
}
