import { Body, Controller, Get, HttpCode, Param, Patch, Post, Query } from '@nestjs/common';
import { ApiBearerAuth, ApiCreatedResponse, ApiOkResponse, ApiOperation, ApiTags } from '@nestjs/swagger';
import { Roles } from '../auth/auth.decorators';
import { PageQueryDto } from '../common/pagination';
import { UuidPipe } from '../common/uuid.pipe';
import { NoBodyPipe } from '../common/no-body.pipe';
import {
  CreateWebhookEndpointDto,
  ListDeliveriesQueryDto,
  UpdateWebhookEndpointDto,
  WebhookDeliveryResponseDto,
  WebhookEndpointResponseDto,
  WebhookEndpointWithSecretResponseDto,
} from './webhook-endpoints.dto';
import { WebhookEndpointsService } from './webhook-endpoints.service';

@ApiTags('webhook-endpoints')
@ApiBearerAuth()
@Roles('admin')
@Controller('v1')
export class WebhookEndpointsController {
  constructor(private readonly endpoints: WebhookEndpointsService) {}

  @Post('webhook-endpoints')
  @ApiCreatedResponse({ type: WebhookEndpointWithSecretResponseDto })
  @ApiOperation({ summary: 'Add an endpoint; the answer shows its signing secret once' })
  create(@Body() dto: CreateWebhookEndpointDto) {
    return this.endpoints.create(dto);
  }

  @Get('webhook-endpoints')
  list(@Query() q: PageQueryDto) {
    return this.endpoints.list(q);
  }

  @Get('webhook-endpoints/:id')
  @ApiOkResponse({ type: WebhookEndpointResponseDto })
  get(@Param('id', UuidPipe) id: string) {
    return this.endpoints.get(id);
  }

  @Patch('webhook-endpoints/:id')
  @ApiOkResponse({ type: WebhookEndpointResponseDto })
  update(@Param('id', UuidPipe) id: string, @Body() dto: UpdateWebhookEndpointDto) {
    return this.endpoints.update(id, dto);
  }

  @Post('webhook-endpoints/:id/rotate-secret')
  @HttpCode(200)
  @ApiOkResponse({ type: WebhookEndpointWithSecretResponseDto })
  rotate(@Param('id', UuidPipe) id: string, @Body(NoBodyPipe) _body: Record<string, never>) {
    return this.endpoints.rotateSecret(id);
  }

  @Get('webhook-endpoints/:id/deliveries')
  deliveries(@Param('id', UuidPipe) id: string, @Query() q: ListDeliveriesQueryDto) {
    return this.endpoints.deliveries(id, q);
  }

  @Post('webhook-deliveries/:id/resend')
  @HttpCode(200)
  @ApiOkResponse({ type: WebhookDeliveryResponseDto })
  resend(@Param('id', UuidPipe) id: string, @Body(NoBodyPipe) _body: Record<string, never>) {
    return this.endpoints.resend(id);
  }
}
