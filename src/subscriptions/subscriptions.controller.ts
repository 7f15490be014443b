import { Body, Controller, Get, HttpCode, Param, Post, Query, Res } from '@nestjs/common';
import type { Response } from 'express';
import { ApiBearerAuth, ApiOkResponse, ApiOperation, ApiResponse, ApiTags } from '@nestjs/swagger';
import { Actor, CurrentActor, Roles } from '../auth/auth.decorators';
import { Page, PageQueryDto } from '../common/pagination';
import { UuidPipe } from '../common/uuid.pipe';
import { NoBodyPipe } from '../common/no-body.pipe';
import {
  CancelSubscriptionDto,
  ChangePlanDto,
  CreateSubscriptionDto,
  ListSubscriptionsQueryDto,
  PauseSubscriptionDto,
  ReasonDto,
  RefundCreditDto,
  SubscriptionResponseDto,
  SwapBillingKeyDto,
} from '../ledger/dto/subscription.dto';
import { SubscriptionsService } from '../ledger/subscriptions.service';
import { ConsentNoticesService } from '../consents/consent-notices.service';

@ApiTags('subscriptions')
@ApiBearerAuth()
@Controller('v1/subscriptions')
export class SubscriptionsController {
  constructor(
    private readonly subs: SubscriptionsService,
    private readonly notices: ConsentNoticesService,
  ) {}

  @Post()
  @ApiOperation({ summary: 'Create a subscription; without a trial or a future start the first period is charged now' })
  @ApiResponse({ status: 201, type: SubscriptionResponseDto })
  @ApiResponse({ status: 402, description: 'The first payment was declined; the subscription is canceled' })
  async create(@Body() dto: CreateSubscriptionDto, @CurrentActor() actor: Actor): Promise<SubscriptionResponseDto> {
    // A trial of 30 days or less is inside the consent window from the start: its notice is written with it (전자상거래법 13⑥).
    const sub = await this.subs.create(dto, actor, (s, plan) => this.notices.atCreation(s, plan));
    // So is a price increase of its plan that comes within 30 days.
    await this.notices.afterCreate(sub);
    return sub;
  }

  @Get()
  list(@Query() q: ListSubscriptionsQueryDto): Promise<Page<SubscriptionResponseDto>> {
    return this.subs.list(q);
  }

  @Get(':id')
  @ApiOkResponse({ type: SubscriptionResponseDto })
  get(@Param('id', UuidPipe) id: string): Promise<SubscriptionResponseDto> {
    return this.subs.get(id);
  }

  @Get(':id/events')
  @ApiOperation({ summary: 'The audit trail: who, what, why, when, before and after' })
  events(@Param('id', UuidPipe) id: string, @Query() q: PageQueryDto) {
    return this.subs.listEvents(id, q);
  }

  @Post(':id/cancel')
  @HttpCode(200)
  @ApiOkResponse({ type: SubscriptionResponseDto })
  cancel(@Param('id', UuidPipe) id: string, @Body() dto: CancelSubscriptionDto, @CurrentActor() actor: Actor) {
    return this.subs.cancel(id, dto, actor);
  }

  @Post(':id/reactivate')
  @HttpCode(200)
  @ApiOkResponse({ type: SubscriptionResponseDto })
  @ApiOperation({ summary: 'Undo a pending cancel at period end' })
  reactivate(@Param('id', UuidPipe) id: string, @Body() dto: ReasonDto, @CurrentActor() actor: Actor) {
    return this.subs.reactivate(id, dto.reason, actor);
  }

  @Post(':id/pause')
  @HttpCode(200)
  @ApiOkResponse({ type: SubscriptionResponseDto })
  @Roles('admin')
  pause(@Param('id', UuidPipe) id: string, @Body() dto: PauseSubscriptionDto, @CurrentActor() actor: Actor) {
    return this.subs.pause(id, dto, actor);
  }

  @Post(':id/resume')
  @HttpCode(200)
  @ApiOkResponse({ type: SubscriptionResponseDto })
  @Roles('admin')
  @ApiOperation({ summary: 'Resume: a new period starts now and is charged now' })
  resume(@Param('id', UuidPipe) id: string, @Body() dto: ReasonDto, @CurrentActor() actor: Actor) {
    return this.subs.resume(id, dto.reason, actor);
  }

  @Post(':id/change-plan')
  @HttpCode(200)
  @ApiResponse({ status: 200, type: SubscriptionResponseDto, description: 'The plan was changed (or the change scheduled)' })
  @ApiResponse({
    status: 202,
    type: SubscriptionResponseDto,
    description: "The prorated charge was sent without an answer: the change is pending (pending_payment), settled when Bootpay's outcome is known",
  })
  async changePlan(@Param('id', UuidPipe) id: string, @Body() dto: ChangePlanDto, @CurrentActor() actor: Actor, @Res({ passthrough: true }) res: Response) {
    const answer = await this.subs.changePlan(id, dto, actor);
    if (answer.pending_payment) res.status(202);
    return answer;
  }

  @Post(':id/billing-key')
  @HttpCode(200)
  @ApiOkResponse({ type: SubscriptionResponseDto })
  @ApiOperation({ summary: 'Use another billing key of the customer; a past_due subscription is charged at once' })
  swapBillingKey(@Param('id', UuidPipe) id: string, @Body() dto: SwapBillingKeyDto, @CurrentActor() actor: Actor) {
    return this.subs.swapBillingKey(id, dto, actor);
  }

  @Post(':id/refund-credit')
  @HttpCode(200)
  @Roles('admin')
  @ApiOperation({ summary: "Refund the subscription's credit balance (a downgrade's credit) to the card, from its paid payments, newest first" })
  @ApiResponse({ status: 200, type: SubscriptionResponseDto })
  refundCredit(@Param('id', UuidPipe) id: string, @Body() dto: RefundCreditDto, @CurrentActor() actor: Actor) {
    return this.subs.refundCredit(id, dto, actor);
  }

  @Post(':id/retry')
  @HttpCode(200)
  @ApiOkResponse({ type: SubscriptionResponseDto })
  @Roles('admin')
  @ApiOperation({ summary: 'Charge a past_due or unpaid subscription now' })
  retry(@Param('id', UuidPipe) id: string, @Body(NoBodyPipe) _body: Record<string, never>, @CurrentActor() actor: Actor) {
    return this.subs.retryNow(id, actor);
  }
}
