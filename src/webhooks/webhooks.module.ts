import { Module } from '@nestjs/common';
import { LedgerModule } from '../ledger/ledger.module';
import { BootpayWebhookController } from './bootpay-webhook.controller';
import { BootpayWebhookService } from './bootpay-webhook.service';

@Module({
  imports: [LedgerModule],
  controllers: [BootpayWebhookController],
  providers: [BootpayWebhookService],
  exports: [BootpayWebhookService],
})
export class WebhooksModule {}
