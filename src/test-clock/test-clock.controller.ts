import { Body, Controller, Get, HttpCode, Post } from '@nestjs/common';
import { ApiBearerAuth, ApiOkResponse, ApiOperation, ApiProperty, ApiTags } from '@nestjs/swagger';
import { IsISO8601 } from 'class-validator';
import { Roles } from '../auth/auth.decorators';
import { Clock, EARLIEST_SUPPORTED_INSTANT, isSupportedInstant, LATEST_SUPPORTED_INSTANT, TestClock } from '../common/clock';
import { DomainError } from '../common/errors';
import { ClockResponseDto } from './test-clock.dto';

export class SetClockDto {
  @ApiProperty({
    example: '2026-01-31T03:00:00+09:00',
    format: 'date-time',
    description: `An instant from ${EARLIEST_SUPPORTED_INSTANT.toISOString()} to ${LATEST_SUPPORTED_INSTANT.toISOString()}`,
  })
  @IsISO8601({ strict: true }, { message: 'now must be an ISO-8601 date-time' })
  now: string;
}

/** Outside production only: read and set the service's time. Registered only when TEST_ENDPOINTS is on. */
@ApiTags('test')
@ApiBearerAuth()
@Controller('v1/test/clock')
export class TestClockController {
  constructor(private readonly clock: Clock) {}

  @Get()
  @ApiOkResponse({ type: ClockResponseDto })
  get() {
    return { now: this.clock.now().toISOString(), frozen: this.clock instanceof TestClock && this.clock.isFrozen() };
  }

  @Post()
  @HttpCode(200)
  @ApiOkResponse({ type: ClockResponseDto })
  @Roles('admin')
  @ApiOperation({ summary: 'Set the service clock (frozen at that instant until set again)' })
  set(@Body() dto: SetClockDto) {
    if (!(this.clock instanceof TestClock)) {
      throw new DomainError('forbidden', 'test_clock_unavailable', 'This service runs on the system clock');
    }
    const at = new Date(dto.now);
    if (Number.isNaN(at.getTime())) {
      throw new DomainError('validation', 'invalid_request', 'now must be a valid date', [{ field: 'now', message: 'must be a valid date' }]);
    }
    if (!isSupportedInstant(at)) {
      const message = `now must be between ${EARLIEST_SUPPORTED_INSTANT.toISOString()} and ${LATEST_SUPPORTED_INSTANT.toISOString()}`;
      throw new DomainError('validation', 'invalid_request', message, [{ field: 'now', message }]);
    }
    this.clock.set(at);
    return this.get();
  }
}
