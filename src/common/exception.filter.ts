import { ArgumentsHost, Catch, ExceptionFilter, HttpException, Logger } from '@nestjs/common';
import { randomUUID } from 'node:crypto';
import type { Request, Response } from 'express';
import { DomainError, FieldError, STATUS_BY_KIND } from './errors';

export interface ErrorBody {
  status_code: number;
  error: string;
  code: string;
  message: string;
  details: FieldError[];
  request_id?: string;
  [extra: string]: unknown;
}

const REASON: Record<number, string> = {
  400: 'Bad Request',
  401: 'Unauthorized',
  402: 'Payment Required',
  403: 'Forbidden',
  404: 'Not Found',
  405: 'Method Not Allowed',
  409: 'Conflict',
  413: 'Payload Too Large',
  415: 'Unsupported Media Type',
  422: 'Unprocessable Entity',
  429: 'Too Many Requests',
  500: 'Internal Server Error',
  502: 'Bad Gateway',
  503: 'Service Unavailable',
};

export function errorBody(status: number, code: string, message: string, details: FieldError[] = [], extra: Record<string, unknown> = {}): ErrorBody {
  return { status_code: status, error: REASON[status] ?? 'Error', code, message, details, ...extra };
}

/** An answer stored earlier (idempotent replay) whose status the route would not set by itself, sent again as it was. */
export class StoredErrorResponse extends Error {
  constructor(
    readonly status: number,
    readonly body: unknown,
  ) {
    super('stored error response');
  }
}

/**
 * The id of a request as the first middleware set it (and sent as X-Request-Id): a 5xx answer and its log line carry
 * the same one, so a user's report of an error can be found in the logs.
 */
export function requestIdOf(req: Request, res?: Response): string {
  const set = (req as Request & { requestId?: string }).requestId ?? res?.getHeader('X-Request-Id');
  return typeof set === 'string' && set ? set : randomUUID();
}

/** Maps body-parser and other low-level errors (thrown before Nest routing) to the common error body. */
export function lowLevelErrorBody(err: { status?: number; statusCode?: number; type?: string; message?: string }, requestId: string = randomUUID()): ErrorBody {
  const status = err.status ?? err.statusCode ?? 500;
  if (err.type === 'entity.parse.failed') {
    return errorBody(400, 'malformed_json', 'The request body is not valid JSON', [{ field: 'body', message: 'must be valid JSON' }]);
  }
  if (err.type === 'entity.too.large') {
    return errorBody(413, 'payload_too_large', 'The request body is too large', [{ field: 'body', message: 'must be at most 100kb' }]);
  }
  if (status >= 400 && status < 500) {
    return errorBody(status, 'bad_request', 'The request could not be read', [{ field: 'body', message: 'could not be read' }]);
  }
  return errorBody(500, 'internal_error', 'Something went wrong on our side', [], { request_id: requestId });
}

/** One error body everywhere: {status_code, error, code, message, details:[{field, message}]}. */
@Catch()
export class GlobalExceptionFilter implements ExceptionFilter {
  private readonly logger = new Logger('Errors');

  catch(exception: unknown, host: ArgumentsHost): void {
    const ctx = host.switchToHttp();
    const res = ctx.getResponse<Response>();
    const req = ctx.getRequest<Request>();
    const body = this.toBody(exception, req, res);
    if (body.status_code >= 500) {
      this.logger.error({
        message: 'request failed',
        request_id: body.request_id,
        method: req.method,
        path: req.path,
        status: body.status_code,
        error_name: exception instanceof Error ? exception.name : typeof exception,
        error_message: exception instanceof Error ? exception.message : undefined,
        stack: exception instanceof Error ? exception.stack : undefined,
      });
    }
    if (res.headersSent) return;
    if (exception instanceof StoredErrorResponse) {
      res.status(exception.status).json(exception.body);
      return;
    }
    res.status(body.status_code).json(body);
  }

  private toBody(exception: unknown, req: Request, res: Response): ErrorBody {
    if (exception instanceof StoredErrorResponse) return exception.body as ErrorBody;
    if (exception instanceof DomainError) {
      const status = STATUS_BY_KIND[exception.kind];
      const body = errorBody(status, exception.code, exception.message, exception.details, exception.extra);
      if (status >= 500) body.request_id = requestIdOf(req, res);
      return body;
    }
    if (exception instanceof HttpException) {
      const status = exception.getStatus();
      const response = exception.getResponse();
      const message =
        typeof response === 'string'
          ? response
          : Array.isArray((response as { message?: unknown }).message)
            ? (response as { message: string[] }).message.join('; ')
            : String((response as { message?: unknown }).message ?? exception.message);
      if (status === 404) {
        return errorBody(404, 'route_not_found', `No route ${req.method} ${req.path}`);
      }
      if (status < 500) return errorBody(status, 'http_error', message);
      return errorBody(status, 'internal_error', 'Something went wrong on our side', [], { request_id: requestIdOf(req, res) });
    }
    const maybe = exception as { type?: string; status?: number };
    if (maybe && typeof maybe === 'object' && typeof maybe.type === 'string' && maybe.type.startsWith('entity.')) {
      return lowLevelErrorBody(maybe, requestIdOf(req, res));
    }
    return errorBody(500, 'internal_error', 'Something went wrong on our side', [], { request_id: requestIdOf(req, res) });
  }
}
