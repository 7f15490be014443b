import { html } from '../html';
import { Notice, page } from '../layout';

export function loginPage(opts: { loginToken: string; email?: string; next?: string; notice?: Notice | null }): string {
  return page(
    '로그인',
    { operator: null, csrfToken: null, section: 'login', notice: null },
    html`<div class="login card">
<h1>재무 콘솔 로그인</h1>
${opts.notice ? html`<div class="notice ${opts.notice.kind}" role="alert" data-notice="${opts.notice.kind}">${opts.notice.text}</div>` : html``}
<form method="post" action="/console/login">
<input type="hidden" name="_login" value="${opts.loginToken}">
<input type="hidden" name="next" value="${opts.next ?? ''}">
<label for="email">이메일</label>
<input id="email" name="email" type="email" autocomplete="username" required value="${opts.email ?? ''}" autofocus>
<label for="password">비밀번호</label>
<input id="password" name="password" type="password" autocomplete="current-password" required>
<p><button type="submit">로그인</button></p>
</form>
<p class="muted small">운영자 계정으로만 로그인할 수 있습니다. API 키로는 로그인할 수 없습니다.
계정은 <code>npm run cli -- operators:create --email … --role finance|viewer</code> 로 만듭니다.
비밀번호를 5번 연속 틀리면 15분 동안 잠깁니다.</p>
</div>`,
  );
}
