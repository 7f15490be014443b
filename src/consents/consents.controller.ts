import { Body, Controller, Get, HttpCode, Param, Post, Query } from '@nestjs/common';
import { ApiBearerAuth, ApiCreatedResponse, ApiOkResponse, ApiOperation, ApiTags } from '@nestjs/swagger';
import { Actor, CurrentActor, Roles } from '../auth/auth.decorators';
import { NoBodyPipe } from '../common/no-body.pipe';
import { UuidPipe } from '../common/uuid.pipe';
import { PageQueryDto } from '../common/pagination';
import { Clock, isSupportedInstant } from '../common/clock';
import { InvalidInputError } from '../common/errors';
import { ConsentNoticesService } from './consent-notices.service';
import { ConsentsService } from './consents.service';
import {
  ConsentListResponseDto,
  ConsentNoticeCountsDto,
  ConsentReportQueryDto,
  ConsentReportResponseDto,
  ConsentResponseDto,
  CreatePlanMigrationDto,
  PlanMigrationResponseDto,
  RecordConsentDto,
  WithdrawConsentDto,
} from './dto/consent.dto';

const DAY_MS = 24 * 3600_000;

@ApiTags('consents')
@ApiBearerAuth()
@Controller('v1')
export class ConsentsController {
  constructor(
    private readonly consents: ConsentsService,
    private readonly notices: ConsentNoticesService,
    private readonly clock: Clock,
  ) {}

  @Post('subscriptions/:id/consents')
  @ApiCreatedResponse({ type: ConsentResponseDto })
  @ApiOperation({ summary: 'Record the consumer’s consent to a paid conversion or a price increase (전자상거래법 제13조 제6항)' })
  record(@Param('id', UuidPipe) id: string, @Body() dto: RecordConsentDto, @CurrentActor() actor: Actor) {
    return this.consents.record(id, dto, actor);
  }

  @Get('subscriptions/:id/consents')
  @ApiOkResponse({ type: ConsentListResponseDto })
  @ApiOperation({ summary: 'The consents of a subscription, with whether each counts' })
  list(@Param('id', UuidPipe) id: string, @Query() page: PageQueryDto) {
    return this.consents.list(id, page);
  }

  @Post('subscriptions/:id/consents/:consentId/withdraw')
  @HttpCode(200)
  @ApiOkResponse({ type: ConsentResponseDto })
  @ApiOperation({ summary: 'Withdraw a consent: it no longer counts' })
  withdraw(@Param('id', UuidPipe) id: string, @Param('consentId', UuidPipe) consentId: string, @Body() dto: WithdrawConsentDto, @CurrentActor() actor: Actor) {
    return this.consents.withdraw(id, consentId, dto.reason, actor);
  }

  @Post('plans/:id/migrations')
  @ApiCreatedResponse({ type: PlanMigrationResponseDto })
  @Roles('admin')
  @ApiOperation({ summary: 'Move the subscriptions of a plan to another plan at their first renewal on or after effective_at' })
  createMigration(@Param('id', UuidPipe) id: string, @Body() dto: CreatePlanMigrationDto, @CurrentActor() actor: Actor) {
    return this.consents.createMigration(id, dto, actor);
  }

  @Get('plans/:id/migrations/:migrationId')
  @ApiOkResponse({ type: PlanMigrationResponseDto })
  @Roles('admin')
  @ApiOperation({ summary: 'A plan migration and its progress' })
  getMigration(@Param('id', UuidPipe) id: string, @Param('migrationId', UuidPipe) migrationId: string) {
    return this.consents.getMigration(id, migrationId);
  }

  @Get('reports/consents')
  @ApiOkResponse({ type: ConsentReportResponseDto })
  @Roles('admin')
  @ApiOperation({ summary: 'Subscriptions whose paid conversion or price increase comes before due_before, with consent status' })
  report(@Query() q: ConsentReportQueryDto) {
    const dueBefore = q.due_before ? new Date(q.due_before) : new Date(this.clock.now().getTime() + 30 * DAY_MS);
    if (!isSupportedInstant(dueBefore)) throw new InvalidInputError([{ field: 'due_before', message: 'due_before must be a date-time from 1970 to 8999' }]);
    return this.consents.report(dueBefore);
  }

  @Post('consent-notices/runs')
  @HttpCode(200)
  @ApiOkResponse({ type: ConsentNoticeCountsDto, description: 'The notices sent, by kind' })
  @Roles('admin')
  @ApiOperation({ summary: 'Send the notices due now (the scheduled task does this hourly)' })
  sweep(@Body(NoBodyPipe) _body: Record<string, never>) {
    return this.notices.sweep();
  }
}
