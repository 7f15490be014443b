import { Controller, Get, Req, UseFilters, UseGuards } from '@nestjs/common';
import { ApiExcludeController } from '@nestjs/swagger';
import { Public } from '../auth/auth.decorators';
import { NotFoundError } from '../common/errors';
import { ConsoleExceptionFilter } from './console-exception.filter';
import { ConsoleRequest, ConsoleSessionGuard } from './console-session.guard';

/**
 * The console's page for any address it does not have. Registered after every other console controller (see
 * ConsoleModule), since Express matches routes in the order they are registered.
 */
@ApiExcludeController()
@Public()
@Controller('console')
@UseGuards(ConsoleSessionGuard)
@UseFilters(ConsoleExceptionFilter)
export class ConsoleNotFoundController {
  /** Any other console address: a page saying so, not the API's JSON. Registered last, so it matches only what is left. */
  @Get('*path')
  notFound(@Req() req: ConsoleRequest): never {
    throw new NotFoundError('Page', req.path);
  }
}
