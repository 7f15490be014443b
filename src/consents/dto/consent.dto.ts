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
