import { Column, Entity, PrimaryGeneratedColumn } from 'typeorm';
import { bigintNumber } from '../common/transformers';

export type SubscriptionStatus = 'incomplete' | 'trialing' | 'active' | 'past_due' | 'paused' | 'canceled' | 'unpaid';

/** Every status but canceled: the subscription still holds its billing key and may be charged again. */
export const LIVE_STATUSES: SubscriptionStatus[] = ['incomplete', 'trialing', 'active', 'past_due', 'paused', 'unpaid'];

@Entity({ name: 'subscriptions' })
export class SubscriptionEntity {
  @PrimaryGeneratedColumn('uuid') id: string;
  @Column({ name: 'customer_id', type: 'uuid' }) customerId: string;
  @Column({ name: 'plan_id', type: 'uuid' }) planId: string;
  @Column({ name: 'billing_key_id', type: 'uuid' }) billingKeyId: string;
  @Column({ type: 'varchar', length: 16 }) status: SubscriptionStatus;
  /** Periods are computed from this instant in the business time zone (see billing-math/periods). */
  @Column({ name: 'anchor_at', type: 'timestamptz' }) anchorAt: Date;
  /** Index of the current period from the anchor; -1 before the first paid period (trial or future start). */
  @Column({ name: 'period_index', type: 'integer' }) periodIndex: number;
  @Column({ name: 'current_period_start', type: 'timestamptz', nullable: true }) currentPeriodStart: Date | null;
  @Column({ name: 'current_period_end', type: 'timestamptz', nullable: true }) currentPeriodEnd: Date | null;
  @Column({ name: 'trial_end', type: 'timestamptz', nullable: true }) trialEnd: Date | null;
  @Column({ name: 'next_charge_at', type: 'timestamptz', nullable: true }) nextChargeAt: Date | null;
  @Column({ name: 'cancel_at_period_end', type: 'boolean' }) cancelAtPeriodEnd: boolean;
  @Column({ name: 'cancel_reason', type: 'varchar', length: 500, nullable: true }) cancelReason: string | null;
  @Column({ name: 'canceled_at', type: 'timestamptz', nullable: true }) canceledAt: Date | null;
  @Column({ name: 'ended_at', type: 'timestamptz', nullable: true }) endedAt: Date | null;
  @Column({ name: 'paused_at', type: 'timestamptz', nullable: true }) pausedAt: Date | null;
  @Column({ name: 'pause_reason', type: 'varchar', length: 500, nullable: true }) pauseReason: string | null;
  @Column({ name: 'resume_at', type: 'timestamptz', nullable: true }) resumeAt: Date | null;
  @Column({ name: 'pending_plan_id', type: 'uuid', nullable: true }) pendingPlanId: string | null;
  /** Won owed to the customer (a downgrade's credit), applied to the next charges before the card. */
  @Column({ name: 'credit_balance', type: 'bigint', transformer: bigintNumber }) creditBalance: number;
  @Column({ name: 'dunning_attempts', type: 'integer' }) dunningAttempts: number;
  @Column({ name: 'next_retry_at', type: 'timestamptz', nullable: true }) nextRetryAt: Date | null;
  @Column({ name: 'past_due_since', type: 'timestamptz', nullable: true }) pastDueSince: Date | null;
  @Column({ name: 'last_failure_code', type: 'varchar', length: 64, nullable: true }) lastFailureCode: string | null;
  @Column({ name: 'last_failure_message', type: 'varchar', length: 500, nullable: true }) lastFailureMessage: string | null;
  @Column({ name: 'locked_by', type: 'varchar', length: 64, nullable: true }) lockedBy: string | null;
  @Column({ name: 'locked_until', type: 'timestamptz', nullable: true }) lockedUntil: Date | null;
  @Column({ type: 'jsonb' }) metadata: Record<string, string>;
  @Column({ name: 'event_seq', type: 'integer' }) eventSeq: number;
  @Column({ name: 'created_at', type: 'timestamptz' }) createdAt: Date;
  @Column({ name: 'updated_at', type: 'timestamptz' }) updatedAt: Date;
}
