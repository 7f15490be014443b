import { Injectable } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { DataSource } from 'typeorm';
import { ReservationsService } from '../../ledger/reservations.service';
import { chore } from './run-task';

/** Reservation-mode subscriptions without an outstanding reservation get their coming periods registered. */
@Injectable()
export class TopUpReservationsTask {
  constructor(
    @InjectDataSource() private readonly db: DataSource,
    private readonly reservations: ReservationsService,
  ) {}

  async run(): Promise<void> {
    const rows: { id: string }[] = await this.db.query(
      `SELECT s.id FROM subscriptions s JOIN plans pl ON pl.id = s.plan_id
       WHERE pl.charge_mode = 'reservation' AND s.status IN ('active', 'trialing', 'incomplete') AND s.pending_plan_id IS NULL
         AND NOT EXISTS (SELECT 1 FROM payments p WHERE p.subscription_id = s.id AND p.status IN ('READY', 'IN_PROGRESS', 'UNKNOWN'))
       ORDER BY s.next_charge_at NULLS LAST, s.id LIMIT 1000`,
    );
    for (const { id } of rows) await chore('registering reservations', id, () => this.reservations.topUp(id));
  }
}
