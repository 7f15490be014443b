import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { IsBoolean, IsIn, IsInt, IsISO8601, IsString, IsUUID, Matches, Max, MaxLength, Min } from 'class-validator';
import { PageQueryDto } from '../../common/pagination';
import { IsMetadata, IsPlainText, Optional } from '../../common/validators';
import { PAYMENT_STATUSES, PaymentResponseDto } from '../../payments/payment.dto';
import type { PaymentStatus } from '../../payments/payment.entity';
import type { SubscriptionStatus } from '../subscription.entity';

export const SUBSCRIPTION_STATUSES: SubscriptionStatus[] = ['incomplete', 'trialing', 'active', 'past_due', 'paused', 'canceled', 'unpaid'];

export class CreateSubscriptionDto {
  @ApiProperty({ format: 'uuid' })
  @IsUUID('all', { message: 'customer_id must be a UUID' })
  customer_id: string;

  @ApiProperty({ format: 'uuid' })
  @IsUUID('all', { message: 'plan_id must be a UUID' })
  plan_id: string;

  @ApiProperty({ format: 'uuid', description: "One of the customer's active billing keys" })
  @IsUUID('all', { message: 'billing_key_id must be a UUID' })
  billing_key_id: string;

  @ApiPropertyOptional({ example: '2026-02-01T00:00:00+09:00', description: 'A future start; the first charge falls due then' })
  @Optional()
  @IsISO8601({ strict: true }, { message: 'start_at must be an ISO-8601 date-time' })
  start_at?: string;

  @ApiPropertyOptional({ type: 'object', additionalProperties: { type: 'string', maxLength: 500 }, maxProperties: 20, example: { seat_count: '5' } })
  @Optional()
  @IsMetadata()
  metadata?: Record<string, string>;
}

export class ListSubscriptionsQueryDto extends PageQueryDto {
  @ApiPropertyOptional({ format: 'uuid' })
  @Optional()
  @IsUUID('all', { message: 'customer_id must be a UUID' })
  customer_id?: string;

  @ApiPropertyOptional({ enum: SUBSCRIPTION_STATUSES })
  @Optional()
  @IsIn(SUBSCRIPTION_STATUSES, { message: `status must be one of ${SUBSCRIPTION_STATUSES.join(', ')}` })
  status?: SubscriptionStatus;

  @ApiPropertyOptional({ description: 'Dunning stage: the number of failed attempts so far (0 to 20)', example: '2' })
  @Optional()
  @Matches(/^([0-9]|1[0-9]|20)$/, { message: 'dunning_attempts must be a whole number from 0 to 20' })
  dunning_attempts?: string;
}

export class RefundCreditDto {
  @ApiPropertyOptional({ example: 5000, description: 'Whole won, at most the credit balance; omitted: all of it' })
  @Optional()
  @IsInt({ message: 'amount must be a whole number of won' })
  @Min(1, { message: 'amount must be at least 1' })
  @Max(100_000_000, { message: 'amount must be at most 100000000' })
  amount?: number;

  @ApiProperty({ example: 'customer asked for the credit back' })
  @IsString()
  @MaxLength(500)
  @IsPlainText()
  reason: string;
}

export class ReasonDto {
  @ApiPropertyOptional({ example: 'customer asked by phone' })
  @Optional()
  @IsString()
  @MaxLength(500)
  @IsPlainText()
  reason?: string;
}

export class CancelSubscriptionDto {
  @ApiProperty({ example: false, description: 'true: at the end of the current period; false: now' })
  @IsBoolean({ message: 'at_period_end must be true or false' })
  at_period_end: boolean;

  @ApiProperty({ example: 'customer requested' })
  @IsString()
  @MaxLength(500)
  @IsPlainText()
  reason: string;

  @ApiPropertyOptional({ example: false, description: 'With at_period_end false: refund the unused part of the paid period (prorated, whole won)' })
  @Optional()
  @IsBoolean({ message: 'refund_unused must be true or false' })
  refund_unused?: boolean;
}

export class PauseSubscriptionDto {
  @ApiProperty({ example: 'customer travelling' })
  @IsString()
  @MaxLength(500)
  @IsPlainText()
  reason: string;

  @ApiPropertyOptional({ example: '2026-03-01T00:00:00+09:00', description: 'Resumes by itself then' })
  @Optional()
  @IsISO8601({ strict: true }, { message: 'resume_at must be an ISO-8601 date-time' })
  resume_at?: string;
}

export class ChangePlanDto {
  @ApiProperty({ format: 'uuid' })
  @IsUUID('all', { message: 'plan_id must be a UUID' })
  plan_id: string;

