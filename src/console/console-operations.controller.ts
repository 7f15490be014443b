import { Controller, Get, Param, Post, Req, Res, UseFilters, UseGuards } from '@nestjs/common';
import { ModuleRef } from '@nestjs/core';
import { ApiExcludeController } from '@nestjs/swagger';
import type { Response } from 'express';
import { Public } from '../auth/auth.decorators';
import { ChargeRunsService } from '../charging/charge-runs.service';
import { Clock } from '../common/clock';
import { WebhookEndpointsService } from '../outbound-webhooks/webhook-endpoints.service';
import { ConsoleExceptionFilter } from './console-exception.filter';
import { pageContext, pageNumber, sendHtml, str, uuidOr404 } from './console-pages';
import { ConsoleQueryService } from './console-query.service';
import { ConsoleRequest, ConsoleSessionGuard, FinanceOnly } from './console-session.guard';
import { runProgress, runsPage } from './views/runs.view';
import { webhooksPage } from './views/webhooks.view';

/** The console's charge runs (with a running run's progress) and the outbound webhook deliveries, with a resend. */
@ApiExcludeController()
@Public()
@Controller('console')
@UseGuards(ConsoleSessionGuard)
@UseFilters(ConsoleExceptionFilter)
export class ConsoleOperationsController {
  constructor(
    private readonly moduleRef: ModuleRef,
    private readonly queries: ConsoleQueryService,
    private readonly chargeRuns: ChargeRunsService,
    private readonly clock: Clock,
  ) {}

  /** Services of modules that do not export them, taken from those modules (one instance each). */
  private get webhookEndpoints(): WebhookEndpointsService {
    return this.moduleRef.get(WebhookEndpointsService, { strict: false });
  }

  // --------------------------------------------------------------------------------------------------- charge runs

  @Get('charge-runs')
  async runs(@Req() req: ConsoleRequest, @Res() res: Response): Promise<void> {
    const cursor = str(req.query.cursor, 200);
    const list = await this.chargeRuns.list({ limit: 20, ...(cursor ? { cursor } : {}) });
    sendHtml(res, runsPage(pageContext(req, 'runs'), list.data, list.next_cursor, this.clock.now()));
  }

  @Get('charge-runs/:id/progress')
  async runProgress(@Param('id') id: string, @Res() res: Response): Promise<void> {
    const run = this.chargeRuns.map(await this.chargeRuns.get(uuidOr404(id, 'Charge run')));
    res.setHeader('Cache-Control', 'no-store');
    sendHtml(res, runProgress(run, this.clock.now()).value);
  }

  // ------------------------------------------------------------------------------------------------------ webhooks

  @Get('webhooks')
  async webhooks(@Req() req: ConsoleRequest, @Res() res: Response): Promise<void> {
    const status = ['failed', 'pending', 'delivered'].includes(str(req.query.status, 20)) ? str(req.query.status, 20) : 'failed';
    const deliveries = await this.queries.deliveries({ status, page: pageNumber(req.query.page) });
    sendHtml(res, webhooksPage(pageContext(req, 'webhooks'), status, deliveries));
  }

  @Post('webhooks/deliveries/:id/resend')
  @FinanceOnly()
  async resend(@Param('id') id: string, @Res() res: Response): Promise<void> {
    await this.webhookEndpoints.resend(uuidOr404(id, 'Webhook delivery'));
    res.redirect(303, '/console/webhooks?status=pending&done=resent');
  }
}
