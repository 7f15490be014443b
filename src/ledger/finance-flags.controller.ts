import { Body, Controller, Get, HttpCode, Param, Post, Query } from '@nestjs/common';
import { ApiBearerAuth, ApiOkResponse, ApiTags } from '@nestjs/swagger';
import { IsBoolean, IsOptional, IsString, IsUUID, MaxLength, MinLength } from 'class-validator';
import { Transform } from 'class-transformer';
import { Actor, CurrentActor, Roles } from '../auth/auth.decorators';
import { UuidPipe } from '../common/uuid.pipe';
import { Page, PageQueryDto } from '../common/pagination';
import { FinanceFlagsService, FinanceFlagView } from './finance-flags.service';
import { FinanceFlagListResponseDto, FinanceFlagResponseDto } from './dto/finance-flag.dto';

export class ListFinanceFlagsQueryDto extends PageQueryDto {
  /** true: only open flags; false: only resolved ones; absent: all. */
  @IsOptional()
  @Transform(({ value }) => (value === 'true' ? true : value === 'false' ? false : value))
  @IsBoolean()
  open?: boolean;

  @IsOptional()
  @IsUUID()
  subscription_id?: string;
}

export class ResolveFinanceFlagDto {
  @IsString()
  @MinLength(1)
  @MaxLength(500)
  resolution: string;
}

/** Items for finance: money that moved and was not applied, receipts that do not fit their payment. */
@ApiTags('finance-flags')
@ApiBearerAuth()
@Controller('v1/finance-flags')
export class FinanceFlagsController {
  constructor(private readonly flags: FinanceFlagsService) {}

  @Get()
  @ApiOkResponse({ type: FinanceFlagListResponseDto })
  @Roles('admin')
  list(@Query() q: ListFinanceFlagsQueryDto): Promise<Page<FinanceFlagView>> {
    return this.flags.list({ open: q.open, subscriptionId: q.subscription_id, limit: q.limit, cursor: q.cursor });
  }

  @Post(':id/resolve')
  @HttpCode(200)
  @ApiOkResponse({ type: FinanceFlagResponseDto })
  @Roles('admin')
  resolve(@Param('id', UuidPipe) id: string, @Body() dto: ResolveFinanceFlagDto, @CurrentActor() actor: Actor): Promise<FinanceFlagView> {
    return this.flags.resolve(id, dto.resolution, actor.name);
  }
}
