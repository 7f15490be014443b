import { ArgumentsHost, Catch, ExceptionFilter, HttpException, Logger } from '@nestjs/common';
import type { Response } from 'express';
import { randomUUID } from 'node:crypto';
import { DomainError, STATUS_BY_KIND } from '../common/errors';
import { ConsoleForbidden, ConsolePasswordChangeRequired, ConsoleRequest, ConsoleSignInRequired } from './console-session.guard';
import { html } from './html';
import { page, Section } from './layout';

/**
 * Errors of console routes become pages, never the API's JSON: no session sends the browser to the sign-in page
 * (htmx requests get HX-Redirect), a refusal is a 403 page with the reason, an unknown id a 404 page.
 */
@Catch()
export class ConsoleExceptionFilter implements ExceptionFilter {
  private readonly logger = new Logger('Console');

  catch(exception: unknown, host: ArgumentsHost): void {
    const req = host.switchToHttp().getRequest<ConsoleRequest>();
    const res = host.switchToHttp().getResponse<Response>();
    if (res.headersSent) return;
    if (exception instanceof ConsoleSignInRequired) {
      const next = req.method === 'GET' && !req.headers['hx-request'] ? `?next=${encodeURIComponent(req.originalUrl)}` : '';
      if (req.headers['hx-request']) {
        res.status(401).setHeader('HX-Redirect', '/console/login').end();
        return;
      }
      res.redirect(303, `/console/login${next}`);
      return;
    }
    if (exception instanceof ConsolePasswordChangeRequired) {
      if (req.headers['hx-request']) {
        res.status(403).setHeader('HX-Redirect', '/console/account/password').end();
        return;
      }
      res.redirect(303, '/console/account/password');
      return;
    }
    const ctx = { operator: req.consoleSession?.operator ?? null, csrfToken: req.consoleSession?.csrfToken ?? null, section: 'overview' as Section };
    let status = 500;
    let title = '오류';
    let message = '처리 중 문제가 생겼습니다.';
    if (exception instanceof ConsoleForbidden) {
      status = 403;
      title = '허용되지 않은 요청';
      message = exception.reason;
    } else if (exception instanceof DomainError) {
      status = STATUS_BY_KIND[exception.kind];
      title = status === 404 ? '찾을 수 없음' : '요청을 처리할 수 없음';
      message = exception.message;
    } else if (exception instanceof HttpException) {
      status = exception.getStatus();
      title = status === 404 ? '찾을 수 없음' : '요청을 처리할 수 없음';
      message = status === 404 ? '요청한 페이지가 없습니다.' : exception.message;
    }
    if (status >= 500) {
      const requestId = (req as ConsoleRequest & { requestId?: string }).requestId ?? randomUUID();
      message = `처리 중 문제가 생겼습니다. (요청 ID ${requestId})`;
      this.logger.error({
        message: 'console request failed',
        request_id: requestId,
        method: req.method,
        path: req.path,
        error_name: exception instanceof Error ? exception.name : typeof exception,
        error_message: exception instanceof Error ? exception.message : undefined,
        stack: exception instanceof Error ? exception.stack : undefined,
      });
    }
    res
      .status(status)
      .type('html')
      .send(
        page(
          title,
          ctx,
          html`<h1>${title}</h1>
            <div class="notice error" role="alert">${message}</div>
            <p><a href="/console">개요로 돌아가기</a></p>`,
        ),
      );
  }
}
