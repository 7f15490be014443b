import { Module } from '@nestjs/common';
import { BillingKeysModule } from '../billing-keys/billing-keys.module';
import { LedgerModule } from '../ledger/ledger.module';
import { PlansModule } from '../plans/plans.module';
import { ConsentsModule } from '../consents/consents.module';
import { ReservationsController } from './reservations.controller';
import { ChargeRunCron } from './charge-run.cron';
import { ChargeRunsController } from './charge-runs.controller';
import { ChargeRunsService } from './charge-runs.service';
import { ClaimDueBatch } from './claim-due';
import { CancelLeftoverReservationsTask } from './tasks/cancel-leftover-reservations';
import { MarkInterruptedRunsTask } from './tasks/mark-interrupted-runs';
import { ResolveDueReservationsTask } from './tasks/resolve-due-reservations';
import { ResolveOpenAttemptsTask } from './tasks/resolve-open-attempts';
import { ResumeDuePausesTask } from './tasks/resume-due-pauses';
import { RunOutcomeCounter } from './tasks/run-task';
import { TopUpReservationsTask } from './tasks/top-up-reservations';

@Module({
  imports: [LedgerModule, BillingKeysModule, PlansModule, ConsentsModule],
  controllers: [ChargeRunsController, ReservationsController],
  providers: [
    ChargeRunsService,
    ChargeRunCron,
    RunOutcomeCounter,
    ClaimDueBatch,
    MarkInterruptedRunsTask,
    ResumeDuePausesTask,
    ResolveOpenAttemptsTask,
    ResolveDueReservationsTask,
    CancelLeftoverReservationsTask,
    TopUpReservationsTask,
  ],
  exports: [ChargeRunsService],
})
export class ChargingModule {}
