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

export class PaymentResponseDto {
  @ApiProperty() id: string;
  @ApiProperty() subscription_id: string;
  @ApiProperty() customer_id: string;
  @ApiProperty() billing_key_id: string;
  @ApiProperty({ enum: ['period', 'proration'] }) kind: 'period' | 'proration';
  @ApiProperty() order_id: string;
  @ApiProperty() order_name: string;
  @ApiProperty({ nullable: true, type: String }) receipt_id: string | null;
  @ApiProperty({ nullable: true, type: String }) reserve_id: string | null;
  @ApiProperty({ example: 'KRW' }) currency: 'KRW';
  @ApiProperty({ example: 11000 }) amount: number;
  @ApiProperty({ example: 0 }) tax_free_amount: number;
  @ApiProperty({ example: 1000 }) vat: number;
  @ApiProperty({ example: 10000 }) supply_amount: number;
  @ApiProperty({ example: 11000, description: 'What can still be refunded' }) balance_amount: number;
  @ApiProperty({ enum: PAYMENT_STATUSES }) status: PaymentStatus;
  @ApiProperty() attempt: number;
  @ApiProperty({ type: Object }) period: { index: number; start: string; end: string };
  @ApiProperty() plan_id: string;
  @ApiProperty({ nullable: true, type: Object }) failure: { code: string; pg_code: string | null; message: string | null; hard: boolean | null } | null;
  @ApiProperty({ nullable: true, type: Object }) card: { company: string | null; number_masked: string | null } | null;
  @ApiProperty({ nullable: true, type: String }) receipt_url: string | null;
  @ApiProperty({ nullable: true, type: String }) charge_run_id: string | null;
  @ApiProperty({ nullable: true, type: String, description: 'Why an approved payment was not applied to its subscription (it is refunded); null when applied' })
  not_applied: string | null;
  @ApiProperty({ description: "The subscription's credit used for this charge, on top of amount (charged at the card)" }) credit_applied: number;
  @ApiProperty({
    nullable: true,
    type: String,
    description: 'The consent this charge relied on (paid conversion or price increase); null when none was needed',
  })
  consent_id: string | null;
  @ApiProperty() requested_at: string;
  @ApiProperty({ nullable: true, type: String }) approved_at: string | null;
  @ApiProperty({ nullable: true, type: String }) canceled_at: string | null;
  @ApiProperty() created_at: string;
  @ApiProperty() updated_at: string;
}
