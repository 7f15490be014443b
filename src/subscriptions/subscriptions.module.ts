import { Module } from '@nestjs/common';
import { BillingKeysModule } from '../billing-keys/billing-keys.module';
import { PlansModule } from '../plans/plans.module';
import { RefundsModule } from '../refunds/refunds.module';
import { ChargeAttemptsService } from '../charging/charge-attempts.service';
import { ReservationsService } from '../charging/reservations.service';
import { SubscriptionEventsService } from './subscription-events.service';
import { SubscriptionsController } from './subscriptions.controller';
import { SubscriptionsService } from './subscriptions.service';
import { FinanceFlagsService } from '../ledger/finance-flags.service';
import { FinanceFlagsController } from '../ledger/finance-flags.controller';
import { EncryptionKeyCheck } from '../ledger/encryption-key.check';

@Module({
  imports: [BillingKeysModule, RefundsModule, PlansModule],
  controllers: [SubscriptionsController, FinanceFlagsController],
  providers: [SubscriptionsService, SubscriptionEventsService, ChargeAttemptsService, ReservationsService, FinanceFlagsService, EncryptionKeyCheck],
  exports: [SubscriptionsService, SubscriptionEventsService, ChargeAttemptsService, ReservationsService, FinanceFlagsService],
})
export class SubscriptionsModule {}
