import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { ArrayMaxSize, ArrayMinSize, IsArray, IsBoolean, IsIn, IsString, IsUrl, MaxLength } from 'class-validator';
import { Optional } from '../common/validators';
import { PageQueryDto } from '../common/pagination';
import { OUTBOUND_EVENT_TYPES } from './outbox.service';

const EVENT_CHOICES = ['*', ...OUTBOUND_EVENT_TYPES];

export class CreateWebhookEndpointDto {
  @ApiProperty({
    example: 'https://saas.example.com/hooks/billing',
    format: 'uri',
    maxLength: 2000,
    description: 'An http or https URL on a public address (loopback, private and link-local addresses are refused unless OUTBOUND_WEBHOOKS_ALLOW_PRIVATE)',
  })
  @IsString()
  @MaxLength(2000)
  @IsUrl({ protocols: ['http', 'https'], require_protocol: true, require_tld: false }, { message: 'url must be an http or https URL' })
  url: string;

  @ApiPropertyOptional({ maxLength: 500 })
  @Optional()
  @IsString()
  @MaxLength(500)
  description?: string;

  @ApiPropertyOptional({
    example: ['*'],
    description: `Event types, or ["*"] for all: ${OUTBOUND_EVENT_TYPES.join(', ')}`,
    isArray: true,
    enum: EVENT_CHOICES,
    minItems: 1,
    maxItems: 20,
  })
  @Optional()
  @IsArray()
  @ArrayMinSize(1)
  @ArrayMaxSize(20)
  @IsIn(EVENT_CHOICES, { each: true, message: `events must hold event types (${OUTBOUND_EVENT_TYPES.join(', ')}) or *` })
  events?: string[];
}

export class UpdateWebhookEndpointDto {
  @ApiPropertyOptional({ format: 'uri', maxLength: 2000, description: 'As in create: a public http or https URL' })
  @Optional()
  @IsString()
  @MaxLength(2000)
  @IsUrl({ protocols: ['http', 'https'], require_protocol: true, require_tld: false }, { message: 'url must be an http or https URL' })
  url?: string;

  @ApiPropertyOptional({ maxLength: 500 })
  @Optional()
  @IsString()
  @MaxLength(500)
  description?: string;

  @ApiPropertyOptional({ isArray: true, enum: EVENT_CHOICES, minItems: 1, maxItems: 20 })
  @Optional()
  @IsArray()
  @ArrayMinSize(1)
  @ArrayMaxSize(20)
  @IsIn(EVENT_CHOICES, { each: true, message: `events must hold event types (${OUTBOUND_EVENT_TYPES.join(', ')}) or *` })
  events?: string[];

  @ApiPropertyOptional()
  @Optional()
  @IsBoolean()
  active?: boolean;
}

export class ListDeliveriesQueryDto extends PageQueryDto {
  @ApiPropertyOptional({ enum: ['pending', 'delivered', 'failed'] })
  @Optional()
  @IsIn(['pending', 'delivered', 'failed'], { message: 'status must be pending, delivered or failed' })
  status?: 'pending' | 'delivered' | 'failed';
}
