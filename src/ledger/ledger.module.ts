import { Module } from '@nestjs/common';
import { BillingKeysModule } from '../billing-keys/billing-keys.module';
import { PlansModule } from '../plans/plans.module';
import { ChargeAttemptsService } from './charge-attempts.service';
import { ApplyReceiptAction } from './charge-attempts/apply-receipt';
import { ChargeEffects } from './charge-attempts/charge-effects';
import { OpenAttemptAction } from './charge-attempts/open-attempt';
import { ResolveOpenAction } from './charge-attempts/resolve-open';
import { SendChargeAction } from './charge-attempts/send-charge';
import { SettleBatchAction } from './charge-attempts/settle-batch';
import { SettleChargeAction } from './charge-attempts/settle-charge';
import { EncryptionKeyCheck } from './encryption-key.check';
import { FinanceFlagsController } from './finance-flags.controller';
import { FinanceFlagsService } from './finance-flags.service';
import { RefundsService } from './refunds.service';
import { RecordOwedRefund } from './refunds/record-owed';
import { RefundReads } from './refunds/refund-reads';
import { RequestRefundAction } from './refunds/request-refund';
import { ResolveUnknownRefunds } from './refunds/resolve-unknown';
import { RefundCancelSender } from './refunds/send-cancel';
import { RefundSettlement } from './refunds/settle-refund';
import { PaymentReceiptSync } from './refunds/sync-from-receipt';
import { ReservationsService } from './reservations.service';
import { SubscriptionEventsService } from './subscription-events.service';
import { SubscriptionsService } from './subscriptions.service';
import { CancelSubscriptionAction } from './subscriptions/cancel-subscription';
import { ChangePlanAction } from './subscriptions/change-plan';
import { CreateSubscriptionAction } from './subscriptions/create-subscription';
import { PauseResumeAction } from './subscriptions/pause-resume-subscription';
import { RetryChargeAction } from './subscriptions/retry-charge';
import { SubscriptionWriter } from './subscriptions/subscription-writer';
import { SwapBillingKeyAction } from './subscriptions/swap-billing-key';

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
    SubscriptionWriter,
    CreateSubscriptionAction,
    CancelSubscriptionAction,
    PauseResumeAction,
    ChangePlanAction,
    SwapBillingKeyAction,
    RetryChargeAction,
    ChargeAttemptsService,
    ChargeEffects,
    OpenAttemptAction,
    SendChargeAction,
    SettleChargeAction,
    SettleBatchAction,
    ResolveOpenAction,
    ApplyReceiptAction,
    ReservationsService,
    RefundsService,
    RefundReads,
    RequestRefundAction,
    ResolveUnknownRefunds,
    RefundCancelSender,
    RefundSettlement,
    PaymentReceiptSync,
    RecordOwedRefund,
    SubscriptionEventsService,
    FinanceFlagsService,
    EncryptionKeyCheck,
  ],
  exports: [SubscriptionsService, ChargeAttemptsService, ReservationsService, RefundsService, SubscriptionEventsService, FinanceFlagsService],
})
export class LedgerModule {}
