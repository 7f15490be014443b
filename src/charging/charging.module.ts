import { Module } from '@nestjs/common';
import { BillingKeysModule } from '../billing-keys/billing-keys.module';
import { SubscriptionsModule } from '../subscriptions/subscriptions.module';
import { PlansModule } from '../plans/plans.module';
import { RefundsModule } from '../refunds/refunds.module';
import { ReservationsController } from './reservations.controller';
import { ChargeRunCron } from './charge-run.cron';
import { ChargeRunsController } from './charge-runs.controller';
import { ChargeRunsService } from './charge-runs.service';

@Module({
  imports: [SubscriptionsModule, BillingKeysModule, PlansModule, RefundsModule],
  controllers: [ChargeRunsController, ReservationsController],
  providers: [ChargeRunsService, ChargeRunCron],
  exports: [ChargeRunsService],
})
export class ChargingModule {}
