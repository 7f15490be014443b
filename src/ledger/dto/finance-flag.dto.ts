import { ApiProperty } from '@nestjs/swagger';

/** An item for finance: money that moved and was not applied, or a receipt that does not fit its payment. */
export class FinanceFlagResponseDto {
  @ApiProperty({ format: 'uuid' }) id: string;
  @ApiProperty({ enum: ['charge_not_applied', 'receipt_mismatch', 'refund_needed', 'refund_outside', 'reservation_unconfirmed'] }) kind: string;
  @ApiProperty({ nullable: true, type: String, format: 'uuid' }) subscription_id: string | null;
  @ApiProperty({ nullable: true, type: String, format: 'uuid' }) payment_id: string | null;
  @ApiProperty() message: string;
  @ApiProperty({ nullable: true, type: 'object', additionalProperties: true, description: 'Facts of the flag, by kind' }) data: Record<string, unknown> | null;
  @ApiProperty({ format: 'date-time' }) created_at: string;
  @ApiProperty({ nullable: true, type: String, format: 'date-time' }) resolved_at: string | null;
  @ApiProperty({ nullable: true, type: String }) resolved_by: string | null;
  @ApiProperty({ nullable: true, type: String }) resolution: string | null;
}

/** Finance flags, newest first, paged like every list (`limit`, `cursor`). */
export class FinanceFlagListResponseDto {
  @ApiProperty({ type: [FinanceFlagResponseDto] }) data: FinanceFlagResponseDto[];
  @ApiProperty() has_more: boolean;
  @ApiProperty({ nullable: true, type: String }) next_cursor: string | null;
}
