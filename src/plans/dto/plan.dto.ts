import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { IsBoolean, IsIn, IsInt, IsString, Max, MaxLength, Min, ValidateIf } from 'class-validator';
import { BILLING_INTERVALS, BillingInterval, MAX_INTERVAL_COUNTS } from '../../billing-math';
import { PageQueryDto } from '../../common/pagination';
import { IsPlainText, Optional } from '../../common/validators';
import type { ChargeMode } from '../plan.entity';

export const MAX_AMOUNT = 100_000_000;

/** The longest period a plan may have, per interval unit (10 years). */
/** The same bounds as the billing math's (one list): a plan accepted here is always billable. */
export const MAX_INTERVAL_COUNT: Readonly<Record<BillingInterval, number>> = MAX_INTERVAL_COUNTS;

export class CreatePlanDto {
  @ApiProperty({ example: 'Pro monthly' })
  @IsString()
  @MaxLength(100)
  @IsPlainText()
  name: string;

  @ApiPropertyOptional({ example: 'Everything in Pro, billed monthly' })
  @Optional()
  @IsString()
  @MaxLength(1000)
  description?: string;

  @ApiProperty({ example: 11000, description: 'KRW, whole won, VAT included' })
  @IsInt({ message: 'amount must be a whole number of won' })
  @Min(1)
  @Max(MAX_AMOUNT)
  amount: number;

  @ApiPropertyOptional({ example: 0, default: 0, description: 'Tax-free part of amount (면세), whole won' })
  @Optional()
  @IsInt({ message: 'tax_free_amount must be a whole number of won' })
  @Min(0)
  @Max(MAX_AMOUNT)
  tax_free_amount?: number;

  @ApiPropertyOptional({ example: 'KRW', default: 'KRW', enum: ['KRW'] })
  @Optional()
  @IsIn(['KRW'], { message: 'currency must be KRW' })
  currency?: 'KRW';

  @ApiProperty({ example: 'month', enum: BILLING_INTERVALS })
  @IsIn(BILLING_INTERVALS as unknown as string[], { message: 'interval must be one of day, week, month, year' })
  interval: BillingInterval;

  @ApiPropertyOptional({ example: 1, default: 1 })
  @Optional()
  @IsInt()
  @Min(1)
  @Max(3650)
  interval_count?: number;

  @ApiPropertyOptional({ example: 14, default: 0 })
  @Optional()
  @IsInt()
  @Min(0)
  @Max(730)
  trial_days?: number;

  @ApiPropertyOptional({ example: 'scheduler', enum: ['scheduler', 'reservation'], default: 'scheduler' })
  @Optional()
  @IsIn(['scheduler', 'reservation'], { message: 'charge_mode must be scheduler or reservation' })
  charge_mode?: ChargeMode;
}

export class UpdatePlanDto {
  @ApiPropertyOptional()
  @Optional()
  @IsString()
  @MaxLength(100)
  @IsPlainText()
  name?: string;

  @ApiPropertyOptional({ type: String, maxLength: 1000, nullable: true, description: 'null clears it' })
  @ValidateIf((o: UpdatePlanDto) => o.description !== null && o.description !== undefined)
  @IsString()
  @MaxLength(1000)
  description?: string | null;

  @ApiPropertyOptional()
  @Optional()
  @IsBoolean()
  active?: boolean;
}

export class ListPlansQueryDto extends PageQueryDto {
  @ApiPropertyOptional({ enum: ['true', 'false'] })
  @Optional()
  @IsIn(['true', 'false'], { message: 'active must be true or false' })
  active?: 'true' | 'false';
}

export class PlanResponseDto {
  @ApiProperty({ format: 'uuid' }) id: string;
  @ApiProperty() name: string;
  @ApiProperty({ nullable: true, type: String }) description: string | null;
  @ApiProperty({ type: 'integer', example: 11000 }) amount: number;
  @ApiProperty({ type: 'integer', example: 0 }) tax_free_amount: number;
  @ApiProperty({ type: 'integer', example: 1000, description: '(amount - tax_free_amount) / 11, rounded half up' }) vat: number;
  @ApiProperty({ type: 'integer', example: 10000, description: 'amount - tax_free_amount - vat' }) supply_amount: number;
  @ApiProperty({ example: 'KRW' }) currency: 'KRW';
  @ApiProperty({ enum: BILLING_INTERVALS }) interval: BillingInterval;
  @ApiProperty({ type: 'integer' }) interval_count: number;
  @ApiProperty({ type: 'integer' }) trial_days: number;
  @ApiProperty({ enum: ['scheduler', 'reservation'] }) charge_mode: ChargeMode;
  @ApiProperty() active: boolean;
  @ApiProperty({ format: 'date-time' }) created_at: string;
  @ApiProperty({ format: 'date-time' }) updated_at: string;
}
