import { MiddlewareConsumer, Module, NestModule } from '@nestjs/common';
import express, { NextFunction, Request, Response } from 'express';
import helmet from 'helmet';
import { ChargingModule } from '../charging/charging.module';
import { OperatorsModule } from '../operators/operators.module';
import { LedgerModule } from '../ledger/ledger.module';
import { ConsoleAuthController } from './console-auth.controller';
import { ConsoleController } from './console.controller';
import { ConsoleNotFoundController } from './console-not-found.controller';
import { ConsoleOperationsController } from './console-operations.controller';
import { ConsolePaymentsController } from './console-payments.controller';
import { ConsoleSubscriptionsController } from './console-subscriptions.controller';
import { ConsoleQueryService } from './console-query.service';
import { ConsoleSessionGuard } from './console-session.guard';

/**
 * Strict headers on every console response: a Content-Security-Policy that allows only this origin's own script and
 * style (the pages have no inline script or style), no framing, no referrer outside the origin, no caching of pages.
 */
const securityHeaders = helmet({
  contentSecurityPolicy: {
    useDefaults: false,
    directives: {
      defaultSrc: ["'self'"],
      scriptSrc: ["'self'"],
      styleSrc: ["'self'"],
      imgSrc: ["'self'", 'data:'],
      connectSrc: ["'self'"],
      fontSrc: ["'self'"],
      objectSrc: ["'none'"],
      baseUri: ["'none'"],
      formAction: ["'self'"],
      frameAncestors: ["'none'"],
    },
  },
  strictTransportSecurity: false,
  referrerPolicy: { policy: 'same-origin' },
  crossOriginEmbedderPolicy: false,
});

const formBody = express.urlencoded({ extended: false, limit: '20kb', parameterLimit: 50 });

function consoleMiddleware(req: Request, res: Response, next: NextFunction): void {
  securityHeaders(req, res, (err?: unknown) => {
    if (err) return next(err);
    if (!req.path.startsWith('/console/assets/')) res.setHeader('Cache-Control', 'no-store');
    if (req.method !== 'POST') return next();
    formBody(req, res, (parseError?: unknown) => {
      if (parseError) {
        res.status(400).type('text/plain; charset=utf-8').send('요청 본문을 읽을 수 없습니다.');
        return;
      }
      next();
    });
  });
}

/**
 * The console's controllers, in the order their routes are registered. Express matches routes in that order, so the
 * not-found page (GET console/*path) goes last; the middleware below applies to the routes of them all.
 */
const CONSOLE_CONTROLLERS = [
  ConsoleAuthController,
  ConsoleController,
  ConsoleSubscriptionsController,
  ConsolePaymentsController,
  ConsoleOperationsController,
  ConsoleNotFoundController,
];

/** The finance console at /console: server-rendered pages, its own session guard, operators instead of API keys. */
@Module({
  imports: [OperatorsModule, LedgerModule, ChargingModule],
  controllers: CONSOLE_CONTROLLERS,
  providers: [ConsoleQueryService, ConsoleSessionGuard],
})
export class ConsoleModule implements NestModule {
  configure(consumer: MiddlewareConsumer): void {
    consumer.apply(consoleMiddleware).forRoutes(...CONSOLE_CONTROLLERS);
  }
}
