import { Module } from '@nestjs/common';
import { BillingKeysModule } from '../billing-keys/billing-keys.module';
import { PlansModule } from '../plans/plans.module';
import { RefundsModule } from '../refunds/refunds.module';
import { ChargeAttemptsService } from '../charging/charge-attempts.service';
import { ReservationsService } from '../charging/reservations.service';
import { SubscriptionEventsService } from './subscription-events.service';
import { SubscriptionsController } from './subscriptions.controller';
import { SubscriptionsService } from './subscriptions.service';

@Module({
  imports: [BillingKeysModule, RefundsModule, PlansModule],
  controllers: [SubscriptionsController],
  providers: [SubscriptionsService, SubscriptionEventsService, ChargeAttemptsService, ReservationsService],
  exports: [SubscriptionsService, SubscriptionEventsService, ChargeAttemptsService, ReservationsService],
})
export class SubscriptionsModule {}
