import { ApiProperty } from '@nestjs/swagger';

export class ChargeRunCountsDto {
  @ApiProperty({ type: 'integer', description: 'Subscriptions due when the run started' }) due: number;
  @ApiProperty({ type: 'integer' }) charged: number;
  @ApiProperty({ type: 'integer' }) failed: number;
  @ApiProperty({ type: 'integer', description: 'Charges sent without an answer (UNKNOWN until Bootpay is asked)' }) unknown: number;
  @ApiProperty({ type: 'integer' }) skipped: number;
  @ApiProperty({ type: 'integer' }) resolved: number;
  @ApiProperty({ type: 'integer' }) canceled: number;
  @ApiProperty({ type: 'integer' }) resumed: number;
  @ApiProperty({ type: 'integer' }) local_faults: number;
  @ApiProperty({ type: 'integer' }) task_failures: number;
}

export class ChargeRunResponseDto {
  @ApiProperty({ format: 'uuid' }) id: string;
  @ApiProperty({ enum: ['cron', 'manual', 'cli'] }) trigger: 'cron' | 'manual' | 'cli';
  @ApiProperty({ enum: ['running', 'completed', 'failed', 'interrupted'] }) status: 'running' | 'completed' | 'failed' | 'interrupted';
  @ApiProperty({ nullable: true, type: String, format: 'date-time' }) scheduled_for: string | null;
  @ApiProperty({ nullable: true, type: String }) requested_by: string | null;
  @ApiProperty({ format: 'date-time' }) as_of: string;
  @ApiProperty({ type: ChargeRunCountsDto }) counts: ChargeRunCountsDto;
  @ApiProperty({ nullable: true, type: String }) error: string | null;
  @ApiProperty({ format: 'date-time' }) started_at: string;
  @ApiProperty({ nullable: true, type: String, format: 'date-time' }) finished_at: string | null;
}

export class ReservationBudgetDto {
  @ApiProperty({ type: 'integer', example: 10 }) limit: number;
  @ApiProperty({ type: 'integer' }) used: number;
  @ApiProperty({ type: 'integer' }) available: number;
}

export class ReservationPeriodDto {
  @ApiProperty({ format: 'date-time' }) start: string;
  @ApiProperty({ format: 'date-time' }) end: string;
}

export class ReservationDto {
  @ApiProperty({ format: 'uuid' }) payment_id: string;
  @ApiProperty({ format: 'uuid' }) subscription_id: string;
  @ApiProperty({ nullable: true, type: String, description: "Bootpay's reserve_id; null until the reservation is confirmed" }) reserve_id: string | null;
  @ApiProperty() confirmed: boolean;
  @ApiProperty() order_id: string;
  @ApiProperty({ type: 'integer' }) amount: number;
  @ApiProperty({ type: 'integer' }) tax_free_amount: number;
  @ApiProperty({ nullable: true, type: String, format: 'date-time' }) execute_at: string | null;
  @ApiProperty({ type: ReservationPeriodDto }) period: ReservationPeriodDto;
}

export class BillingKeyReservationsResponseDto {
  @ApiProperty({ format: 'uuid' }) billing_key_id: string;
  @ApiProperty({ type: ReservationBudgetDto }) budget: ReservationBudgetDto;
  @ApiProperty({ type: [ReservationDto] }) reservations: ReservationDto[];
}
