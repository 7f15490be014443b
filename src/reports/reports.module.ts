import { Module } from '@nestjs/common';
import { ReconciliationRunsController } from './reconciliation-runs.controller';
import { ReconciliationRunsService } from './reconciliation-runs.service';
import { ReconciliationCron } from './reconciliation.cron';
import { ReportsController } from './reports.controller';
import { ReportsService } from './reports.service';

@Module({
  controllers: [ReportsController, ReconciliationRunsController],
  providers: [ReportsService, ReconciliationRunsService, ReconciliationCron],
  exports: [ReconciliationRunsService],
})
export class ReportsModule {}
