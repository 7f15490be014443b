import { Controller, Get, Query } from '@nestjs/common';
import { ApiBearerAuth, ApiOkResponse, ApiOperation, ApiProperty, ApiPropertyOptional, ApiTags } from '@nestjs/swagger';
import { IsISO8601, Matches } from 'class-validator';
import { Optional } from '../common/validators';
import { Roles } from '../auth/auth.decorators';
import { InvalidInputError } from '../common/errors';
import { ReportsService } from './reports.service';
import { ReconciliationReportDto, SummaryReportDto } from './reports.dto';

export class ReconciliationQueryDto {
  @ApiProperty({ example: '2026-01-15', description: 'A business day (business time zone)' })
  @Matches(/^\d{4}-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])$/, { message: 'date must be a day as YYYY-MM-DD' })
  date: string;
}

export class SummaryQueryDto {
  @ApiPropertyOptional({ description: 'Start of the window for churn and recoveries (default: 30 days before to)' })
  @Optional()
  @IsISO8601({ strict: true }, { message: 'from must be an ISO-8601 date-time' })
  from?: string;

  @ApiPropertyOptional({ description: 'End of the window (default: now)' })
  @Optional()
  @IsISO8601({ strict: true }, { message: 'to must be an ISO-8601 date-time' })
  to?: string;
}

@ApiTags('reports')
@ApiBearerAuth()
@Roles('admin')
@Controller('v1/reports')
export class ReportsController {
  constructor(private readonly reports: ReportsService) {}

  @Get('reconciliation')
  @ApiOkResponse({ type: ReconciliationReportDto })
  @ApiOperation({ summary: "The day's local ledger compared with Bootpay's, with every difference" })
  reconciliation(@Query() q: ReconciliationQueryDto) {
    if (Number.isNaN(Date.parse(`${q.date}T00:00:00Z`)) || new Date(`${q.date}T00:00:00Z`).toISOString().slice(0, 10) !== q.date) {
      throw new InvalidInputError([{ field: 'date', message: 'date must be a real calendar day' }]);
    }
    return this.reports.reconciliation(q.date);
  }

  @Get('summary')
  @ApiOkResponse({ type: SummaryReportDto })
  @ApiOperation({ summary: 'MRR in KRW, counts by status, churn and payments recovered at each retry step' })
  summary(@Query() q: SummaryQueryDto) {
    const from = q.from ? new Date(q.from) : undefined;
    const to = q.to ? new Date(q.to) : undefined;
    const bad = [
      ...(from && Number.isNaN(from.getTime()) ? [{ field: 'from', message: 'from must be a date-time such as 2026-01-15T00:00:00+09:00' }] : []),
      ...(to && Number.isNaN(to.getTime()) ? [{ field: 'to', message: 'to must be a date-time such as 2026-01-15T00:00:00+09:00' }] : []),
    ];
    if (bad.length) throw new InvalidInputError(bad);
    if (from && to && from >= to) throw new InvalidInputError([{ field: 'from', message: 'from must be before to' }]);
    return this.reports.summary({ from, to });
  }
}
