import { Controller, Get, Inject, Post, Req, Res, UseFilters, UseGuards } from '@nestjs/common';
import { ApiExcludeController } from '@nestjs/swagger';
import type { Response } from 'express';
import { randomBytes } from 'node:crypto';
import { Public } from '../auth/auth.decorators';
import { OperatorsService } from '../operators/operators.service';
import { Runtime, RUNTIME } from '../config/runtime';
import { CONSOLE_CSS, htmxScript } from './assets';
import { ConsoleExceptionFilter } from './console-exception.filter';
import {
  ConsoleOpen,
  ConsoleRequest,
  ConsoleSessionGuard,
  PasswordChangeAllowed,
  readCookie,
  sameToken,
  SESSION_COOKIE,
  sessionCookie,
} from './console-session.guard';
import { kst } from './html';
import { loginPage, passwordPage } from './views/auth.view';
import type { Notice } from './layout';

const LOGIN_COOKIE = 'console_login';

/** Only a path inside the console is followed after signing in (no open redirect). */
export function safeNext(next: unknown): string {
  return typeof next === 'string' && /^\/console(\/[\w\-./?=&%]*)?$/.test(next) && !next.includes('//') ? next : '/console';
}

/**
 * Signing in and out, and the console's static assets. The sign-in form is protected against cross-site posting by
 * a double-submit token (a SameSite=Strict cookie and the same value in the form).
 */
@ApiExcludeController()
@Public()
@Controller('console')
@UseGuards(ConsoleSessionGuard)
@UseFilters(ConsoleExceptionFilter)
export class ConsoleAuthController {
  constructor(
    private readonly operators: OperatorsService,
    @Inject(RUNTIME) private readonly runtime: Runtime,
  ) {}

  private get production(): boolean {
    return this.runtime.config.nodeEnv === 'production';
  }

  /** Always 200: a refused sign-in is the sign-in page again, with the reason. */
  private showLogin(res: Response, opts: Omit<Parameters<typeof loginPage>[0], 'loginToken'>): void {
    const token = randomBytes(24).toString('base64url');
    res.setHeader('Set-Cookie', `${LOGIN_COOKIE}=${token}; Path=/console/login; HttpOnly; SameSite=Strict; Max-Age=3600${this.production ? '; Secure' : ''}`);
    res
      .status(200)
      .type('html')
      .send(loginPage({ ...opts, loginToken: token }));
  }

  @Get('login')
  @ConsoleOpen()
  async loginForm(@Req() req: ConsoleRequest, @Res() res: Response): Promise<void> {
    const token = readCookie(req, SESSION_COOKIE);
    if (token && (await this.operators.session(token))) {
      res.redirect(303, safeNext(req.query.next));
      return;
    }
    const done = req.query.done === 'logout' ? { kind: 'info' as const, text: '로그아웃했습니다.' } : null;
    this.showLogin(res, { next: safeNext(req.query.next), notice: done });
  }

  @Post('login')
  @ConsoleOpen()
  async login(@Req() req: ConsoleRequest, @Res() res: Response): Promise<void> {
    const body = (req.body ?? {}) as Record<string, unknown>;
    const email = typeof body.email === 'string' ? body.email.slice(0, 320) : '';
    const password = typeof body.password === 'string' ? body.password : '';
    const next = safeNext(body.next);
    const cookieToken = readCookie(req, LOGIN_COOKIE);
    if (!cookieToken || !sameToken(body._login, cookieToken)) {
      this.showLogin(res, { email, next, notice: { kind: 'error', text: '로그인 화면이 만료되었습니다. 다시 시도하세요.' } });
      return;
    }
    if (!email || !password) {
      this.showLogin(res, { email, next, notice: { kind: 'error', text: '이메일과 비밀번호를 입력하세요.' } });
      return;
    }
    const result = await this.operators.signIn(email, password);
    if (result.kind === 'locked') {
      this.showLogin(res, {
        email,
        next,
        notice: { kind: 'error', text: `비밀번호를 여러 번 틀려 계정이 잠겼습니다. ${kst(result.until)} 이후에 다시 시도하세요.` },
      });
      return;
    }
    if (result.kind === 'invalid') {
      this.showLogin(res, { email, next, notice: { kind: 'error', text: '이메일 또는 비밀번호가 맞지 않습니다.' } });
      return;
    }
    res.setHeader('Set-Cookie', [sessionCookie(result.token, this.production), `${LOGIN_COOKIE}=; Path=/console/login; HttpOnly; SameSite=Strict; Max-Age=0`]);
    res.redirect(303, next);
  }

  @Post('logout')
  @PasswordChangeAllowed()
  async logout(@Req() req: ConsoleRequest, @Res() res: Response): Promise<void> {
    const token = readCookie(req, SESSION_COOKIE);
    if (token) await this.operators.signOut(token);
    res.setHeader('Set-Cookie', sessionCookie('', this.production, 0));
    res.redirect(303, '/console/login?done=logout');
  }

  private showPassword(req: ConsoleRequest, res: Response, notice: Notice | null): void {
    const s = req.consoleSession!;
    res
      .status(200)
      .type('html')
      .send(passwordPage({ operator: s.operator, csrfToken: s.csrfToken, section: 'overview', notice }, s.operator.mustChangePassword));
  }

  @Get('account/password')
  @PasswordChangeAllowed()
  passwordForm(@Req() req: ConsoleRequest, @Res() res: Response): void {
    this.showPassword(req, res, null);
  }

  @Post('account/password')
  @PasswordChangeAllowed()
  async changePassword(@Req() req: ConsoleRequest, @Res() res: Response): Promise<void> {
    const body = (req.body ?? {}) as Record<string, unknown>;
    const current = typeof body.current === 'string' ? body.current : '';
    const next = typeof body.new_password === 'string' ? body.new_password : '';
    if (next !== body.confirm_password) {
      this.showPassword(req, res, { kind: 'error', text: '새 비밀번호와 확인이 다릅니다.' });
      return;
    }
    const session = req.consoleSession!;
    const result = await this.operators.changePassword(session.operator.id, current, next, session.id);
    if (result.kind === 'changed') {
      res.redirect(303, '/console?done=password_changed');
      return;
    }
    if (result.kind === 'wrong_current' && result.lockedUntil) {
      res.setHeader('Set-Cookie', sessionCookie('', this.production, 0));
      res.redirect(303, '/console/login');
      return;
    }
    this.showPassword(req, res, { kind: 'error', text: result.kind === 'invalid' ? result.message : '지금 비밀번호가 맞지 않습니다.' });
  }

  @Get('assets/htmx.min.js')
  @ConsoleOpen()
  htmx(@Res() res: Response): void {
    res.setHeader('Cache-Control', 'public, max-age=86400');
    res.type('application/javascript').send(htmxScript());
  }

  @Get('assets/console.css')
  @ConsoleOpen()
  css(@Res() res: Response): void {
    res.setHeader('Cache-Control', 'public, max-age=86400');
    res.type('text/css').send(CONSOLE_CSS);
  }
}
