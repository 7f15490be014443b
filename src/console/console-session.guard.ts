import { CanActivate, ExecutionContext, Injectable, SetMetadata } from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import type { Request } from 'express';
import { timingSafeEqual } from 'node:crypto';
import { OperatorSession, OperatorsService, SESSION_ABSOLUTE_MS } from '../operators/operators.service';

export const CONSOLE_OPEN = 'console:open';
export const FINANCE_ONLY = 'console:finance-only';
export const PASSWORD_CHANGE_ALLOWED = 'console:password-change-allowed';

/** The route needs no console session (the sign-in page and the static assets). */
export const ConsoleOpen = () => SetMetadata(CONSOLE_OPEN, true);
/** The route stays open to an operator who must first change a one-time password (the password page, sign-out). */
export const PasswordChangeAllowed = () => SetMetadata(PASSWORD_CHANGE_ALLOWED, true);
/** The route changes something: only the finance role may call it (viewers read only). */
export const FinanceOnly = () => SetMetadata(FINANCE_ONLY, true);

export interface ConsoleRequest extends Request {
  consoleSession?: OperatorSession;
}

/** No valid session: the filter sends the browser to the sign-in page. */
export class ConsoleSignInRequired extends Error {
  constructor() {
    super('console sign-in required');
  }
}

/** Signed in with a one-time password: the filter sends the browser to the password page. */
export class ConsolePasswordChangeRequired extends Error {
  constructor() {
    super('console password change required');
  }
}

/** Signed in, but not allowed (viewer role, missing or wrong CSRF token, a cross-site request). */
export class ConsoleForbidden extends Error {
  constructor(readonly reason: string) {
    super(reason);
  }
}

export function sameToken(a: unknown, b: string): boolean {
  if (typeof a !== 'string' || a.length !== b.length || !a.length) return false;
  return timingSafeEqual(Buffer.from(a), Buffer.from(b));
}

export function readCookie(req: Request, name: string): string | undefined {
  const header = req.headers.cookie;
  if (!header) return undefined;
  for (const part of header.split(';')) {
    const i = part.indexOf('=');
    if (i > 0 && part.slice(0, i).trim() === name) {
      try {
        return decodeURIComponent(part.slice(i + 1).trim());
      } catch {
        return undefined;
      }
    }
  }
  return undefined;
}

export const SESSION_COOKIE = 'console_session';

/** httpOnly, SameSite=Strict, Secure in production; the browser forgets it at the session's absolute limit. */
export function sessionCookie(value: string, production: boolean, maxAgeMs = SESSION_ABSOLUTE_MS): string {
  return `${SESSION_COOKIE}=${encodeURIComponent(value)}; Path=/console; HttpOnly; SameSite=Strict; Max-Age=${Math.floor(maxAgeMs / 1000)}${production ? '; Secure' : ''}`;
}

/**
 * The console's own authentication: API keys are never looked at here (console routes are @Public for the API-key
 * guard). A request needs a live operator session; one that changes state needs the session's CSRF token (form
 * field `_csrf` or header `X-CSRF-Token`) and must not come from another site; FinanceOnly routes need the finance role.
 */
@Injectable()
export class ConsoleSessionGuard implements CanActivate {
  constructor(
    private readonly reflector: Reflector,
    private readonly operators: OperatorsService,
  ) {}

  async canActivate(ctx: ExecutionContext): Promise<boolean> {
    const targets = [ctx.getHandler(), ctx.getClass()];
    if (this.reflector.getAllAndOverride<boolean>(CONSOLE_OPEN, targets)) return true;
    const req = ctx.switchToHttp().getRequest<ConsoleRequest>();
    const token = readCookie(req, SESSION_COOKIE);
    const session = token ? await this.operators.session(token) : null;
    if (!session) throw new ConsoleSignInRequired();
    req.consoleSession = session;
    if (!['GET', 'HEAD'].includes(req.method)) {
      if (req.headers['sec-fetch-site'] === 'cross-site') throw new ConsoleForbidden('다른 사이트에서 보낸 요청은 받지 않습니다.');
      const sent = (req.body as Record<string, unknown> | undefined)?._csrf ?? req.headers['x-csrf-token'];
      if (!sameToken(sent, session.csrfToken)) throw new ConsoleForbidden('보안 토큰(CSRF)이 맞지 않습니다. 페이지를 새로 고친 뒤 다시 시도하세요.');
    }
    if (session.operator.mustChangePassword && !this.reflector.getAllAndOverride<boolean>(PASSWORD_CHANGE_ALLOWED, targets)) {
      throw new ConsolePasswordChangeRequired();
    }
    if (this.reflector.getAllAndOverride<boolean>(FINANCE_ONLY, targets) && session.operator.role !== 'finance') {
      throw new ConsoleForbidden('조회 전용 계정은 이 작업을 할 수 없습니다. 재무(finance) 권한이 필요합니다.');
    }
    return true;
  }
}
