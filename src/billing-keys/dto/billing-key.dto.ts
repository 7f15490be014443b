import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { IsString, Length, Matches, ValidateIf } from 'class-validator';
import { Optional } from '../../common/validators';

const usesCard = (o: CreateBillingKeyDto) => o.receipt_id === undefined;

/**
 * Either `receipt_id` (a billing key issued by Bootpay's client SDK; the service looks the key up at Bootpay)
 * or card data, passed straight to Bootpay and never stored or logged.
 */
export class CreateBillingKeyDto {
  @ApiPropertyOptional({ example: '62b1b0d1d01c7e001d7d8f2a', description: 'receipt_id from the client SDK' })
  @Optional()
  @IsString()
  @Matches(/^[A-Za-z0-9_-]{6,64}$/, { message: 'receipt_id must be 6 to 64 letters, digits, _ or -' })
  receipt_id?: string;

  @ApiPropertyOptional({ example: 'nicepay', description: 'PG for REST (non-authenticated) billing' })
  @ValidateIf(usesCard)
  @IsString()
  @Length(1, 40)
  pg?: string;

  @ApiPropertyOptional({ example: '4111111111111111', description: 'Card number, digits only; never stored' })
  @ValidateIf(usesCard)
  @IsString()
  @Matches(/^\d{14,16}$/, { message: 'card_no must be 14 to 16 digits' })
  card_no?: string;

  @ApiPropertyOptional({ example: '12', description: 'First two digits of the card password' })
  @ValidateIf(usesCard)
  @IsString()
  @Matches(/^\d{2}$/, { message: 'card_pw must be the first 2 digits of the card password' })
  card_pw?: string;

  @ApiPropertyOptional({ example: '29', description: 'YY' })
  @ValidateIf(usesCard)
  @IsString()
  @Matches(/^\d{2}$/, { message: 'card_expire_year must be two digits (YY)' })
  card_expire_year?: string;

  @ApiPropertyOptional({ example: '12', description: 'MM' })
  @ValidateIf(usesCard)
  @IsString()
  @Matches(/^(0[1-9]|1[0-2])$/, { message: 'card_expire_month must be 01 to 12' })
  card_expire_month?: string;

  @ApiPropertyOptional({ example: '900101', description: 'Birth date YYMMDD, or a 10-digit business number' })
  @ValidateIf(usesCard)
  @IsString()
  @Matches(/^(\d{6}|\d{10})$/, { message: 'card_identity_no must be a birth date (YYMMDD) or a 10-digit business number' })
  card_identity_no?: string;
}

export class BillingKeyResponseDto {
  @ApiProperty({ format: 'uuid' }) id: string;
  @ApiProperty({ format: 'uuid' }) customer_id: string;
  @ApiProperty({ example: 'active', enum: ['active', 'deleting', 'deleted'] }) status: string;
  @ApiProperty({ nullable: true, type: String, example: '신한' }) card_company: string | null;
  @ApiProperty({ nullable: true, type: String, example: '457973******1234' }) card_no_masked: string | null;
  @ApiProperty({ nullable: true, type: String }) card_type: string | null;
  @ApiProperty({ nullable: true, type: String }) pg: string | null;
  @ApiProperty() bootpay_receipt_id: string;
  @ApiProperty({ nullable: true, type: String, format: 'date-time' }) issued_at: string | null;
  @ApiProperty({ nullable: true, type: String, format: 'date-time' }) expires_at: string | null;
  @ApiProperty({ nullable: true, type: String, format: 'date-time' }) deleted_at: string | null;
  @ApiProperty({ format: 'date-time' }) created_at: string;
  @ApiProperty({ format: 'date-time' }) updated_at: string;
}
