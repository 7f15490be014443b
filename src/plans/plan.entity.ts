import { Column, Entity, PrimaryGeneratedColumn } from 'typeorm';
import type { BillingInterval } from '../billing-math';
import { bigintNumber } from '../common/transformers';

export type ChargeMode = 'scheduler' | 'reservation';

@Entity({ name: 'plans' })
export class PlanEntity {
  @PrimaryGeneratedColumn('uuid')
  id: string;

  @Column({ type: 'varchar', length: 100 })
  name: string;

  @Column({ type: 'varchar', length: 1000, nullable: true })
  description: string | null;

  /** KRW, whole won. Never changes: a new price is a new plan. */
  @Column({ type: 'bigint', transformer: bigintNumber })
  amount: number;

  @Column({ name: 'tax_free_amount', type: 'bigint', transformer: bigintNumber })
  taxFreeAmount: number;

  @Column({ type: 'char', length: 3 })
  currency: 'KRW';

  @Column({ type: 'varchar', length: 8 })
  interval: BillingInterval;

  @Column({ name: 'interval_count', type: 'integer' })
  intervalCount: number;

  @Column({ name: 'trial_days', type: 'integer' })
  trialDays: number;

  @Column({ name: 'charge_mode', type: 'varchar', length: 16 })
  chargeMode: ChargeMode;

  @Column({ type: 'boolean' })
  active: boolean;

  @Column({ name: 'created_at', type: 'timestamptz' })
  createdAt: Date;

  @Column({ name: 'updated_at', type: 'timestamptz' })
  updatedAt: Date;
}
