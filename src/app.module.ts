import { DynamicModule, Module } from '@nestjs/common';
import { APP_INTERCEPTOR } from '@nestjs/core';
import { TypeOrmModule } from '@nestjs/typeorm';
import { AuthModule } from './auth/auth.module';
import { BillingKeysModule } from './billing-keys/billing-keys.module';
import { CoreModule } from './core.module';
import { CustomersModule } from './customers/customers.module';
import { dataSourceOptions } from './database/database';
import { PoolGuard } from './database/pool-guard';
import { PoolShare } from './database/pool-share';
import { HealthModule } from './health/health.module';
import { IdempotencyInterceptor } from './idempotency/idempotency.interceptor';
import { Runtime } from './config/runtime';
import { TestClockModule } from './test-clock/test-clock.module';
import { PlansModule } from './plans/plans.module';
import { SubscriptionsModule } from './subscriptions/subscriptions.module';
import { ChargingModule } from './charging/charging.module';
import { PaymentsModule } from './payments/payments.module';
import { WebhooksModule } from './webhooks/webhooks.module';
import { OutboundWebhooksModule } from './outbound-webhooks/outbound-webhooks.module';
import { ReportsModule } from './reports/reports.module';
import { RefundsModule } from './refunds/refunds.module';
import { ConsoleModule } from './console/console.module';
import { ConsentsModule } from './consents/consents.module';
import { MetricsModule } from './metrics/metrics.module';

@Module({})
export class AppModule {
  static forRoot(runtime: Runtime): DynamicModule {
    return {
      module: AppModule,
      imports: [
        CoreModule.forRoot(runtime),
        TypeOrmModule.forRoot(dataSourceOptions(runtime.databaseUrl, runtime.config.databasePoolSize)),
        AuthModule,
        OutboundWebhooksModule,
        HealthModule,
        CustomersModule,
        BillingKeysModule,
        PlansModule,
        SubscriptionsModule,
        PaymentsModule,
        ChargingModule,
        WebhooksModule,
        ReportsModule,
        RefundsModule,
        ConsoleModule,
        ConsentsModule,
        MetricsModule,
        ...(runtime.config.testEndpoints ? [TestClockModule] : []),
      ],
      providers: [{ provide: APP_INTERCEPTOR, useClass: IdempotencyInterceptor }, PoolGuard, PoolShare],
    };
  }
}
