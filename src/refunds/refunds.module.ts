import { Module } from '@nestjs/common';
import { SubscriptionEventsService } from '../subscriptions/subscription-events.service';
import { RefundsController } from './refunds.controller';
import { RefundsService } from './refunds.service';

/**
 * Refunds. Depends only on global providers (database, clock, gateway, outbox) and its own audit writer, so the
 * subscriptions and charging modules can import it (cancel with refund_unused, the charge run's resolveUnknown)
 * without a cycle.
 */
@Module({
  controllers: [RefundsController],
  providers: [RefundsService, SubscriptionEventsService],
  exports: [RefundsService],
})
export class RefundsModule {}
