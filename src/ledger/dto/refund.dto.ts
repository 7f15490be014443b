import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { IsInt, IsString, Max, MaxLength, Min, ValidateIf } from 'class-validator';
import { IsPlainText } from '../../common/validators';
import { REFUND_STATUSES, RefundStatus } from '../refund.entity';

/** The largest amount a plan (and so a payment) may have. */
export const MAX_AMOUNT = 100_000_000;

export class CreateRefundDto {
  @ApiPropertyOptional({ example: 3000, description: 'KRW, whole won. Omitted: the whole remaining balance' })
  // Not @IsOptional: an explicit null must not silently mean "refund everything".
  @ValidateIf((o: CreateRefundDto) => o.amount !== undefined)
  @IsInt({ message: 'amount must be a whole number of won' })
  @Min(1, { message: 'amount must be at least 1 won' })
  @Max(MAX_AMOUNT, { message: `amount must not exceed ${MAX_AMOUNT}` })
  amount?: number;

  @ApiPropertyOptional({
    example: 0,
    description: 'Tax-free part (면세) of the refund, whole won. Omitted: split in proportion to the remaining balance (all of it for a full refund)',
  })
  @ValidateIf((o: CreateRefundDto) => o.tax_free_amount !== undefined)
  @IsInt({ message: 'tax_free_amount must be a whole number of won' })
  @Min(0, { message: 'tax_free_amount must not be negative' })
  @Max(MAX_AMOUNT, { message: `tax_free_amount must not exceed ${MAX_AMOUNT}` })
  tax_free_amount?: number;

  @ApiProperty({ example: 'customer complained about an outage' })
  @IsString({ message: 'reason must be a string' })
  @MaxLength(500)
  @IsPlainText()
  reason: string;
}

export class RefundFailureDto {
  @ApiProperty() code: string;
  @ApiProperty({ nullable: true, type: String }) pg_code: string | null;
  @ApiProperty({ nullable: true, type: String }) message: string | null;
}

export class RefundRequesterDto {
  @ApiProperty({ nullable: true, type: String, format: 'uuid', description: 'null for a refund the service made itself or learnt from Bootpay' })
  api_key_id: string | null;
  @ApiProperty() name: string;
}

export class RefundResponseDto {
  @ApiProperty({ format: 'uuid' }) id: string;
  @ApiProperty({ format: 'uuid' }) payment_id: string;
  @ApiProperty({ format: 'uuid' }) subscription_id: string;
  @ApiProperty({ example: 'KRW' }) currency: 'KRW';
  @ApiProperty({ type: 'integer', example: 3000 }) amount: number;
  @ApiProperty({ type: 'integer', example: 0 }) tax_free_amount: number;
  @ApiProperty({
    type: 'integer',
    example: 273,
    description:
      "VAT of the refunded amount: the payment's VAT share of the taxable amount refunded so far (rounded half up once for the payment's refunds together) less the VAT of earlier refunds; the refund that empties the payment takes the VAT left, so a payment's refunds add up to its VAT",
  })
  vat: number;
  @ApiProperty({ type: 'integer', example: 2727 }) supply_amount: number;
  @ApiProperty() reason: string;
  @ApiProperty({ enum: ['service', 'bootpay'], description: 'service: asked of this service; bootpay: made at Bootpay (its console), learnt from its receipt' })
  source: 'service' | 'bootpay';
  @ApiProperty({ enum: REFUND_STATUSES, description: 'unknown: sent to Bootpay without an answer; resolved by re-sending the same cancel_id' })
  status: RefundStatus;
  @ApiProperty({ example: 'rf_0c4e6f0e2b7d4a1c9b0e5f6a7b8c9d0e', description: "Bootpay's cancel_id" }) cancel_id: string;
  @ApiProperty({ nullable: true, type: RefundFailureDto }) failure: RefundFailureDto | null;
  @ApiProperty({ type: RefundRequesterDto }) requested_by: RefundRequesterDto;
  @ApiProperty({ type: 'integer' }) attempts: number;
  @ApiProperty({ format: 'date-time' }) created_at: string;
  @ApiProperty({ format: 'date-time' }) updated_at: string;
  @ApiProperty({ nullable: true, type: String, format: 'date-time' }) completed_at: string | null;
}
