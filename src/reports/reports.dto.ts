import { ApiProperty, ApiPropertyOptional, ApiPropertyOptions } from '@nestjs/swagger';

/** What either side holds for a field: a string, a number or nothing (null). */
const SIDE: ApiPropertyOptions = { oneOf: [{ type: 'string' }, { type: 'number' }, { type: 'boolean' }], nullable: true };

/** One way the local ledger and Bootpay disagree. */
export class ReconciliationDifferenceDto {
  @ApiProperty({ enum: ['payment', 'reservation'] }) kind: 'payment' | 'reservation';
  @ApiProperty({ format: 'uuid', description: 'The payment' }) id: string;
  @ApiPropertyOptional({ nullable: true, type: String, description: 'On payment differences (and reservations Bootpay executed)' }) receipt_id?: string | null;
  @ApiPropertyOptional({ nullable: true, type: String, description: 'On reservation differences' }) reserve_id?: string | null;
  @ApiProperty({ example: 'amount' }) field: string;
  @ApiProperty({ ...SIDE, description: 'What the local ledger holds' }) local: unknown;
  @ApiProperty({ ...SIDE, description: 'What Bootpay holds (or why it could not be checked)' }) bootpay: unknown;
}

export class DayReconciliationDifferenceDto extends ReconciliationDifferenceDto {
  @ApiPropertyOptional({
    nullable: true,
    type: String,
    format: 'date-time',
    description: 'On payments of an earlier day: when Bootpay recorded the change (a cancel made in its console)',
  })
  bootpay_changed_at?: string | null;
}

export class ReconciliationReportDto {
  @ApiProperty({ example: '2026-01-15' }) date: string;
  @ApiProperty({ example: 'Asia/Seoul' }) time_zone: string;
  @ApiProperty({ format: 'date-time' }) from: string;
  @ApiProperty({ format: 'date-time' }) to: string;
  @ApiProperty({ type: 'integer', description: 'Payments and reservations compared with Bootpay' }) checked: number;
  @ApiProperty({ type: 'integer' }) payments: number;
  @ApiProperty({ type: 'integer' }) reservations: number;
  @ApiProperty({ type: [DayReconciliationDifferenceDto] }) differences: DayReconciliationDifferenceDto[];
  @ApiProperty({ format: 'date-time' }) generated_at: string;
}

export class RecoveredByRetryDto {
  @ApiProperty({ type: 'integer' }) attempt: number;
  @ApiProperty({ type: 'integer' }) retry_step: number;
  @ApiProperty({ type: 'integer' }) payments: number;
  @ApiProperty({ type: 'integer' }) amount: number;
}

export class LastReconciliationRunDto {
  @ApiProperty({ format: 'uuid' }) id: string;
  @ApiProperty({ format: 'date-time' }) started_at: string;
  @ApiProperty({ type: 'integer' }) differences: number;
}

export class PersistentDifferenceDto {
  @ApiProperty({ format: 'uuid' }) id: string;
  @ApiProperty({ enum: ['payment', 'reservation'] }) kind: string;
  @ApiProperty({ format: 'uuid' }) object_id: string;
  @ApiProperty({ nullable: true, type: String }) receipt_id: string | null;
  @ApiProperty({ nullable: true, type: String }) reserve_id: string | null;
  @ApiProperty() field: string;
  @ApiProperty({ ...SIDE }) local: unknown;
  @ApiProperty({ ...SIDE }) bootpay: unknown;
  @ApiProperty({ format: 'date-time' }) first_seen_at: string;
  @ApiProperty({ format: 'date-time' }) last_seen_at: string;
  @ApiProperty({ type: 'integer' }) runs_seen: number;
}

export class ReconciliationStateDto {
  @ApiProperty({ type: LastReconciliationRunDto, nullable: true }) last_run: LastReconciliationRunDto | null;
  @ApiProperty({ type: [PersistentDifferenceDto] }) persistent_differences: PersistentDifferenceDto[];
}

export class SummaryReportDto {
  @ApiProperty({ example: 'KRW' }) currency: string;
  @ApiProperty({ type: 'integer', description: 'Monthly recurring revenue in won' }) mrr: number;
  @ApiProperty({ type: 'integer' }) active: number;
  @ApiProperty({ type: 'object', additionalProperties: { type: 'integer' }, example: { active: 3, canceled: 1 } }) counts_by_status: Record<string, number>;
  @ApiProperty({ type: 'integer' }) churned: number;
  @ApiProperty({ type: [RecoveredByRetryDto] }) recovered_by_retry: RecoveredByRetryDto[];
  @ApiProperty({ format: 'date-time' }) from: string;
  @ApiProperty({ format: 'date-time' }) to: string;
  @ApiProperty({ type: ReconciliationStateDto }) reconciliation: ReconciliationStateDto;
}

export class StoredDifferenceDto extends ReconciliationDifferenceDto {
  @ApiProperty({ format: 'uuid' }) subscription_id: string;
  @ApiProperty({ format: 'date-time' }) first_seen_at: string;
  @ApiProperty({ type: 'integer' }) runs_seen: number;
  @ApiProperty() persistent: boolean;
}

export class ReconciliationRunResponseDto {
  @ApiProperty({ format: 'uuid' }) id: string;
  @ApiProperty({ enum: ['cron', 'manual', 'cli'] }) trigger: 'cron' | 'manual' | 'cli';
  @ApiProperty({ enum: ['running', 'completed', 'failed'] }) status: 'running' | 'completed' | 'failed';
  @ApiProperty({ nullable: true, type: String, format: 'date-time' }) scheduled_for: string | null;
  @ApiProperty({ nullable: true, type: String }) requested_by: string | null;
  @ApiProperty({ type: 'object', properties: { from: { type: 'string', format: 'date-time' }, to: { type: 'string', format: 'date-time' } } })
  window: { from: string | null; to: string | null };
  @ApiProperty({ type: 'object', properties: { payments: { type: 'integer' }, reservations: { type: 'integer' } } })
  checked: { payments: number; reservations: number };
  @ApiProperty({
    type: 'object',
    properties: { differences: { type: 'integer' }, new: { type: 'integer' }, persistent: { type: 'integer' }, resolved: { type: 'integer' } },
  })
  counts: { differences: number; new: number; persistent: number; resolved: number };
  @ApiProperty({ type: [StoredDifferenceDto] }) differences: StoredDifferenceDto[];
  @ApiProperty({ nullable: true, type: String }) error: string | null;
  @ApiProperty({ type: String, format: 'date-time' }) started_at: string | null;
  @ApiProperty({ nullable: true, type: String, format: 'date-time' }) finished_at: string | null;
}
