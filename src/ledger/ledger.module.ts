import { Module } from '@nestjs/common';
import { BillingKeysModule } from '../billing-keys/billing-keys.module';
import { PlansModule } from '../plans/plans.module';
import { ChargeAttemptsService } from './charge-attempts.service';
import { EncryptionKeyCheck } from './encryption-key.check';
import { FinanceFlagsController } from './finance-flags.controller';
import { FinanceFlagsService } from './finance-flags.service';
import { RefundsService } from './refunds.service';
import { ReservationsService } from './reservations.service';
import { SubscriptionEventsService } from './subscription-events.service';
import { SubscriptionsService } from './subscriptions.service';

/**
 * The ledger: the one owner of money state. It alone writes subscriptions, payments, refunds, the audit trail and
 * the outbox, every subscription change decided by its transition authority (transitions.ts). Controllers, the
 * charge run, Bootpay's webhook and the console call down into it; it calls down into the gateway, billing keys and
 * plans, and never back up.
 */
@Module({
  imports: [BillingKeysModule, PlansModule],
  controllers: [FinanceFlagsController],
  providers: [
    SubscriptionsService,
    ChargeAttemptsService,
    ReservationsService,
    RefundsService,
    SubscriptionEventsService,
    FinanceFlagsService,
    EncryptionKeyCheck,
  ],
  exports: [SubscriptionsService, ChargeAttemptsService, ReservationsService, RefundsService, SubscriptionEventsService, FinanceFlagsService],
})
export class LedgerModule {}
