import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { IsIn, IsISO8601, IsString, IsUUID, Matches, MaxLength, MinLength } from 'class-validator';
import { IsPlainText, Optional } from '../../common/validators';

export const CONSENT_KINDS = ['trial_conversion', 'price_increase'] as const;

export class RecordConsentDto {
  @ApiProperty({ enum: CONSENT_KINDS, example: 'trial_conversion' })
  @IsIn(CONSENT_KINDS as unknown as string[], { message: 'kind must be one of trial_conversion, price_increase' })
  kind: (typeof CONSENT_KINDS)[number];

  @ApiProperty({ example: '2026-01-20T01:00:00.000Z', description: 'When the consumer agreed (not in the future)' })
  @IsISO8601({ strict: true }, { message: 'obtained_at must be an ISO-8601 date-time' })
  obtained_at: string;

  @ApiProperty({ example: 'web', description: 'Where the consumer agreed: web, app, email, sms, kakao, phone, …' })
  @IsString()
  @MinLength(1)
  @MaxLength(32)
  @Matches(/^[a-z0-9_.-]+$/, { message: 'channel must be lower-case letters, digits, _ . or -' })
  channel: string;

  @ApiProperty({
    example: 'notice v3 shown; consent id msg_8f2c; ip 203.0.113.7',
    description: 'A reference to the proof: the text version shown, an IP, a message id',
  })
  @IsString()
  @MinLength(1)
  @MaxLength(500)
  @IsPlainText()
  evidence: string;

  @ApiPropertyOptional({ description: 'price_increase: the plan migration consented to (required); not given for trial_conversion' })
  @Optional()
  @IsUUID('all', { message: 'change_id must be a UUID' })
  change_id?: string;
}

export class WithdrawConsentDto {
  @ApiPropertyOptional({ example: 'withdrawn by the customer in the app' })
  @Optional()
  @IsString()
  @MaxLength(500)
  @IsPlainText()
  reason?: string;
}

export class CreatePlanMigrationDto {
  @ApiProperty({ description: 'The plan the subscriptions move to' })
  @IsUUID('all', { message: 'to_plan_id must be a UUID' })
  to_plan_id: string;

  @ApiProperty({ example: '2026-03-01T00:00:00+09:00', description: 'Subscriptions switch at their first renewal on or after this instant' })
  @IsISO8601({ strict: true }, { message: 'effective_at must be an ISO-8601 date-time' })
  effective_at: string;
}

export class ConsentReportQueryDto {
  @ApiPropertyOptional({ description: 'Changes due before this instant (default: 30 days from now)' })
  @Optional()
  @IsISO8601({ strict: true }, { message: 'due_before must be an ISO-8601 date-time' })
  due_before?: string;
}

export class ConsentPaymentMethodDto {
  @ApiProperty({ format: 'uuid' }) billing_key_id: string;
  @ApiProperty({ nullable: true, type: String }) card_company: string | null;
  @ApiProperty({ nullable: true, type: String }) card_no_masked: string | null;
}

export class ConsentResponseDto {
  @ApiProperty({ format: 'uuid' }) id: string;
  @ApiProperty({ format: 'uuid' }) subscription_id: string;
  @ApiProperty({ enum: CONSENT_KINDS }) kind: (typeof CONSENT_KINDS)[number];
  @ApiProperty({ nullable: true, type: String, format: 'uuid', description: 'The plan migration of a price_increase consent' }) change_id: string | null;
  @ApiProperty({ format: 'date-time', description: 'When the paid conversion or the price increase takes effect' }) change_at: string;
  @ApiProperty({ format: 'date-time' }) window_opens_at: string;
  @ApiProperty({ nullable: true, type: String, format: 'uuid' }) plan_id_before: string | null;
  @ApiProperty({ format: 'uuid' }) plan_id_after: string;
  @ApiProperty({ type: 'integer' }) price_before: number;
  @ApiProperty({ type: 'integer' }) price_after: number;
  @ApiProperty({ type: ConsentPaymentMethodDto }) payment_method: ConsentPaymentMethodDto;
  @ApiProperty({ format: 'date-time' }) obtained_at: string;
  @ApiProperty() channel: string;
  @ApiProperty() evidence: string;
  @ApiProperty({ nullable: true, type: String }) recorded_by: string | null;
  @ApiProperty({ nullable: true, type: String, format: 'date-time' }) withdrawn_at: string | null;
  @ApiProperty({ nullable: true, type: String }) withdraw_reason: string | null;
  @ApiProperty({ enum: ['valid', 'too_early', 'after_change', 'withdrawn'] }) status: 'valid' | 'too_early' | 'after_change' | 'withdrawn';
  @ApiProperty({ description: 'Whether the consent counts for its change' }) counts: boolean;
  @ApiProperty({ format: 'date-time' }) created_at: string;
}

