import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { IsIn, IsUUID } from 'class-validator';
import { Optional } from '../common/validators';
import { PageQueryDto } from '../common/pagination';
import type { PaymentStatus } from './payment.entity';

export const PAYMENT_STATUSES: PaymentStatus[] = ['READY', 'IN_PROGRESS', 'UNKNOWN', 'DONE', 'ABORTED', 'CANCELED', 'PARTIAL_CANCELED'];

export class ListPaymentsQueryDto extends PageQueryDto {
  @ApiPropertyOptional({ format: 'uuid' })
  @Optional()
  @IsUUID('all', { message: 'subscription_id must be a UUID' })
  subscription_id?: string;

  @ApiPropertyOptional({ format: 'uuid' })
  @Optional()
  @IsUUID('all', { message: 'customer_id must be a UUID' })
  customer_id?: string;

  @ApiPropertyOptional({ enum: PAYMENT_STATUSES })
  @Optional()
  @IsIn(PAYMENT_STATUSES, { message: `status must be one of ${PAYMENT_STATUSES.join(', ')}` })
  status?: PaymentStatus;
}

export class PaymentPeriodDto {
  @ApiProperty({ type: 'integer', description: 'The period of the subscription this payment pays (0 for the first)' }) index: number;
  @ApiProperty({ format: 'date-time' }) start: string;
  @ApiProperty({ format: 'date-time' }) end: string;
}

export class PaymentFailureDto {
  @ApiProperty({ example: 'card_declined' }) code: string;
  @ApiProperty({ nullable: true, type: String }) pg_code: string | null;
  @ApiProperty({ nullable: true, type: String }) message: string | null;
  @ApiProperty({ nullable: true, type: Boolean, description: 'A hard decline: retrying will not help' }) hard: boolean | null;
}

export class PaymentCardDto {
  @ApiProperty({ nullable: true, type: String, example: '신한' }) company: string | null;
  @ApiProperty({ nullable: true, type: String, example: '457973******1234' }) number_masked: string | null;
}

export class PaymentResponseDto {
  @ApiProperty({ format: 'uuid' }) id: string;
  @ApiProperty({ format: 'uuid' }) subscription_id: string;
  @ApiProperty({ format: 'uuid' }) customer_id: string;
  @ApiProperty({ format: 'uuid' }) billing_key_id: string;
  @ApiProperty({ enum: ['period', 'proration'] }) kind: 'period' | 'proration';
  @ApiProperty() order_id: string;
  @ApiProperty() order_name: string;
  @ApiProperty({ nullable: true, type: String }) receipt_id: string | null;
  @ApiProperty({ nullable: true, type: String }) reserve_id: string | null;
  @ApiProperty({ example: 'KRW' }) currency: 'KRW';
  @ApiProperty({ type: 'integer', example: 11000 }) amount: number;
  @ApiProperty({ type: 'integer', example: 0 }) tax_free_amount: number;
  @ApiProperty({ type: 'integer', example: 1000 }) vat: number;
  @ApiProperty({ type: 'integer', example: 10000 }) supply_amount: number;
  @ApiProperty({ type: 'integer', example: 11000, description: 'What can still be refunded' }) balance_amount: number;
  @ApiProperty({ enum: PAYMENT_STATUSES }) status: PaymentStatus;
  @ApiProperty({ type: 'integer', description: 'The charge attempt of the period (2 and on are retries)' }) attempt: number;
  @ApiProperty({ type: PaymentPeriodDto }) period: PaymentPeriodDto;
  @ApiProperty({ format: 'uuid' }) plan_id: string;
  @ApiProperty({ nullable: true, type: PaymentFailureDto }) failure: PaymentFailureDto | null;
  @ApiProperty({ nullable: true, type: PaymentCardDto }) card: PaymentCardDto | null;
  @ApiProperty({ nullable: true, type: String }) receipt_url: string | null;
  @ApiProperty({ nullable: true, type: String, format: 'uuid' }) charge_run_id: string | null;
  @ApiProperty({ nullable: true, type: String, description: 'Why an approved payment was not applied to its subscription (it is refunded); null when applied' })
  not_applied: string | null;
  @ApiProperty({ type: 'integer', description: "The subscription's credit used for this charge, on top of amount (charged at the card)" })
  credit_applied: number;
  @ApiProperty({
    nullable: true,
    type: String,
    description: 'The consent this charge relied on (paid conversion or price increase); null when none was needed',
  })
  consent_id: string | null;
  @ApiProperty({ format: 'date-time' }) requested_at: string;
  @ApiProperty({ nullable: true, type: String, format: 'date-time' }) approved_at: string | null;
  @ApiProperty({ nullable: true, type: String, format: 'date-time' }) canceled_at: string | null;
  @ApiProperty({ format: 'date-time' }) created_at: string;
  @ApiProperty({ format: 'date-time' }) updated_at: string;
}
