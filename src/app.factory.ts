import { INestApplication } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { DocumentBuilder, SwaggerModule } from '@nestjs/swagger';
import express, { NextFunction, Request, Response } from 'express';
import { randomUUID } from 'node:crypto';
import { AppModule } from './app.module';
import type { Actor } from './auth/auth.decorators';
import { errorBody, GlobalExceptionFilter, lowLevelErrorBody } from './common/exception.filter';
import { createValidationPipe } from './common/validation';
import { inspectInput } from './common/input-guards';
import { Runtime } from './runtime';

/** Builds the Nest application; main.ts, the CLI and the tests all go through here. */
export async function createApp(runtime: Runtime): Promise<INestApplication> {
  const app = await NestFactory.create(AppModule.forRoot(runtime), { logger: runtime.logger, bodyParser: false, abortOnError: false });
  configureApp(app, runtime);
  await app.init();
  return app;
}

export function configureApp(app: INestApplication, runtime: Runtime): void {
  const logger = runtime.logger;
  app.use((req: Request & { actor?: Actor; requestId?: string }, res: Response, next: NextFunction) => {
    const started = process.hrtime.bigint();
    const incoming = req.headers['x-request-id'];
    const requestId = typeof incoming === 'string' && /^[\w-]{1,64}$/.test(incoming) ? incoming : randomUUID();
    req.requestId = requestId;
    res.setHeader('X-Request-Id', requestId);
    res.on('finish', () => {
      logger.log(
        {
          message: 'http request',
          method: req.method,
          path: req.path,
          status: res.statusCode,
          duration_ms: Number((process.hrtime.bigint() - started) / 1_000_000n),
          request_id: requestId,
          api_key_id: req.actor?.apiKeyId,
        },
        'Http',
      );
    });
    next();
  });
  // Only JSON bodies; anything else with a body is 415.
  app.use((req: Request, res: Response, next: NextFunction) => {
    const hasBody = Number(req.headers['content-length'] ?? 0) > 0 || req.headers['transfer-encoding'] !== undefined;
    if (hasBody && ['POST', 'PATCH', 'PUT'].includes(req.method) && !req.is('application/json')) {
      res.status(415).json(errorBody(415, 'unsupported_media_type', 'Send the body as application/json', [{ field: 'body', message: 'must be application/json' }]));
      return;
    }
    next();
  });
  app.use(express.json({ limit: '100kb', strict: true }));
  app.use((err: { type?: string; status?: number }, _req: Request, res: Response, next: NextFunction) => {
    if (!err) return next();
    const body = lowLevelErrorBody(err);
    res.status(body.status_code).json(body);
  });
  app.use((req: Request, res: Response, next: NextFunction) => {
    if (req.body === undefined) req.body = {};
    const problems = [...inspectInput(req.query, 'query'), ...(req.body && typeof req.body === 'object' ? inspectInput(req.body, 'body') : [])];
    if (problems.length) {
      res.status(400).json(errorBody(400, 'invalid_request', problems.map((p) => p.message).join('; '), problems));
      return;
    }
    if (['POST', 'PATCH', 'PUT'].includes(req.method) && (Array.isArray(req.body) || typeof req.body !== 'object' || req.body === null)) {
      res.status(400).json(errorBody(400, 'invalid_request', 'The request body must be a JSON object', [{ field: 'body', message: 'must be a JSON object' }]));
      return;
    }
    next();
  });
  app.useGlobalPipes(createValidationPipe());
  app.useGlobalFilters(new GlobalExceptionFilter());

  const doc = new DocumentBuilder()
    .setTitle('Bootpay subscription billing scheduler')
    .setDescription('Customers, billing keys, plans, subscriptions, charge runs, payments and refunds over Bootpay. Authenticate with Authorization: Bearer <api key>.')
    .setVersion('1')
    .addBearerAuth()
    .build();
  SwaggerModule.setup('docs', app, () => SwaggerModule.createDocument(app, doc), { jsonDocumentUrl: 'docs/openapi.json' });
}
