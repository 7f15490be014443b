import { Controller, Get, Logger, Param, Post, Req, Res, UseFilters, UseGuards } from '@nestjs/common';
import { ModuleRef } from '@nestjs/core';
import { ApiExcludeController } from '@nestjs/swagger';
import type { Response } from 'express';
import { Public } from '../auth/auth.decorators';
import { splitTaxFree, vatOf } from '../billing-math';
import { ChargeRunsService } from '../charging/charge-runs.service';
import { Clock } from '../common/clock';
import { DomainError, NotFoundError } from '../common/errors';
import { WebhookEndpointsService } from '../outbound-webhooks/webhook-endpoints.service';
import { Operator, operatorActor } from '../operators/operators.service';
import { RefundsService } from '../ledger/refunds.service';
import { ReportsService } from '../reports/reports.service';
import { SubscriptionsService } from '../ledger/subscriptions.service';
import { ConsoleExceptionFilter } from './console-exception.filter';
import { ConsoleQueryService } from './console-query.service';
import { ConsoleRequest, ConsoleSessionGuard, FinanceOnly } from './console-session.guard';
import { fromSeoulInput, html, kstDate, won } from './html';
import { Notice, PageContext, Section } from './layout';
import { overviewPage } from './views/overview.view';
import { PAYMENT_STATUS_FILTERS, PaymentFilters, paymentPage, paymentsPage, refundableBalance, refundReviewPage } from './views/payments.view';
import { reconciliationPage, Reconciliation } from './views/reconciliation.view';
import { ChargeRunView, runProgress, runsPage } from './views/runs.view';
import { ActionReview, ConsoleAction, reviewPage, SubscriptionFilters, subscriptionPage, subscriptionsPage } from './views/subscriptions.view';
import { webhooksPage } from './views/webhooks.view';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const DATE = /^\d{4}-\d{2}-\d{2}$/;
const RECONCILIATION_CACHE_MS = 5 * 60 * 1000;

const DONE: Record<string, Notice> = {
  paused: { kind: 'ok', text: '구독을 일시정지했습니다.' },
  resumed: { kind: 'ok', text: '구독을 재개했습니다.' },
  canceled: { kind: 'ok', text: '구독을 해지했습니다.' },
  cancel_scheduled: { kind: 'ok', text: '현재 기간이 끝나면 해지되도록 예약했습니다.' },
  refunded: { kind: 'ok', text: '환불했습니다.' },
  refund_unknown: { kind: 'info', text: 'Bootpay의 환불 응답을 받지 못했습니다. 같은 환불을 다시 보내 결과를 확정합니다 (다음 청구 실행 때).' },
  resent: { kind: 'ok', text: '웹훅을 다시 보내도록 예약했습니다.' },
  password_changed: { kind: 'ok', text: '비밀번호를 바꿨습니다.' },
};

function str(v: unknown, max = 200): string {
  return typeof v === 'string' ? v.trim().slice(0, max) : '';
}

function pageNumber(v: unknown): number {
  const n = Number(str(v, 6));
  return Number.isSafeInteger(n) && n >= 1 && n <= 10000 ? n : 1;
}

function uuidOr404(id: string, what: string): string {
  if (!UUID.test(id)) throw new NotFoundError(what, id);
  return id;
}

/** A reason typed by the operator: required, at most 500 characters, no control characters. */
function reasonOf(v: unknown): string | null {
  const r = typeof v === 'string' ? v.trim().replace(/\r?\n/g, ' ') : '';
  // eslint-disable-next-line no-control-regex
  if (!r || r.length > 500 || /[\u0000-\u001f\u007f]/.test(r)) return null;
  return r;
}

function wholeWon(v: unknown): number | null | undefined {
  const s = str(v, 20).replace(/[,\s원]/g, '');
  if (s === '') return undefined;
  if (!/^\d{1,12}$/.test(s)) return null;
  const n = Number(s);
  return Number.isSafeInteger(n) ? n : null;
}

/** A DomainError as the operator sees it: the API's own message (for example the allowed statuses of a refusal). */
function refusal(err: DomainError): Notice {
  return { kind: 'error', text: `요청이 거부되었습니다: ${err.message}` };
}

