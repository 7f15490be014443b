import { Controller, Get, Logger, Req, Res, UseFilters, UseGuards } from '@nestjs/common';
import { ModuleRef } from '@nestjs/core';
import { ApiExcludeController } from '@nestjs/swagger';
import type { Response } from 'express';
import { Public } from '../auth/auth.decorators';
import { ChargeRunsService } from '../charging/charge-runs.service';
import { Clock } from '../common/clock';
import { DomainError, NotFoundError } from '../common/errors';
import { ReportsService } from '../reports/reports.service';
import { ConsoleExceptionFilter } from './console-exception.filter';
import { pageContext, sendHtml, str } from './console-pages';
import { ConsoleQueryService } from './console-query.service';
import { ConsoleRequest, ConsoleSessionGuard } from './console-session.guard';
import { fromSeoulInput, html, kstDate } from './html';
import { overviewPage } from './views/overview.view';
import { reconciliationPage, Reconciliation } from './views/reconciliation.view';
import { ChargeRunView } from './views/runs.view';

const DATE = /^\d{4}-\d{2}-\d{2}$/;
const RECONCILIATION_CACHE_MS = 5 * 60 * 1000;

/**
 * The finance console's overview and reconciliation screens (they share the cache of the reconciliation differences).
 * The other screens are in the console-*.controller.ts files beside this one, the helpers they share in
 * console-pages.ts. Routes are @Public for the API-key guard: the console session guard protects them instead, and API
 * keys cannot open them.
 */
@ApiExcludeController()
@Public()
@Controller('console')
@UseGuards(ConsoleSessionGuard)
@UseFilters(ConsoleExceptionFilter)
export class ConsoleController {
  private readonly logger = new Logger(ConsoleController.name);
  private readonly reconciliationCache = new Map<string, { at: number; differences: number }>();

  constructor(
    private readonly moduleRef: ModuleRef,
    private readonly queries: ConsoleQueryService,
    private readonly chargeRuns: ChargeRunsService,
    private readonly clock: Clock,
  ) {}

  /** Services of modules that do not export them, taken from those modules (one instance each). */
  private get reports(): ReportsService {
    return this.moduleRef.get(ReportsService, { strict: false });
  }

  // ------------------------------------------------------------------------------------------------------ overview

  @Get()
  async overview(@Req() req: ConsoleRequest, @Res() res: Response): Promise<void> {
    const [summary, stages, problems, flags, differences, runIds] = await Promise.all([
      this.reports.summary(),
      this.queries.pastDueByStage(),
      this.queries.problemCounts(),
      this.queries.openFinanceFlags(),
      this.queries.openReconciliationDifferences(),
      this.queries.lastRunIds(),
    ]);
    const run = async (id: string | null): Promise<ChargeRunView | null> => (id ? this.chargeRuns.map(await this.chargeRuns.get(id)) : null);
    const yesterday = kstDate(new Date(this.clock.now().getTime() - 24 * 3600_000));
    sendHtml(
      res,
      overviewPage(pageContext(req, 'overview'), {
        mrr: summary.mrr,
        countsByStatus: summary.counts_by_status as Record<string, number>,
        pastDueByStage: stages,
        lastRun: await run(runIds.last),
        lastCronRun: await run(runIds.lastCron),
        recovered: summary.recovered_by_retry,
        recoveredFrom: summary.from,
        recoveredTo: summary.to,
        unknownPayments: problems.unknownPayments,
        failedDeliveries: problems.failedDeliveries,
        flags,
        differences,
        reconciliationDate: yesterday,
      }),
    );
  }

  /** The overview's count of reconciliation differences (loaded after the page, since it asks Bootpay). */
  @Get('overview/reconciliation')
  async overviewReconciliation(@Req() req: ConsoleRequest, @Res() res: Response): Promise<void> {
    const date = str(req.query.date, 10);
    if (!DATE.test(date)) throw new NotFoundError('Date', date);
    let cached = this.reconciliationCache.get(date);
    if (!cached || Date.now() - cached.at > RECONCILIATION_CACHE_MS) {
      try {
        const report = await this.reports.reconciliation(date);
        cached = { at: Date.now(), differences: report.differences.length };
        this.reconciliationCache.set(date, cached);
      } catch (err) {
        this.logger.warn({ message: 'reconciliation for the overview failed', date, error_name: err instanceof Error ? err.name : typeof err });
        sendHtml(res, html`<span><a href="/console/reconciliation?date=${date}">확인하지 못했습니다. 대사 화면에서 다시 시도하세요.</a></span>`.value);
        return;
      }
    }
    sendHtml(
      res,
      html`<span><strong data-problem="reconciliation">${cached.differences}건</strong> <a href="/console/reconciliation?date=${date}">자세히</a></span>`.value,
    );
  }

  // ------------------------------------------------------------------------------------------------ reconciliation

  @Get('reconciliation')
  async reconciliation(@Req() req: ConsoleRequest, @Res() res: Response): Promise<void> {
    const given = str(req.query.date, 10);
    const date = given || kstDate(new Date(this.clock.now().getTime() - 24 * 3600_000));
    let report: Reconciliation | null = null;
    let error: string | null = null;
    if (!DATE.test(date) || !fromSeoulInput(date)) error = '날짜는 YYYY-MM-DD 형식이어야 합니다.';
    else if (given) {
      try {
        report = await this.reports.reconciliation(date);
        this.reconciliationCache.set(date, { at: Date.now(), differences: report.differences.length });
      } catch (err) {
        if (!(err instanceof DomainError)) throw err;
        error = `대사를 하지 못했습니다: ${err.message}`;
      }
    }
    sendHtml(res, reconciliationPage(pageContext(req, 'reconciliation'), date, report, error));
  }
}
