import { INestApplication } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { DocumentBuilder, SwaggerModule } from '@nestjs/swagger';
import express, { NextFunction, Request, Response } from 'express';
import helmet from 'helmet';
import { randomUUID } from 'node:crypto';
import { AppModule } from './app.module';
import type { Actor } from './auth/auth.decorators';
import { errorBody, GlobalExceptionFilter, lowLevelErrorBody } from './common/exception.filter';
import { createValidationPipe } from './common/validation';
import { inspectInput, MAX_JSON_DEPTH, nestedDeeperThan } from './common/input-guards';
import { completeOpenApiDocument } from './common/openapi';
import { Runtime } from './config/runtime';

/** Builds the Nest application; main.ts, the CLI and the tests all go through here. */
export async function createApp(runtime: Runtime): Promise<INestApplication> {
  const app = await NestFactory.create(AppModule.forRoot(runtime), { logger: runtime.logger, bodyParser: false, abortOnError: false });
  configureApp(app, runtime);
  try {
    await app.init();
  } catch (err) {
    // A refused start (a setting checked at start, such as the encryption key) leaves no pool or timer behind.
    await app
      .close()
      .catch((closeErr: unknown) => runtime.logger.error(`closing after a failed start: ${closeErr instanceof Error ? closeErr.message : String(closeErr)}`));
    throw err;
  }
  return app;
}

/** Where the OpenAPI document is served, when DOCS_ENABLED. */
export const DOCS_PATH = 'docs';

export function configureApp(app: INestApplication, runtime: Runtime): void {
  const logger = runtime.logger;
  const server = app.getHttpAdapter().getInstance() as express.Express;
  server.disable('x-powered-by');
  // Behind a load balancer the source address of a request (rate limits) comes from X-Forwarded-For.
  server.set('trust proxy', runtime.config.trustProxyHops);
  app.use((req: Request & { actor?: Actor; requestId?: string }, res: Response, next: NextFunction) => {
    const started = process.hrtime.bigint();
    const incoming = req.headers['x-request-id'];
    const requestId = typeof incoming === 'string' && /^[\w-]{1,64}$/.test(incoming) ? incoming : randomUUID();
    req.requestId = requestId;
    res.setHeader('X-Request-Id', requestId);
    // API answers carry personal data (customers), secrets (webhook signing secrets) and payment data: no cache
    // (browser, proxy or CDN) may keep them. Only the documentation's static files may be cached.
    if (!req.path.startsWith(`/${DOCS_PATH}/`) || req.path === `/${DOCS_PATH}/openapi.json`) res.setHeader('Cache-Control', 'no-store');
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
  // Security headers (HSTS, nosniff, frame options, a strict Content-Security-Policy, …) from a well-kept library.
  // Outside production the service (and /docs) is served over plain http: no upgrade of its requests to https there.
  const production = runtime.config.nodeEnv === 'production';
  app.use(helmet({ contentSecurityPolicy: { directives: { upgradeInsecureRequests: production ? [] : null } } }));
  // Only JSON bodies; anything else with a body is 415.
  app.use((req: Request, res: Response, next: NextFunction) => {
    const hasBody = Number(req.headers['content-length'] ?? 0) > 0 || req.headers['transfer-encoding'] !== undefined;
    // The finance console's HTML forms post url-encoded bodies (parsed by its own module).
    const consoleForm = req.path.startsWith('/console/') && Boolean(req.is('application/x-www-form-urlencoded'));
    if (hasBody && ['POST', 'PATCH', 'PUT'].includes(req.method) && !req.is('application/json') && !consoleForm) {
      res
        .status(415)
        .json(errorBody(415, 'unsupported_media_type', 'Send the body as application/json', [{ field: 'body', message: 'must be application/json' }]));
      return;
    }
    next();
  });
  app.use(express.json({ limit: '100kb', strict: true }));
  app.use((err: { type?: string; status?: number }, req: Request & { requestId?: string }, res: Response, next: NextFunction) => {
    if (!err) return next();
    const body = lowLevelErrorBody(err, req.requestId);
    res.status(body.status_code).json(body);
  });
  app.use((req: Request, res: Response, next: NextFunction) => {
    if (req.body === undefined) req.body = {};
    // Measured before anything recursive (validation, idempotency hashing) walks the body: thousands of levels
    // would overflow their stacks. No request of this API nests more than a few levels.
    if (nestedDeeperThan(req.body) || nestedDeeperThan(req.query)) {
      const message = `The request nests objects or arrays more than ${MAX_JSON_DEPTH} levels deep`;
      res.status(400).json(errorBody(400, 'nesting_too_deep', message, [{ field: 'body', message }]));
      return;
    }
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

  if (runtime.config.docsEnabled) {
    SwaggerModule.setup(DOCS_PATH, app, () => buildOpenApiDocument(app), { jsonDocumentUrl: `${DOCS_PATH}/openapi.json` });
  }
}

/** The OpenAPI document of the API as served at /docs/openapi.json (also used by the contract tests). */
export function buildOpenApiDocument(app: INestApplication) {
  const doc = new DocumentBuilder()
    .setTitle('Bootpay subscription billing scheduler')
    .setDescription(
      'Customers, billing keys, plans, subscriptions, charge runs, payments and refunds over Bootpay. ' +
        'Authenticate with Authorization: Bearer <api key> (an API key of role service or admin, not a JWT).',
    )
    .setVersion('1')
    .addBearerAuth(
      {
        type: 'http',
        scheme: 'bearer',
        bearerFormat: 'API key',
        description:
          'An API key created with `npm run cli -- api-keys:create` (bsk_admin_… for the admin role, bsk_svc_… for the service role), ' +
          'sent as `Authorization: Bearer <key>`. Keys are opaque random strings stored as SHA-256 hashes; they are not JWTs.',
      },
      'bearer',
    )
    .build();
  return completeOpenApiDocument(SwaggerModule.createDocument(app, doc));
}
