import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { IsEmail, IsString, Length, Matches, MaxLength, ValidateIf } from 'class-validator';
import { PageQueryDto } from '../../common/pagination';
import { IsMetadata, IsPlainText, KOREAN_PHONE, Optional } from '../../common/validators';

export class CreateCustomerDto {
  @ApiProperty({ example: 'user_42', description: "The SaaS's own id for this customer; unique" })
  @IsString()
  @Length(1, 128)
  @Matches(/^[A-Za-z0-9._:@-]+$/, { message: 'external_id may contain only letters, digits and . _ : @ -' })
  external_id: string;

  @ApiProperty({ example: '홍길동' })
  @IsString()
  @MaxLength(100)
  @IsPlainText()
  name: string;

  @ApiPropertyOptional({ example: 'gildong@example.com' })
  @Optional()
  @IsString()
  @MaxLength(320)
  @IsEmail({}, { message: 'email must be an email address' })
  email?: string;

  @ApiPropertyOptional({ example: '010-1234-5678' })
  @Optional()
  @IsString()
  @Matches(KOREAN_PHONE, { message: 'phone must be a Korean phone number such as 010-1234-5678 or +82-10-1234-5678' })
  phone?: string;

  @ApiPropertyOptional({ type: 'object', additionalProperties: { type: 'string', maxLength: 500 }, maxProperties: 20, example: { team: 'growth' } })
  @Optional()
  @IsMetadata()
  metadata?: Record<string, string>;
}

export class UpdateCustomerDto {
  @ApiPropertyOptional({ example: '홍길동' })
  @Optional()
  @IsString()
  @MaxLength(100)
  @IsPlainText()
  name?: string;

  @ApiPropertyOptional({ type: String, format: 'email', example: 'gildong@example.com', nullable: true, description: 'null clears it' })
  @ValidateIf((o: UpdateCustomerDto) => o.email !== null && o.email !== undefined)
  @IsString()
  @MaxLength(320)
  @IsEmail({}, { message: 'email must be an email address' })
  email?: string | null;

  @ApiPropertyOptional({ type: String, example: '010-1234-5678', nullable: true, description: 'null clears it' })
  @ValidateIf((o: UpdateCustomerDto) => o.phone !== null && o.phone !== undefined)
  @IsString()
  @Matches(KOREAN_PHONE, { message: 'phone must be a Korean phone number such as 010-1234-5678 or +82-10-1234-5678' })
  phone?: string | null;

  @ApiPropertyOptional({ type: 'object', additionalProperties: { type: 'string', maxLength: 500 }, maxProperties: 20, example: { team: 'growth' } })
  @Optional()
  @IsMetadata()
  metadata?: Record<string, string>;
}

export class ListCustomersQueryDto extends PageQueryDto {
  @ApiPropertyOptional({ example: 'user_42' })
  @Optional()
  @IsString()
  @Length(1, 128)
  external_id?: string;
}

export class CustomerResponseDto {
  @ApiProperty({ format: 'uuid' }) id: string;
  @ApiProperty() external_id: string;
  @ApiProperty() name: string;
  @ApiProperty({ nullable: true, type: String }) email: string | null;
  @ApiProperty({ nullable: true, type: String }) phone: string | null;
  @ApiProperty({ type: 'object', additionalProperties: { type: 'string' } }) metadata: Record<string, string>;
  @ApiProperty({ format: 'date-time' }) created_at: string;
  @ApiProperty({ format: 'date-time' }) updated_at: string;
}
