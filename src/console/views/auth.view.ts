import { html } from '../html';
import { csrfField, Notice, page, PageContext } from '../layout';

export function loginPage(opts: { loginToken: string; email?: string; next?: string; notice?: Notice | null }): string {
  return page(
    '로그인',
    { operator: null, csrfToken: null, section: 'login', notice: null },
    html`<div class="login card">
      <h1>재무 콘솔 로그인</h1>
      ${opts.notice ? html`<div class="notice ${opts.notice.kind}" role="alert" data-notice="${opts.notice.kind}">${opts.notice.text}</div>` : html``}
      <form method="post" action="/console/login">
        <input type="hidden" name="_login" value="${opts.loginToken}" />
        <input type="hidden" name="next" value="${opts.next ?? ''}" />
        <label for="email">이메일</label>
        <input id="email" name="email" type="email" autocomplete="username" required value="${opts.email ?? ''}" autofocus />
        <label for="password">비밀번호</label>
        <input id="password" name="password" type="password" autocomplete="current-password" required />
        <p><button type="submit">로그인</button></p>
      </form>
      <p class="muted small">
        운영자 계정으로만 로그인할 수 있습니다. API 키로는 로그인할 수 없습니다. 계정은
        <code>npm run cli -- operators:create --email … --role finance|viewer</code> 로 만듭니다. 비밀번호를 5번 연속 틀리면 15분 동안 잠깁니다.
      </p>
    </div>`,
  );
}

export function passwordPage(ctx: PageContext, mustChange: boolean): string {
  return page(
    '비밀번호 변경',
    ctx,
    html`<div class="login card">
      <h1>비밀번호 변경</h1>
      ${mustChange ? html`<p class="notice info" data-must-change>처음 받은 비밀번호는 한 번만 쓸 수 있습니다. 계속하려면 새 비밀번호를 정하세요.</p>` : html``}
      <form method="post" action="/console/account/password">
        ${csrfField(ctx)}
        <label for="current">지금 비밀번호</label>
        <input id="current" name="current" type="password" autocomplete="current-password" required autofocus />
        <label for="new-password">새 비밀번호 (12자 이상)</label>
        <input id="new-password" name="new_password" type="password" autocomplete="new-password" minlength="12" maxlength="200" required />
        <label for="confirm-password">새 비밀번호 확인</label>
        <input id="confirm-password" name="confirm_password" type="password" autocomplete="new-password" minlength="12" maxlength="200" required />
        <p><button type="submit" data-action="change-password">비밀번호 변경</button></p>
      </form>
      <p class="muted small">바꾸면 이 브라우저를 뺀 다른 곳의 로그인은 모두 끝납니다.</p>
    </div>`,
  );
}
