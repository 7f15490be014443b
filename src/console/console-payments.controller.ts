import { Controller, Get, Param, Post, Req, Res, UseFilters, UseGuards } from '@nestjs/common';
import { ApiExcludeController } from '@nestjs/swagger';
import type { Response } from 'express';
import { Public } from '../auth/auth.decorators';
import { splitTaxFree, vatOf } from '../billing-math';
import { DomainError, NotFoundError } from '../common/errors';
import { operatorActor } from '../operators/operators.service';
import { RefundsService } from '../ledger/refunds.service';
import { ConsoleExceptionFilter } from './console-exception.filter';
import { operatorOf, pageContext, pageNumber, reasonOf, refusal, sendHtml, str, uuidOr404 } from './console-pages';
import { ConsoleQueryService } from './console-query.service';
import { ConsoleRequest, ConsoleSessionGuard, FinanceOnly } from './console-session.guard';
import { fromSeoulInput, html, won } from './html';
import { Notice } from './layout';
import { PAYMENT_STATUS_FILTERS, PaymentFilters, paymentPage, paymentsPage, refundableBalance, refundReviewPage } from './views/payments.view';

function wholeWon(v: unknown): number | null | undefined {
  const s = str(v, 20).replace(/[,\s원]/g, '');
  if (s === '') return undefined;
  if (!/^\d{1,12}$/.test(s)) return null;
  const n = Number(s);
  return Number.isSafeInteger(n) ? n : null;
}

/** The console's payment screens: the list, a payment with its refunds, and a refund, after a review step. */
@ApiExcludeController()
@Public()
@Controller('console')
@UseGuards(ConsoleSessionGuard)
@UseFilters(ConsoleExceptionFilter)
export class ConsolePaymentsController {
  constructor(
    private readonly queries: ConsoleQueryService,
    private readonly refunds: RefundsService,
  ) {}

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
    sendHtml(res, paymentsPage(pageContext(req, 'payments'), f, result, error));
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
    sendHtml(res, paymentPage(pageContext(req, 'payments'), p, refunds, { notice: box, formValues }));
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
      sendHtml(
        res,
        refundReviewPage(
          pageContext(req, 'payments'),
          p,
          { amount, taxFree, vat, supply: amount - taxFree - vat, balanceAfter: balance - amount },
          { amount, taxFree, reason },
        ),
      );
      return;
    }
    try {
      const refund = await this.refunds.refund(id, { amount, taxFreeAmount: taxFree, reason }, operatorActor(operatorOf(req)));
      res.redirect(303, `/console/payments/${id}?done=${refund.status === 'succeeded' ? 'refunded' : 'refund_unknown'}`);
    } catch (err) {
      if (!(err instanceof DomainError)) throw err;
      await this.renderPayment(req, res, id, refusal(err), values);
    }
  }
}
