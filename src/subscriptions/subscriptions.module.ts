import { Module } from '@nestjs/common';
import { LedgerModule } from '../ledger/ledger.module';
import { SubscriptionsController } from './subscriptions.controller';

/** The subscriptions API; every change goes through the ledger. */
@Module({
  imports: [LedgerModule],
  controllers: [SubscriptionsController],
})
export class SubscriptionsModule {}
