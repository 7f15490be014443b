import { Body, Controller, Get, Param, Patch, Post, Query } from '@nestjs/common';
import { ApiBearerAuth, ApiCreatedResponse, ApiOkResponse, ApiOperation, ApiTags } from '@nestjs/swagger';
import { Page } from '../common/pagination';
import { UuidPipe } from '../common/uuid.pipe';
import { CreatePlanDto, ListPlansQueryDto, PlanResponseDto, UpdatePlanDto } from './dto/plan.dto';
import { PlansService } from './plans.service';

@ApiTags('plans')
@ApiBearerAuth()
@Controller('v1/plans')
export class PlansController {
  constructor(private readonly plans: PlansService) {}

  @Post()
  @ApiCreatedResponse({ type: PlanResponseDto })
  @ApiOperation({ summary: 'Create a plan (its amount never changes afterwards)' })
  create(@Body() dto: CreatePlanDto): Promise<PlanResponseDto> {
    return this.plans.create(dto);
  }

  @Get()
  list(@Query() query: ListPlansQueryDto): Promise<Page<PlanResponseDto>> {
    return this.plans.list(query);
  }

  @Get(':id')
  @ApiOkResponse({ type: PlanResponseDto })
  get(@Param('id', UuidPipe) id: string): Promise<PlanResponseDto> {
    return this.plans.get(id);
  }

  @Patch(':id')
  @ApiOkResponse({ type: PlanResponseDto })
  @ApiOperation({ summary: 'Change name, description or active (never the price)' })
  update(@Param('id', UuidPipe) id: string, @Body() dto: UpdatePlanDto): Promise<PlanResponseDto> {
    return this.plans.update(id, dto);
  }
}