/**
 * The finance console's screens. Reads go through the services (and read-only SQL where no service lists what a
 * screen needs); every action calls the same service method as the API, with the operator as the actor and the reason
 * the operator typed, after a review step. Routes are @Public for the API-key guard: the console session guard
 * protects them instead, and API keys cannot open them.
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
    private readonly subscriptions: SubscriptionsService,
    private readonly refunds: RefundsService,
    private readonly chargeRuns: ChargeRunsService,
    private readonly clock: Clock,
  ) {}

  /** Services of modules that do not export them, taken from those modules (one instance each). */
  private get reports(): ReportsService {
    return this.moduleRef.get(ReportsService, { strict: false });
  }

  private get webhookEndpoints(): WebhookEndpointsService {
    return this.moduleRef.get(WebhookEndpointsService, { strict: false });
  }

  private ctx(req: ConsoleRequest, section: Section, notice?: Notice | null): PageContext {
    const s = req.consoleSession!;
    const done = DONE[str(req.query.done, 40)];
    return { operator: s.operator, csrfToken: s.csrfToken, section, notice: notice ?? done ?? null };
  }

  private operator(req: ConsoleRequest): Operator {
    return req.consoleSession!.operator;
  }

  private send(res: Response, body: string, status = 200): void {
    res.status(status).type('html').send(body);
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
    this.send(
      res,
      overviewPage(this.ctx(req, 'overview'), {
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
        this.send(res, html`<span><a href="/console/reconciliation?date=${date}">확인하지 못했습니다. 대사 화면에서 다시 시도하세요.</a></span>`.value);
        return;
      }
    }
    this.send(
      res,
      html`<span><strong data-problem="reconciliation">${cached.differences}건</strong> <a href="/console/reconciliation?date=${date}">자세히</a></span>`.value,
    );
  }

  // ------------------------------------------------------------------------------------------------- subscriptions

  @Get('subscriptions')
  async subscriptionList(@Req() req: ConsoleRequest, @Res() res: Response): Promise<void> {
    const f: SubscriptionFilters = { q: str(req.query.q), status: str(req.query.status, 20), plan: str(req.query.plan, 40), stage: str(req.query.stage, 3) };
    const stage = /^\d{1,2}$/.test(f.stage) ? Number(f.stage) : undefined;
    const [plans, result] = await Promise.all([
      this.queries.plans(),
      this.queries.searchSubscriptions({
        q: f.q || undefined,
        status: /^[a-z_]{1,20}$/.test(f.status) ? f.status : undefined,
        planId: UUID.test(f.plan) ? f.plan : undefined,
        stage,
        page: pageNumber(req.query.page),
      }),
    ]);
    this.send(res, subscriptionsPage(this.ctx(req, 'subscriptions'), f, plans, result));
  }

  /**
   * A re-shown page (a refusal, a form to correct) answers 200 with the reason in the page: it is the page the
   * operator asked for, and browsers log any other status of a page as a console error.
   */
  private async renderSubscription(req: ConsoleRequest, res: Response, id: string, notice?: Notice | null): Promise<void> {
    const [sub, context, timeline] = await Promise.all([this.subscriptions.get(id), this.queries.subscriptionContext(id), this.queries.timeline(id)]);
    if (!context) throw new NotFoundError('Subscription', id);
    let shown = notice;
    if (!shown && req.query.done === 'retried') {
      shown =
        sub.status === 'active'
          ? { kind: 'ok', text: '재시도 결제가 승인되어 구독이 활성화되었습니다.' }
          : { kind: 'error', text: `재시도 결제가 승인되지 않았습니다: ${sub.latest_payment?.failure?.message ?? sub.latest_payment?.status ?? '결과 없음'}` };
    }
    this.send(res, subscriptionPage(this.ctx(req, 'subscriptions', shown), sub, context, timeline));
  }

  @Get('subscriptions/:id')
  async subscription(@Param('id') id: string, @Req() req: ConsoleRequest, @Res() res: Response): Promise<void> {
    await this.renderSubscription(req, res, uuidOr404(id, 'Subscription'));
  }

  @Post('subscriptions/:id/:action')
  @FinanceOnly()
  async subscriptionAction(@Param('id') rawId: string, @Param('action') rawAction: string, @Req() req: ConsoleRequest, @Res() res: Response): Promise<void> {
    const id = uuidOr404(rawId, 'Subscription');
    if (!['pause', 'resume', 'cancel', 'retry'].includes(rawAction)) throw new NotFoundError('Action', rawAction);
    const action = rawAction as ConsoleAction;
    const body = (req.body ?? {}) as Record<string, unknown>;
    const reason = reasonOf(body.reason);
    if (!reason) {
      await this.renderSubscription(req, res, id, { kind: 'error', text: '사유를 500자 이내로 입력하세요. 사유는 감사 기록에 남습니다.' });
      return;
    }
    const review: ActionReview = { action, reason };
    if (action === 'pause') {
      const input = str(body.resume_at, 20);
      if (input) {
        const at = fromSeoulInput(input);
        if (!at || at.getTime() <= this.clock.now().getTime()) {
          await this.renderSubscription(req, res, id, { kind: 'error', text: '재개 예정 시각은 지금 이후의 날짜와 시각이어야 합니다 (KST).' });
          return;
        }
        review.resumeAtInput = input;
        review.resumeAt = at;
      }
    }
    if (action === 'cancel') {
      review.when = body.when === 'period_end' ? 'period_end' : 'now';
      review.refundUnused = review.when === 'now' && body.refund_unused === '1';
    }
    if (body.step !== 'confirm') {
      const [sub, context] = await Promise.all([this.subscriptions.get(id), this.queries.subscriptionContext(id)]);
      if (!context) throw new NotFoundError('Subscription', id);
      this.send(res, reviewPage(this.ctx(req, 'subscriptions'), sub, context, review));
      return;
    }
    const actor = operatorActor(this.operator(req));
    const done = { pause: 'paused', resume: 'resumed', retry: 'retried', cancel: review.when === 'period_end' ? 'cancel_scheduled' : 'canceled' }[action];
    try {
      switch (action) {
        case 'pause':
          await this.subscriptions.pause(id, { reason, ...(review.resumeAt ? { resume_at: review.resumeAt.toISOString() } : {}) }, actor);
          break;
        case 'resume':
          await this.subscriptions.resume(id, reason, actor);
          break;
        case 'cancel':
          await this.subscriptions.cancel(
            id,
            { at_period_end: review.when === 'period_end', reason, ...(review.refundUnused ? { refund_unused: true } : {}) },
            actor,
          );
          break;
        case 'retry':
          await this.subscriptions.retryNow(id, actor, reason);
          break;
      }
    } catch (err) {
      if (!(err instanceof DomainError)) throw err;
      await this.renderSubscription(req, res, id, refusal(err));
      return;
    }
    res.redirect(303, `/console/subscriptions/${id}?done=${done}`);
  }

  // ------------------------------------------------------------------------------------------------------ payments

  @Get('payments')
  async paymentList(@Req() req: ConsoleRequest, @Res() res: Response): Promise<void> {
    const f: PaymentFilters = {
      status: str(req.query.status, 20),
      from: str(req.query.from, 10),
      to: str(req.query.to, 10),
      customer: str(req.query.customer),
    };
    const from = f.from ? fromSeoulInput(f.from) : undefined;
    const toStart = f.to ? fromSeoulInput(f.to) : undefined;
    let error: string | null = null;
    if (from === null || toStart === null) error = '날짜는 YYYY-MM-DD 형식이어야 합니다.';
    const result = await this.queries.searchPayments({
      status: PAYMENT_STATUS_FILTERS[f.status]?.statuses,
      from: from ?? undefined,
      to: toStart ? new Date(toStart.getTime() + 24 * 3600_000) : undefined,
      customer: f.customer || undefined,
      page: pageNumber(req.query.page),
    });
    this.send(res, paymentsPage(this.ctx(req, 'payments'), f, result, error));
  }

  private async renderPayment(
    req: ConsoleRequest,
    res: Response,
    id: string,
    notice?: Notice,
    formValues?: { amount?: string; taxFree?: string; reason?: string },
  ) {
    const p = await this.queries.payment(id);
    if (!p) throw new NotFoundError('Payment', id);
    const refunds = await this.queries.refundsOfPayment(id);
    const box = notice ? html`<div class="notice ${notice.kind}" role="alert" data-notice="${notice.kind}">${notice.text}</div>` : undefined;
    this.send(res, paymentPage(this.ctx(req, 'payments'), p, refunds, { notice: box, formValues }));
  }

  @Get('payments/:id')
  async payment(@Param('id') id: string, @Req() req: ConsoleRequest, @Res() res: Response): Promise<void> {
    await this.renderPayment(req, res, uuidOr404(id, 'Payment'));
  }

  @Post('payments/:id/refund')
  @FinanceOnly()
  async refund(@Param('id') rawId: string, @Req() req: ConsoleRequest, @Res() res: Response): Promise<void> {
    const id = uuidOr404(rawId, 'Payment');
    const p = await this.queries.payment(id);
    if (!p) throw new NotFoundError('Payment', id);
    const body = (req.body ?? {}) as Record<string, unknown>;
    const values = { amount: str(body.amount, 20), taxFree: str(body.tax_free_amount, 20), reason: str(body.reason, 500) };
    const fail = (text: string) => this.renderPayment(req, res, id, { kind: 'error', text }, values);
    const reason = reasonOf(body.reason);
    const amountIn = wholeWon(body.amount);
    const taxFreeIn = wholeWon(body.tax_free_amount);
    if (!reason) return fail('사유를 500자 이내로 입력하세요. 사유는 감사 기록에 남습니다.');
    if (amountIn === null || amountIn === 0) return fail('환불 금액은 1원 이상의 정수로 입력하세요.');
    if (taxFreeIn === null) return fail('면세 금액은 0원 이상의 정수로 입력하세요.');
    const { balance, remainingTaxFree } = refundableBalance(p);
    const amount = amountIn ?? balance;
    if (amount > balance) return fail(`환불 금액 ${won(amount)}이 남은 금액 ${won(balance)}보다 큽니다.`);
    const taxFree = taxFreeIn ?? (amountIn === undefined ? remainingTaxFree : splitTaxFree(amount, balance, Math.max(0, remainingTaxFree)));
    if (taxFree > amount) return fail('면세 금액은 환불 금액보다 클 수 없습니다.');
    if (taxFree > remainingTaxFree) return fail(`면세 금액 ${won(taxFree)}이 남은 면세 금액 ${won(remainingTaxFree)}보다 큽니다.`);
    if (amount - taxFree > balance - remainingTaxFree)
      return fail(`과세 부분 ${won(amount - taxFree)}이 남은 과세 금액 ${won(balance - remainingTaxFree)}보다 큽니다.`);
    if (body.step !== 'confirm') {
      const vat = vatOf(amount, taxFree);
      this.send(
        res,
        refundReviewPage(
          this.ctx(req, 'payments'),
          p,
          { amount, taxFree, vat, supply: amount - taxFree - vat, balanceAfter: balance - amount },
          { amount, taxFree, reason },
        ),
      );
      return;
    }
    try {
      const refund = await this.refunds.refund(id, { amount, taxFreeAmount: taxFree, reason }, operatorActor(this.operator(req)));
      res.redirect(303, `/console/payments/${id}?done=${refund.status === 'succeeded' ? 'refunded' : 'refund_unknown'}`);
    } catch (err) {
      if (!(err instanceof DomainError)) throw err;
      await this.renderPayment(req, res, id, refusal(err), values);
    }
  }

  // --------------------------------------------------------------------------------------------------- charge runs

  @Get('charge-runs')
  async runs(@Req() req: ConsoleRequest, @Res() res: Response): Promise<void> {
    const cursor = str(req.query.cursor, 200);
    const list = await this.chargeRuns.list({ limit: 20, ...(cursor ? { cursor } : {}) });
    this.send(res, runsPage(this.ctx(req, 'runs'), list.data, list.next_cursor, this.clock.now()));
  }

  @Get('charge-runs/:id/progress')
  async runProgress(@Param('id') id: string, @Res() res: Response): Promise<void> {
    const run = this.chargeRuns.map(await this.chargeRuns.get(uuidOr404(id, 'Charge run')));
    res.setHeader('Cache-Control', 'no-store');
    this.send(res, runProgress(run, this.clock.now()).value);
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
    this.send(res, reconciliationPage(this.ctx(req, 'reconciliation'), date, report, error));
  }

  // ------------------------------------------------------------------------------------------------------ webhooks

  @Get('webhooks')
  async webhooks(@Req() req: ConsoleRequest, @Res() res: Response): Promise<void> {
    const status = ['failed', 'pending', 'delivered'].includes(str(req.query.status, 20)) ? str(req.query.status, 20) : 'failed';
    const deliveries = await this.queries.deliveries({ status, page: pageNumber(req.query.page) });
    this.send(res, webhooksPage(this.ctx(req, 'webhooks'), status, deliveries));
  }

  /** Any other console address: a page saying so, not the API's JSON. Declared last, so it matches only what is left. */
  @Get('*path')
  notFound(@Req() req: ConsoleRequest): never {
    throw new NotFoundError('Page', req.path);
  }

  @Post('webhooks/deliveries/:id/resend')
  @FinanceOnly()
  async resend(@Param('id') id: string, @Res() res: Response): Promise<void> {
    await this.webhookEndpoints.resend(uuidOr404(id, 'Webhook delivery'));
    res.redirect(303, '/console/webhooks?status=pending&done=resent');
  }
}
