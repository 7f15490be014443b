import { Module } from '@nestjs/common';
import { ConsentsModule } from '../consents/consents.module';
import { LedgerModule } from '../ledger/ledger.module';
import { SubscriptionsController } from './subscriptions.controller';

/** The subscriptions API; every change goes through the ledger. */
@Module({
  imports: [LedgerModule, ConsentsModule],
  controllers: [SubscriptionsController],
})
export class SubscriptionsModule {}
