import { Global, Module } from '@nestjs/common';
import { OutboxService } from './outbox.service';
import { WebhookDispatcher } from './webhook-dispatcher.service';
import { WebhookEndpointsController } from './webhook-endpoints.controller';
import { WebhookEndpointsService } from './webhook-endpoints.service';

@Global()
@Module({
  controllers: [WebhookEndpointsController],
  providers: [OutboxService, WebhookDispatcher, WebhookEndpointsService],
  exports: [OutboxService, WebhookDispatcher],
})
export class OutboundWebhooksModule {}
