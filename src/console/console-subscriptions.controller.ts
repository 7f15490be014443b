import { Controller, Get, Param, Post, Req, Res, UseFilters, UseGuards } from '@nestjs/common';
import { ApiExcludeController } from '@nestjs/swagger';
import type { Response } from 'express';
import { Public } from '../auth/auth.decorators';
import { Clock } from '../common/clock';
import { DomainError, NotFoundError } from '../common/errors';
import { operatorActor } from '../operators/operators.service';
import { SubscriptionsService } from '../ledger/subscriptions.service';
import { ConsoleExceptionFilter } from './console-exception.filter';
import { operatorOf, pageContext, pageNumber, reasonOf, refusal, sendHtml, str, UUID, uuidOr404 } from './console-pages';
import { ConsoleQueryService } from './console-query.service';
import { ConsoleRequest, ConsoleSessionGuard, FinanceOnly } from './console-session.guard';
import { fromSeoulInput } from './html';
import { Notice } from './layout';
import { ActionReview, ConsoleAction, reviewPage, SubscriptionFilters, subscriptionPage, subscriptionsPage } from './views/subscriptions.view';

/**
 * The console's subscription screens: the list, a subscription with its timeline, and its actions (pause, resume,
 * cancel, retry), each after a review step, with the operator as the actor and the reason the operator typed.
 */
@ApiExcludeController()
@Public()
@Controller('console')
@UseGuards(ConsoleSessionGuard)
@UseFilters(ConsoleExceptionFilter)
export class ConsoleSubscriptionsController {
  constructor(
    private readonly queries: ConsoleQueryService,
    private readonly subscriptions: SubscriptionsService,
    private readonly clock: Clock,
  ) {}

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
    sendHtml(res, subscriptionsPage(pageContext(req, 'subscriptions'), f, plans, result));
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
    sendHtml(res, subscriptionPage(pageContext(req, 'subscriptions', shown), sub, context, timeline));
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
      sendHtml(res, reviewPage(pageContext(req, 'subscriptions'), sub, context, review));
      return;
    }
    const actor = operatorActor(operatorOf(req));
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
}
