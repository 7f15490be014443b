import { Column, Entity, PrimaryGeneratedColumn } from 'typeorm';

/** The audit trail: who did what to a subscription, why, when, and its state before and after. */
@Entity({ name: 'subscription_events' })
export class SubscriptionEventEntity {
  @PrimaryGeneratedColumn('uuid') id: string;
  /** Global order of events (the clock may stand still in tests; this never does). */
  @Column({ type: 'bigint', insert: false, update: false, transformer: { to: (v: number) => v, from: (v: string) => Number(v) } }) seq: number;
  @Column({ name: 'subscription_id', type: 'uuid' }) subscriptionId: string;
  @Column({ type: 'varchar', length: 64 }) type: string;
  @Column({ name: 'actor_type', type: 'varchar', length: 16 }) actorType: 'api_key' | 'operator' | 'system';
  @Column({ name: 'actor_id', type: 'varchar', length: 64, nullable: true }) actorId: string | null;
  @Column({ name: 'actor_name', type: 'varchar', length: 100, nullable: true }) actorName: string | null;
  @Column({ type: 'varchar', length: 500, nullable: true }) reason: string | null;
  @Column({ type: 'jsonb', nullable: true }) before: Record<string, unknown> | null;
  @Column({ type: 'jsonb', nullable: true }) after: Record<string, unknown> | null;
  @Column({ type: 'jsonb', nullable: true }) data: Record<string, unknown> | null;
  @Column({ name: 'created_at', type: 'timestamptz' }) createdAt: Date;
}
