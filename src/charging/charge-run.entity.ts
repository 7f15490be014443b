import { Column, Entity, PrimaryGeneratedColumn } from 'typeorm';

export type ChargeRunTrigger = 'cron' | 'manual' | 'cli';
export type ChargeRunStatus = 'running' | 'completed' | 'failed' | 'interrupted';

@Entity({ name: 'charge_runs' })
export class ChargeRunEntity {
  @PrimaryGeneratedColumn('uuid') id: string;
  @Column({ type: 'varchar', length: 16 }) trigger: ChargeRunTrigger;
  @Column({ type: 'varchar', length: 16 }) status: ChargeRunStatus;
  @Column({ name: 'scheduled_for', type: 'timestamptz', nullable: true }) scheduledFor: Date | null;
  @Column({ name: 'requested_by', type: 'varchar', length: 100, nullable: true }) requestedBy: string | null;
  /** The service clock when the run started: subscriptions due by then are charged. */
  @Column({ name: 'as_of', type: 'timestamptz' }) asOf: Date;
  @Column({ type: 'varchar', length: 64 }) worker: string;
  @Column({ type: 'integer' }) due: number;
  @Column({ type: 'integer' }) charged: number;
  @Column({ type: 'integer' }) failed: number;
  @Column({ type: 'integer' }) unknown: number;
  @Column({ type: 'integer' }) skipped: number;
  @Column({ type: 'integer' }) resolved: number;
  @Column({ type: 'integer' }) canceled: number;
  @Column({ type: 'integer' }) resumed: number;
  @Column({ name: 'local_faults', type: 'integer' }) localFaults: number;
  @Column({ name: 'task_failures', type: 'integer' }) taskFailures: number;
  @Column({ type: 'varchar', length: 500, nullable: true }) error: string | null;
  @Column({ name: 'started_at', type: 'timestamptz' }) startedAt: Date;
  @Column({ name: 'finished_at', type: 'timestamptz', nullable: true }) finishedAt: Date | null;
  @Column({ name: 'heartbeat_at', type: 'timestamptz', insert: false }) heartbeatAt: Date;
}
