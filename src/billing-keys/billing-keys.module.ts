import { Module } from '@nestjs/common';
import { CustomersModule } from '../customers/customers.module';
import { BillingKeysController } from './billing-keys.controller';
import { BillingKeysService } from './billing-keys.service';

@Module({
  imports: [CustomersModule],
  controllers: [BillingKeysController],
  providers: [BillingKeysService],
  exports: [BillingKeysService],
})
export class BillingKeysModule {}
