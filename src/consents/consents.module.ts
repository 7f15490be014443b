import { Module } from '@nestjs/common';
import { LedgerModule } from '../ledger/ledger.module';
import { PlansModule } from '../plans/plans.module';
import { ConsentNoticesCron } from './consent-notices.cron';
import { ConsentNoticesService } from './consent-notices.service';
import { ConsentsController } from './consents.controller';
import { ConsentsService } from './consents.service';
import { ConsentStore } from './consents/consent-store';
import { PlanMigrationsAction } from './consents/plan-migrations';
import { ReadConsentsQuery } from './consents/read-consents';
import { RecordConsentAction } from './consents/record-consent';
import { RenewalConsentCheck } from './consents/renewal-consent-check';

/**
 * Consent before a paid conversion or a price increase (전자상거래법 제13조 제6항): consents as records, plan
 * migrations, the notices, and the compliance report. It calls down into the ledger (the audit trail, the outbox);
 * the charge run asks it what to do at a renewal.
 */
@Module({
  imports: [LedgerModule, PlansModule],
  controllers: [ConsentsController],
  providers: [
    ConsentsService,
    ConsentStore,
    RecordConsentAction,
    ReadConsentsQuery,
    PlanMigrationsAction,
    RenewalConsentCheck,
    ConsentNoticesService,
    ConsentNoticesCron,
  ],
  exports: [ConsentsService, ConsentNoticesService],
})
export class ConsentsModule {}
