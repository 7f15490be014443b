import { Module } from '@nestjs/common';
import { LedgerModule } from '../ledger/ledger.module';
import { RefundsController } from './refunds.controller';

/** The refunds API; refunds are made and settled by the ledger. */
@Module({
  imports: [LedgerModule],
  controllers: [RefundsController],
})
export class RefundsModule {}
