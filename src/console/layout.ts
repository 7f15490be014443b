import type { Operator } from '../operators/operators.service';
import { ASSET_VERSION } from './assets';
import { html, label, ROLE_LABEL, SafeHtml } from './html';

export type Section = 'overview' | 'subscriptions' | 'payments' | 'runs' | 'reconciliation' | 'webhooks' | 'login';

export interface Notice {
  kind: 'ok' | 'error' | 'info';
  text: string;
}

export interface PageContext {
  operator: Operator | null;
  csrfToken: string | null;
  section: Section;
  notice?: Notice | null;
}

const NAV: { section: Section; href: string; text: string }[] = [
  { section: 'overview', href: '/console', text: '개요' },
  { section: 'subscriptions', href: '/console/subscriptions', text: '구독' },
  { section: 'payments', href: '/console/payments', text: '결제' },
  { section: 'runs', href: '/console/charge-runs', text: '청구 실행' },
  { section: 'reconciliation', href: '/console/reconciliation', text: '대사' },
  { section: 'webhooks', href: '/console/webhooks', text: '웹훅' },
];

export function noticeBox(notice: Notice | null | undefined): SafeHtml {
  if (!notice) return html``;
  return html`<div class="notice ${notice.kind}" role="${notice.kind === 'error' ? 'alert' : 'status'}" data-notice="${notice.kind}">${notice.text}</div>`;
}

/** A hidden field with the session's CSRF token; every state-changing form carries one. */
export function csrfField(ctx: PageContext): SafeHtml {
  return html`<input type="hidden" name="_csrf" value="${ctx.csrfToken ?? ''}" />`;
}

/** The whole page. No inline script or style anywhere, so the Content-Security-Policy can be `'self'` only. */
export function page(title: string, ctx: PageContext, body: SafeHtml): string {
  const op = ctx.operator;
  return html`<!doctype html>
    <html lang="ko">
      <head>
        <meta charset="utf-8" />
        <meta name="viewport" content="width=device-width, initial-scale=1" />
        <meta name="htmx-config" content='{"includeIndicatorCSS":false}' />
        <title>${title} · 재무 콘솔</title>
        <link rel="icon" href="data:," />
        <link rel="stylesheet" href="/console/assets/console.css?v=${ASSET_VERSION}" />
        <script src="/console/assets/htmx.min.js?v=${ASSET_VERSION}" defer></script>
      </head>
      <body>
        <a class="skip" href="#main">본문으로 건너뛰기</a>
        <header class="top">
          <div class="bar">
            <a class="brand" href="/console">결제 재무 콘솔</a>
            ${
              op
                ? html`<nav aria-label="주 메뉴">
                      <ul>
                        ${NAV.map((n) => html`<li><a href="${n.href}" ${n.section === ctx.section ? html` aria-current="page"` : html``}>${n.text}</a></li>`)}
                      </ul>
                    </nav>
                    <div class="who">
                      <span data-operator="${op.id}">${op.name || op.email} · ${label(ROLE_LABEL, op.role)}</span>
                      <a href="/console/account/password">비밀번호 변경</a>
                      <form method="post" action="/console/logout">${csrfField(ctx)}<button type="submit">로그아웃</button></form>
                    </div>`
                : html``
            }
          </div>
        </header>
        <main id="main" tabindex="-1">${noticeBox(ctx.notice)} ${body}</main>
      </body>
    </html>`.value;
}
