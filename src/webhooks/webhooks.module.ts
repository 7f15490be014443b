import { Module } from '@nestjs/common';
import { SubscriptionsModule } from '../subscriptions/subscriptions.module';
import { BootpayWebhookController } from './bootpay-webhook.controller';
import { BootpayWebhookService } from './bootpay-webhook.service';

@Module({
  imports: [SubscriptionsModule],
  controllers: [BootpayWebhookController],
  providers: [BootpayWebhookService],
  exports: [BootpayWebhookService],
})
export class WebhooksModule {}
