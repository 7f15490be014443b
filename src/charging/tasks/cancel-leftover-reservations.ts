import { Injectable } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { DataSource } from 'typeorm';
import { ReservationsService } from '../../ledger/reservations.service';
import { chore } from './run-task';

/** Reservations of subscriptions that ended or are paused, which could not be canceled then, are canceled now. */
@Injectable()
export class CancelLeftoverReservationsTask {
  constructor(
    @InjectDataSource() private readonly db: DataSource,
    private readonly reservations: ReservationsService,
  ) {}

  async run(): Promise<void> {
    const rows: { id: string }[] = await this.db.query(
      `SELECT DISTINCT s.id FROM subscriptions s JOIN payments p ON p.subscription_id = s.id
       WHERE s.status IN ('canceled', 'paused') AND p.status = 'READY' LIMIT 1000`,
    );
    for (const { id } of rows) await chore('canceling leftover reservations', id, () => this.reservations.cancelOutstanding(id));
  }
}