/** The consents of a subscription, oldest recorded first, paged like every list (`limit`, `cursor`). */
export class ConsentListResponseDto {
  @ApiProperty({ type: [ConsentResponseDto] }) data: ConsentResponseDto[];
  @ApiProperty() has_more: boolean;
  @ApiProperty({ nullable: true, type: String }) next_cursor: string | null;
}

export class PlanMigrationProgressDto {
  @ApiProperty({ type: 'integer' }) switched: number;
  @ApiProperty({ type: 'integer' }) ended: number;
  @ApiProperty({ type: 'integer' }) paused: number;
  @ApiProperty({ type: 'integer', description: 'Still on the old plan, with a consent recorded' }) consented_waiting_for_renewal: number;
  @ApiProperty({ type: 'integer' }) waiting_for_consent: number;
  @ApiProperty({ type: 'integer', description: 'Still on the old plan where no consent is needed' }) waiting_for_renewal: number;
}

export class PlanMigrationResponseDto {
  @ApiProperty({ format: 'uuid' }) id: string;
  @ApiProperty({ format: 'uuid' }) from_plan_id: string;
  @ApiProperty({ format: 'uuid' }) to_plan_id: string;
  @ApiProperty({ format: 'date-time' }) effective_at: string;
  @ApiProperty() requires_consent: boolean;
  @ApiProperty({ nullable: true, type: String }) created_by: string | null;
  @ApiProperty({ format: 'date-time' }) created_at: string;
  @ApiProperty({ type: PlanMigrationProgressDto }) progress: PlanMigrationProgressDto;
}

export class ConsentReportRowDto {
  @ApiProperty({ format: 'uuid' }) subscription_id: string;
  @ApiProperty({ format: 'uuid' }) customer_id: string;
  @ApiProperty({ enum: CONSENT_KINDS }) kind: (typeof CONSENT_KINDS)[number];
  @ApiProperty({ nullable: true, type: String, format: 'uuid' }) change_id: string | null;
  @ApiProperty({ format: 'date-time' }) change_at: string;
  @ApiProperty({ format: 'date-time' }) window_opens_at: string;
  @ApiProperty({ format: 'uuid' }) plan_id_before: string;
  @ApiProperty({ format: 'uuid' }) plan_id_after: string;
  @ApiProperty({ type: 'integer' }) price_before: number;
  @ApiProperty({ type: 'integer' }) price_after: number;
  @ApiProperty({ enum: ['not_required', 'valid', 'missing'] }) consent_status: 'not_required' | 'valid' | 'missing';
  @ApiProperty({ nullable: true, type: String, format: 'uuid' }) consent_id: string | null;
  @ApiProperty({ nullable: true, enum: ['cancel', 'pause'], description: 'What the renewal does without a consent; null when none is needed' })
  without_consent: 'cancel' | 'pause' | null;
}

export class ConsentReportResponseDto {
  @ApiProperty({ format: 'date-time' }) as_of: string;
  @ApiProperty({ format: 'date-time' }) due_before: string;
  @ApiProperty({ type: [ConsentReportRowDto] }) data: ConsentReportRowDto[];
}

export class ConsentNoticeCountsDto {
  @ApiProperty({ type: 'integer' }) consent_required: number;
  @ApiProperty({ type: 'integer' }) renewal_upcoming: number;
}
