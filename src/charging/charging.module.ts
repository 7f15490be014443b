import { Module } from '@nestjs/common';
import { BillingKeysModule } from '../billing-keys/billing-keys.module';
import { LedgerModule } from '../ledger/ledger.module';
import { PlansModule } from '../plans/plans.module';
import { ConsentsModule } from '../consents/consents.module';
import { ReservationsController } from './reservations.controller';
import { ChargeRunCron } from './charge-run.cron';
import { ChargeRunsController } from './charge-runs.controller';
import { ChargeRunsService } from './charge-runs.service';

@Module({
  imports: [LedgerModule, BillingKeysModule, PlansModule, ConsentsModule],
  controllers: [ChargeRunsController, ReservationsController],
  providers: [ChargeRunsService, ChargeRunCron],
  exports: [ChargeRunsService],
})
export class ChargingModule {}
