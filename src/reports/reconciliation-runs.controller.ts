import { Body, Controller, Get, HttpCode, Logger, Param, Post, Query } from '@nestjs/common';
import { ApiAcceptedResponse, ApiBearerAuth, ApiOkResponse, ApiOperation, ApiPropertyOptional, ApiTags } from '@nestjs/swagger';
import { IsBoolean } from 'class-validator';
import { Actor, CurrentActor, Roles } from '../auth/auth.decorators';
import { PageQueryDto } from '../common/pagination';
import { UuidPipe } from '../common/uuid.pipe';
import { Optional } from '../common/validators';
import { ReconciliationRunsService } from './reconciliation-runs.service';
import { ReconciliationRunResponseDto } from './reports.dto';

export class StartReconciliationDto {
  @ApiPropertyOptional({ default: false, description: 'Answer when the run has finished (otherwise at once, with the run in progress)' })
  @Optional()
  @IsBoolean({ message: 'wait must be true or false' })
  wait?: boolean;
}

@ApiTags('reports')
@ApiBearerAuth()
@Roles('admin')
@Controller('v1/reports/reconciliation/runs')
export class ReconciliationRunsController {
  private readonly logger = new Logger(ReconciliationRunsController.name);

  constructor(private readonly runs: ReconciliationRunsService) {}

  @Post()
  @HttpCode(202)
  @ApiAcceptedResponse({ type: ReconciliationRunResponseDto, description: 'The run: in progress, or finished with wait: true' })
  @ApiOperation({ summary: 'Reconcile the rolling window with Bootpay now (the nightly cron does it too)' })
  async start(@Body() dto: StartReconciliationDto, @CurrentActor() actor: Actor) {
    const run = (await this.runs.create('manual', { requestedBy: actor.name }))!;
    const done = this.runs.execute(run);
    if (dto.wait) return this.runs.map(await done);
    // execute() stores its own failures on the run; only reading the run back at the end could still fail.
    done.catch((err: unknown) => this.logger.error({ message: 'reconciliation run could not be read back', run_id: run.id, error: String(err) }));
    return this.runs.map(run);
  }

  @Get()
  @ApiOperation({ summary: 'Reconciliation runs, newest first, with their differences and when each was first seen' })
  list(@Query() q: PageQueryDto) {
    return this.runs.list(q);
  }

  @Get(':id')
  @ApiOkResponse({ type: ReconciliationRunResponseDto })
  async get(@Param('id', UuidPipe) id: string) {
    return this.runs.map(await this.runs.get(id));
  }
}
