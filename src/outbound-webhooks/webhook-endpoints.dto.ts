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

export class WebhookEndpointResponseDto {
  @ApiProperty({ format: 'uuid' }) id: string;
  @ApiProperty({ format: 'uri' }) url: string;
  @ApiProperty({ nullable: true, type: String }) description: string | null;
  @ApiProperty({ type: [String], example: ['*'], description: 'Event types sent to this endpoint; ["*"] for all' }) events: string[];
  @ApiProperty() active: boolean;
  @ApiProperty({ format: 'date-time' }) created_at: string;
  @ApiProperty({ format: 'date-time' }) updated_at: string;
}

/** An endpoint as created or after its secret is rotated: the only answers that show the signing secret. */
export class WebhookEndpointWithSecretResponseDto extends WebhookEndpointResponseDto {
  @ApiProperty({ example: 'whsec_…', description: 'The signing secret; shown only in this answer' }) secret: string;
}

export class WebhookDeliveryEventDto {
  @ApiProperty({ format: 'uuid' }) id: string;
  @ApiPropertyOptional({ example: 'subscription.renewed', description: 'Absent when the event is no longer stored' }) type?: string;
  @ApiPropertyOptional({ nullable: true, type: Number, description: 'Grows per subscription' }) sequence?: number | null;
  @ApiPropertyOptional({ nullable: true, type: String, format: 'uuid' }) subscription_id?: string | null;
  @ApiPropertyOptional({ format: 'date-time' }) created_at?: string;
}

export class WebhookDeliveryResponseDto {
  @ApiProperty({ format: 'uuid' }) id: string;
  @ApiProperty({ format: 'uuid' }) endpoint_id: string;
  @ApiProperty({ type: WebhookDeliveryEventDto }) event: WebhookDeliveryEventDto;
  @ApiProperty({ enum: ['pending', 'delivered', 'failed'] }) status: 'pending' | 'delivered' | 'failed';
  @ApiProperty({ type: 'integer' }) attempts: number;
  @ApiProperty({ nullable: true, type: String, format: 'date-time' }) next_attempt_at: string | null;
  @ApiProperty({ nullable: true, type: 'integer' }) last_status_code: number | null;
  @ApiProperty({ nullable: true, type: String }) last_error: string | null;
  @ApiProperty({ nullable: true, type: String, format: 'date-time' }) delivered_at: string | null;
  @ApiProperty({ format: 'date-time' }) created_at: string;
}
