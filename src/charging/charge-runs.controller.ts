import { Body, Controller, Get, HttpCode, Param, Post, Query } from '@nestjs/common';
import { ApiAcceptedResponse, ApiBearerAuth, ApiOkResponse, ApiOperation, ApiPropertyOptional, ApiTags } from '@nestjs/swagger';
import { IsBoolean } from 'class-validator';
import { Optional } from '../common/validators';
import { Actor, CurrentActor, Roles } from '../auth/auth.decorators';
import { PageQueryDto } from '../common/pagination';
import { UuidPipe } from '../common/uuid.pipe';
import { ChargeRunsService } from './charge-runs.service';
import { ChargeRunResponseDto } from './charge-run.dto';

export class StartChargeRunDto {
  @ApiPropertyOptional({ default: false, description: 'Answer when the run has finished (otherwise at once, with the run in progress)' })
  @Optional()
  @IsBoolean({ message: 'wait must be true or false' })
  wait?: boolean;
}

@ApiTags('charge-runs')
@ApiBearerAuth()
@Roles('admin')
@Controller('v1/charge-runs')
export class ChargeRunsController {
  constructor(private readonly runs: ChargeRunsService) {}

  @Post()
  @HttpCode(202)
  @ApiAcceptedResponse({ type: ChargeRunResponseDto, description: 'The run: in progress, or finished with wait: true' })
  @ApiOperation({ summary: 'Start a charge run now (the nightly cron starts them too)' })
  async start(@Body() dto: StartChargeRunDto, @CurrentActor() actor: Actor) {
    const run = (await this.runs.create('manual', { requestedBy: actor.name }))!;
    const done = this.runs.execute(run);
    if (dto.wait) return this.runs.map(await done);
    return this.runs.map(run);
  }

  @Get()
  list(@Query() q: PageQueryDto) {
    return this.runs.list(q);
  }

  @Get(':id')
  @ApiOkResponse({ type: ChargeRunResponseDto })
  async get(@Param('id', UuidPipe) id: string) {
    return this.runs.map(await this.runs.get(id));
  }
}
