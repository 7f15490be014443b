import { ApiKeyEntity } from '../auth/api-key.entity';
import { BillingKeyEntity } from '../billing-keys/billing-key.entity';
import { CustomerEntity } from '../customers/customer.entity';
import { IdempotencyKeyEntity } from '../idempotency/idempotency-key.entity';
import { PaymentEntity } from '../payments/payment.entity';
import { ChargeRunEntity } from '../charging/charge-run.entity';
import { WebhookDeliveryEntity, WebhookEndpointEntity, WebhookEventEntity } from '../outbound-webhooks/webhook.entities';
import { PlanEntity } from '../plans/plan.entity';
import { RefundEntity } from '../ledger/refund.entity';
import { SubscriptionEventEntity } from '../ledger/subscription-event.entity';
import { SubscriptionEntity } from '../ledger/subscription.entity';

/** Every entity, listed explicitly (no globbing: the same list works from ts and from dist). */
export const ENTITIES = [
  ApiKeyEntity,
  CustomerEntity,
  BillingKeyEntity,
  IdempotencyKeyEntity,
  PlanEntity,
  SubscriptionEntity,
  SubscriptionEventEntity,
  PaymentEntity,
  ChargeRunEntity,
  WebhookEndpointEntity,
  WebhookEventEntity,
  WebhookDeliveryEntity,
  RefundEntity,
];