  @ApiProperty({ enum: ['now', 'period_end'] })
  @IsIn(['now', 'period_end'], { message: 'proration must be now or period_end' })
  proration: 'now' | 'period_end';

  @ApiPropertyOptional()
  @Optional()
  @IsString()
  @MaxLength(500)
  @IsPlainText()
  reason?: string;
}

export class SwapBillingKeyDto {
  @ApiProperty({ format: 'uuid' })
  @IsUUID('all', { message: 'billing_key_id must be a UUID' })
  billing_key_id: string;

  @ApiPropertyOptional()
  @Optional()
  @IsString()
  @MaxLength(500)
  @IsPlainText()
  reason?: string;
}

export class PaymentSummaryFailureDto {
  @ApiProperty({ example: 'card_declined' }) code: string;
  @ApiProperty({ nullable: true, type: String }) pg_code: string | null;
  @ApiProperty() message: string;
}

export class PaymentSummaryDto {
  @ApiProperty({ format: 'uuid' }) id: string;
  @ApiProperty({ enum: PAYMENT_STATUSES }) status: PaymentStatus;
  @ApiProperty({ type: 'integer' }) amount: number;
  @ApiProperty({ nullable: true, type: PaymentSummaryFailureDto }) failure: PaymentSummaryFailureDto | null;
}

export class SubscriptionPauseDto {
  @ApiProperty({ format: 'date-time' }) paused_at: string;
  @ApiProperty({ nullable: true, type: String }) reason: string | null;
  @ApiProperty({ nullable: true, type: String, format: 'date-time', description: 'Resumes by itself then' }) resume_at: string | null;
}

export class DunningFailureDto {
  @ApiProperty() code: string;
  @ApiProperty({ nullable: true, type: String }) message: string | null;
}

export class SubscriptionDunningDto {
  @ApiProperty({ type: 'integer', description: 'Failed charges of the current period' }) attempts: number;
  @ApiProperty({ nullable: true, type: String, format: 'date-time' }) next_retry_at: string | null;
  @ApiProperty({ nullable: true, type: String, format: 'date-time' }) past_due_since: string | null;
  @ApiProperty({ nullable: true, type: DunningFailureDto }) last_failure: DunningFailureDto | null;
}

export class SubscriptionResponseDto {
  @ApiProperty({ format: 'uuid' }) id: string;
  @ApiProperty({ format: 'uuid' }) customer_id: string;
  @ApiProperty({ format: 'uuid' }) plan_id: string;
  @ApiProperty({ format: 'uuid' }) billing_key_id: string;
  @ApiProperty({ enum: SUBSCRIPTION_STATUSES }) status: SubscriptionStatus;
  @ApiProperty({ format: 'date-time' }) anchor_at: string;
  @ApiProperty({ nullable: true, type: String, format: 'date-time' }) current_period_start: string | null;
  @ApiProperty({ nullable: true, type: String, format: 'date-time' }) current_period_end: string | null;
  @ApiProperty({ nullable: true, type: String, format: 'date-time' }) next_charge_at: string | null;
  @ApiProperty({ nullable: true, type: String, format: 'date-time' }) trial_end: string | null;
  @ApiProperty() cancel_at_period_end: boolean;
  @ApiProperty({ nullable: true, type: String, format: 'date-time' }) canceled_at: string | null;
  @ApiProperty({ nullable: true, type: String }) cancel_reason: string | null;
  @ApiProperty({ nullable: true, type: String, format: 'date-time' }) ended_at: string | null;
  @ApiProperty({ nullable: true, type: SubscriptionPauseDto }) pause: SubscriptionPauseDto | null;
  @ApiProperty({ nullable: true, type: String, format: 'uuid' }) pending_plan_id: string | null;
  @ApiProperty({ type: 'integer', description: "Won owed to the customer (a downgrade's credit), applied to the next charges before the card" })
  credit_balance: number;
  @ApiProperty({ type: SubscriptionDunningDto }) dunning: SubscriptionDunningDto;
  @ApiProperty({ type: 'object', additionalProperties: { type: 'string' } }) metadata: Record<string, string>;
  @ApiPropertyOptional({
    type: PaymentSummaryDto,
    nullable: true,
    description: 'The newest payment (null before the first); absent in lists',
  })
  latest_payment?: PaymentSummaryDto | null;
  @ApiProperty({ format: 'date-time' }) created_at: string;
  @ApiProperty({ format: 'date-time' }) updated_at: string;
  @ApiPropertyOptional({
    type: PaymentResponseDto,
    description: 'A change-plan whose prorated charge has no answer yet (202): the payment, UNKNOWN until Bootpay is asked',
  })
  pending_payment?: PaymentResponseDto;
}
