/**
 * What the console's page controllers share: reading a form or a query, the page context (the operator, the CSRF
 * token, the notice of a finished action), and sending a page. Reads go through the services (and read-only SQL where
 * no service lists what a screen needs); every action calls the same service method as the API, with the operator as
 * the actor and the reason the operator typed, after a review step.
 */

import type { Response } from 'express';
import { DomainError, NotFoundError } from '../common/errors';
import { Operator } from '../operators/operators.service';
import { ConsoleRequest } from './console-session.guard';
import { Notice, PageContext, Section } from './layout';

export const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

const DONE: Record<string, Notice> = {
  paused: { kind: 'ok', text: '구독을 일시정지했습니다.' },
  resumed: { kind: 'ok', text: '구독을 재개했습니다.' },
  canceled: { kind: 'ok', text: '구독을 해지했습니다.' },
  cancel_scheduled: { kind: 'ok', text: '현재 기간이 끝나면 해지되도록 예약했습니다.' },
  refunded: { kind: 'ok', text: '환불했습니다.' },
  refund_unknown: { kind: 'info', text: 'Bootpay의 환불 응답을 받지 못했습니다. 같은 환불을 다시 보내 결과를 확정합니다 (다음 청구 실행 때).' },
  resent: { kind: 'ok', text: '웹훅을 다시 보내도록 예약했습니다.' },
  password_changed: { kind: 'ok', text: '비밀번호를 바꿨습니다.' },
};

export function str(v: unknown, max = 200): string {
  return typeof v === 'string' ? v.trim().slice(0, max) : '';
}

export function pageNumber(v: unknown): number {
  const n = Number(str(v, 6));
  return Number.isSafeInteger(n) && n >= 1 && n <= 10000 ? n : 1;
}

export function uuidOr404(id: string, what: string): string {
  if (!UUID.test(id)) throw new NotFoundError(what, id);
  return id;
}

/** A reason typed by the operator: required, at most 500 characters, no control characters. */
export function reasonOf(v: unknown): string | null {
  const r = typeof v === 'string' ? v.trim().replace(/\r?\n/g, ' ') : '';
  // eslint-disable-next-line no-control-regex
  if (!r || r.length > 500 || /[\u0000-\u001f\u007f]/.test(r)) return null;
  return r;
}

/** A DomainError as the operator sees it: the API's own message (for example the allowed statuses of a refusal). */
export function refusal(err: DomainError): Notice {
  return { kind: 'error', text: `요청이 거부되었습니다: ${err.message}` };
}

/** The page's context: the operator, the CSRF token, the section, and the notice given or that of `?done=`. */
export function pageContext(req: ConsoleRequest, section: Section, notice?: Notice | null): PageContext {
  const s = req.consoleSession!;
  const done = DONE[str(req.query.done, 40)];
  return { operator: s.operator, csrfToken: s.csrfToken, section, notice: notice ?? done ?? null };
}

export function operatorOf(req: ConsoleRequest): Operator {
  return req.consoleSession!.operator;
}

export function sendHtml(res: Response, body: string, status = 200): void {
  res.status(status).type('html').send(body);
}
