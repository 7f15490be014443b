import { copyFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { runOperatorsCommand } from '../src/operators/operators.cli';
import { OperatorsService } from '../src/operators/operators.service';
import { ARTIFACTS, consoleContext, launchChromium, shot } from './console/browser';
import { bearer, startTestApp, TestApp } from './utils/test-app';
import { createBillingKey, createCustomer, createPlan, createSubscription, paymentDetails, runCharges } from './utils/fixtures';

/**
 * The finance console in a real browser (headless Debian chromium driven by playwright-core) against the real app on
 * a real port, its PostgreSQL and the fake Bootpay. Every screen is saved under test-artifacts/console/, and any
 * console error (a Content-Security-Policy violation included) fails the test.
 */
describe('Finance console (browser)', () => {
  let t: TestApp;
  let browser: Browser;
  const problems: string[] = [];
  const finance = { email: 'jaemu.kim@example.com', name: '김재무', password: '' };
  const viewer = { email: 'viewer.lee@example.com', name: '이조회', password: '' };
  const lockable = { email: 'park.lock@example.com', name: '박잠금', password: '' };
  let financeId = '';
  let pastDue: { subscriptionId: string; receiptId: string; email: string };
  let other: { subscriptionId: string };

  beforeAll(async () => {
    browser = await launchChromium();
    t = await startTestApp();
    const operators = t.app.get(OperatorsService);
    const f = await operators.create({ email: finance.email, role: 'finance', name: finance.name });
    finance.password = f.password;
    financeId = f.operator.id;
    // The viewer has already chosen its own password (the finance operator does it in the first test).
    const v = await operators.create({ email: viewer.email, role: 'viewer', name: viewer.name });
    viewer.password = 'viewer-chose-this-one';
    expect(await operators.changePassword(v.operator.id, v.password, viewer.password)).toEqual({ kind: 'changed' });
    lockable.password = (await operators.create({ email: lockable.email, role: 'viewer', name: lockable.name })).password;

    // 11,000원 a month with 1,000원 tax-free (VAT 909원). Two customers subscribe at T0 (2026-01-15 10:00 KST).
    const plan = await createPlan(t, { name: '프로 월간', amount: 11000, tax_free_amount: 1000 });
    const kim = await createCustomer(t, { name: '김연체', email: 'pastdue.kim@example.com' });
    const kimKey = await createBillingKey(t, kim.id);
    const kimSub = await createSubscription(t, { customer_id: kim.id, plan_id: plan.id, billing_key_id: kimKey.id });
    const choi = await createCustomer(t, { name: '최활성', email: 'active.choi@example.com' });
    const choiKey = await createBillingKey(t, choi.id);
    const choiSub = await createSubscription(t, { customer_id: choi.id, plan_id: plan.id, billing_key_id: choiKey.id });
    // At the renewal Kim's card declines: past_due. Choi renews.
    t.fake.setKeyBehavior(kimKey.bootpay_receipt_id, 'insufficient_funds');
    t.clock.set(new Date('2026-02-15T02:00:00.000Z'));
    await runCharges(t);
    pastDue = { subscriptionId: kimSub.id, receiptId: kimKey.bootpay_receipt_id, email: 'pastdue.kim@example.com' };
    other = { subscriptionId: choiSub.id };
    const [kimNow] = (await t.db.query(`SELECT status FROM subscriptions WHERE id = $1`, [kimSub.id])).rows;
    expect(kimNow.status).toBe('past_due');
  });

  afterAll(async () => {
    await browser?.close();
    await t?.close();
  });

  afterEach(() => {
    // Every test fails on a console error, a page error or a CSP violation in any page it opened.
    const seen = problems.splice(0);
    expect(seen).toEqual([]);
  });

  async function signIn(page: Page, who: { email: string; password: string }): Promise<void> {
    await page.goto(`${t.url}/console`);
    await page.waitForURL(/\/console\/login/);
    await page.waitForFunction(`document.activeElement && document.activeElement.id === 'email'`);
    // By keyboard: the email field has the focus, Tab moves to the password, Enter sends the form.
    await page.keyboard.type(who.email);
    await page.keyboard.press('Tab');
    await page.keyboard.type(who.password);
    await page.keyboard.press('Enter');
    await page.waitForURL(`${t.url}/console`);
  }

  it('should sign a finance operator in with the printed one-time password, by keyboard, make it choose its own, and show the overview', async () => {
    const { context, page } = await consoleContext(browser, problems);
    await page.goto(`${t.url}/console/login`);
    await shot(page, '01-login');
    await page.goto(`${t.url}/console`);
    await page.waitForURL(/\/console\/login/);
    await page.waitForFunction(`document.activeElement && document.activeElement.id === 'email'`);
    await page.keyboard.type(finance.email);
    await page.keyboard.press('Tab');
    await page.keyboard.type(finance.password);
    await page.keyboard.press('Enter');
    // The printed password is for one sign-in: every console page leads to the password page until it is changed.
    await page.waitForURL(`${t.url}/console/account/password`);
    await page.goto(`${t.url}/console/subscriptions`);
    await page.waitForURL(`${t.url}/console/account/password`);
    await expect(page.locator('[data-must-change]').count()).resolves.toBe(1);
    await shot(page, '01b-change-password');
    const chosen = 'finance-chose-a-long-one';
    await page.waitForFunction(`document.activeElement && document.activeElement.id === 'current'`);
    await page.keyboard.type(finance.password);
    await page.keyboard.press('Tab');
    await page.keyboard.type(chosen);
    await page.keyboard.press('Tab');
    await page.keyboard.type(chosen);
    await page.keyboard.press('Enter');
    await page.waitForURL(/\/console\?done=password_changed/);
    finance.password = chosen;
    await expect(page.locator('header .who').textContent()).resolves.toContain('김재무');
    // MRR: Choi's active subscription (Kim is past_due and counts too): 2 × 11,000원.
    await expect(page.locator('[data-kpi="mrr"]').textContent()).resolves.toBe('22,000원');
    await expect(page.locator('[data-count="past_due"]').textContent()).resolves.toBe('1');
    await expect(page.locator('main').textContent()).resolves.toContain('1회 실패');
    // The reconciliation count is loaded after the page by htmx.
    await page.locator('[data-problem="reconciliation"]').waitFor();
    await shot(page, '02-overview');
    await context.close();
  });

  it('should find a past_due subscription by email, retry it once the card recovers, and show it active', async () => {
    const { context, page } = await consoleContext(browser, problems);
    await signIn(page, finance);
    await page.getByRole('link', { name: '구독', exact: true }).click();
    // Filters: past_due at the first dunning stage, on the plan.
    await page.selectOption('#status', 'past_due');
    await page.selectOption('#stage', '1');
    await page.selectOption('#plan', { label: '프로 월간 (11,000원)' });
    await page.getByRole('button', { name: '검색' }).click();
    await expect(page.locator('tr[data-subscription]').count()).resolves.toBe(1);
    await expect(page.locator(`tr[data-subscription="${pastDue.subscriptionId}"]`).count()).resolves.toBe(1);
    await page.selectOption('#stage', '2');
    await page.getByRole('button', { name: '검색' }).click();
    await expect(page.locator('tr[data-subscription]').count()).resolves.toBe(0);
    await page.goto(`${t.url}/console/subscriptions`);
    await page.fill('#q', pastDue.email);
    await page.getByRole('button', { name: '검색' }).click();
    const rows = page.locator('tr[data-subscription]');
    await expect(rows.count()).resolves.toBe(1);
    await shot(page, '03-subscriptions-search');
    await rows.first().getByRole('link', { name: '김연체' }).click();
    await expect(page.locator('[data-subscription-status]').getAttribute('data-subscription-status')).resolves.toBe('past_due');
    await shot(page, '04-subscription-past-due');

    // The card works again at Bootpay.
    const recovered = await fetch(`${t.fake.url}/__fake/billing-keys/${pastDue.receiptId}/behavior`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ decline: null }),
    });
    expect(recovered.status).toBe(200);

    await page.locator('details[data-action-panel="retry"] summary').click();
    await page.fill('#retry-reason', '고객이 카드 한도를 올렸다고 연락함');
    await page.locator('button[data-action="retry"]').click();
    await expect(page.locator('[data-review="retry"]').textContent()).resolves.toContain('11,000원');
    await shot(page, '05-retry-review');
    await page.locator('button[data-confirm="retry"]').click();
    await page.waitForURL(/done=retried/);
    await expect(page.locator('[data-subscription-status]').getAttribute('data-subscription-status')).resolves.toBe('active');
    await expect(page.locator('[data-notice="ok"]').textContent()).resolves.toContain('활성화');
    await shot(page, '06-subscription-active');
    const [sub] = (await t.db.query(`SELECT status FROM subscriptions WHERE id = $1`, [pastDue.subscriptionId])).rows;
    expect(sub.status).toBe('active');
    // The retry is in the audit trail under the operator, with the reason typed.
    const [retried] = (
      await t.db.query(`SELECT actor_type, reason FROM subscription_events WHERE subscription_id = $1 AND type = 'subscription.retry_requested'`, [
        pastDue.subscriptionId,
      ])
    ).rows;
    expect(retried).toEqual({ actor_type: 'operator', reason: '고객이 카드 한도를 올렸다고 연락함' });
    await context.close();
  });

  it('should preview a partial refund with its tax-free part and VAT, refuse more than the balance, and refund', async () => {
    const { context, page } = await consoleContext(browser, problems);
    await signIn(page, finance);
    const first = (await paymentDetails(t, pastDue.subscriptionId)).find((p) => p.status === 'DONE' && p.period.index === 0)!;
    await page.goto(`${t.url}/console/subscriptions/${pastDue.subscriptionId}`);
    await page.locator(`tr[data-payment="${first.id}"] a[data-action="refund"]`).click();
    await expect(page.locator('[data-balance]').textContent()).resolves.toBe('11,000원');

    // More than the balance is refused before anything is sent.
    await page.fill('#refund-amount', '12000');
    await page.fill('#refund-reason', '이중 결제 문의');
    await page.locator('#refund-amount').evaluate((el) => el.removeAttribute('max'));
    await page.locator('button[data-action="refund-review"]').click();
    await expect(page.locator('[data-notice="error"]').textContent()).resolves.toContain('남은 금액 11,000원보다 큽니다');
    await shot(page, '07-refund-refused');

    await page.fill('#refund-amount', '5500');
    await page.locator('button[data-action="refund-review"]').click();
    // 5,500원 of 11,000원 with 1,000원 tax-free: 500원 tax-free; VAT (5,500 − 500) / 11 = 454.5 → 455원; supply 4,545원.
    await expect(page.locator('[data-split-amount]').textContent()).resolves.toBe('5,500원');
    await expect(page.locator('[data-split-tax-free]').textContent()).resolves.toBe('500원');
    await expect(page.locator('[data-split-vat]').textContent()).resolves.toBe('455원');
    await expect(page.locator('[data-split-supply]').textContent()).resolves.toBe('4,545원');
    await expect(page.locator('[data-balance-after]').textContent()).resolves.toBe('5,500원');
    await shot(page, '08-refund-preview');
    expect(t.fake.ledger().cancels).toHaveLength(0);

    await page.locator('button[data-confirm="refund"]').click();
    await page.waitForURL(/done=refunded/);
    await expect(page.locator('[data-payment-balance]').textContent()).resolves.toBe('5,500원');
    const refundRow = page.locator('tr[data-refund]');
    await expect(refundRow.count()).resolves.toBe(1);
    await expect(refundRow.textContent()).resolves.toContain('김재무');
    await shot(page, '09-payment-refunded');
    expect(t.fake.ledger().cancels).toEqual([expect.objectContaining({ cancel_price: 5500, cancel_tax_free: 500 })]);
    const [refund] = (await t.db.query(`SELECT amount, tax_free_amount, vat, requested_by_api_key_id, requested_by_name, reason FROM refunds`)).rows;
    expect(refund).toEqual({
      amount: '5500',
      tax_free_amount: '500',
      vat: '455',
      requested_by_api_key_id: financeId,
      requested_by_name: '김재무',
      reason: '이중 결제 문의',
    });
    await context.close();
  });

  it('should pause with a resume date, resume, and name the operator and the reasons in the audit trail', async () => {
    const { context, page } = await consoleContext(browser, problems);
    await signIn(page, finance);
    await page.goto(`${t.url}/console/subscriptions/${other.subscriptionId}`);
    await page.locator('details[data-action-panel="pause"] summary').click();
    await page.fill('#pause-resume-at', '2026-03-01T09:00');
    await page.fill('#pause-reason', '고객 해외 출장');
    await page.locator('button[data-action="pause"]').click();
    await expect(page.locator('[data-review-resume-at]').textContent()).resolves.toBe('2026-03-01 09:00 KST');
    await page.locator('button[data-confirm="pause"]').click();
    await page.waitForURL(/done=paused/);
    await expect(page.locator('[data-subscription-status]').getAttribute('data-subscription-status')).resolves.toBe('paused');
    await expect(page.locator('[data-resume-at]').textContent()).resolves.toBe('2026-03-01 09:00 KST');
    await shot(page, '10-subscription-paused');
    const [paused] = (await t.db.query(`SELECT resume_at FROM subscriptions WHERE id = $1`, [other.subscriptionId])).rows;
    expect(paused.resume_at.toISOString()).toBe('2026-03-01T00:00:00.000Z');

    await page.locator('details[data-action-panel="resume"] summary').click();
    await page.fill('#resume-reason', '출장 일정 단축');
    await page.locator('button[data-action="resume"]').click();
    await page.locator('button[data-confirm="resume"]').click();
    await page.waitForURL(/done=resumed/);
    await expect(page.locator('[data-subscription-status]').getAttribute('data-subscription-status')).resolves.toBe('active');

    // The timeline names the operator with the reasons typed.
    const timeline = page.locator('[data-timeline] li[data-kind="event"]');
    const texts = await timeline.allTextContents();
    expect(texts.find((x) => x.includes('subscription.paused'))).toEqual(expect.stringContaining('김재무 (운영자)'));
    expect(texts.find((x) => x.includes('subscription.paused'))).toEqual(expect.stringContaining('고객 해외 출장'));
    expect(texts.find((x) => x.includes('subscription.resumed'))).toEqual(expect.stringContaining('출장 일정 단축'));
    await shot(page, '11-subscription-resumed-timeline');
    // docs/console-subscription.png (README) is this screen at 1280 px: refreshed with UPDATE_DOCS_SCREENSHOT=1.
    if (process.env.UPDATE_DOCS_SCREENSHOT === '1') {
      const docs = join(__dirname, '..', 'docs');
      mkdirSync(docs, { recursive: true });
      copyFileSync(join(ARTIFACTS, '11-subscription-resumed-timeline.png'), join(docs, 'console-subscription.png'));
    }

    const events = (
      await t.db.query(
        `SELECT type, actor_type, actor_id, actor_name, reason FROM subscription_events WHERE subscription_id = $1 AND type IN ('subscription.paused', 'subscription.resumed') ORDER BY seq`,
        [other.subscriptionId],
      )
    ).rows;
    expect(events).toEqual([
      { type: 'subscription.paused', actor_type: 'operator', actor_id: financeId, actor_name: '김재무', reason: '고객 해외 출장' },
      { type: 'subscription.resumed', actor_type: 'operator', actor_id: financeId, actor_name: '김재무', reason: '출장 일정 단축' },
    ]);
    await context.close();
  });

  it("should show the API's reason when an action is refused", async () => {
    const { context, page } = await consoleContext(browser, problems);
    await signIn(page, finance);
    await page.goto(`${t.url}/console/subscriptions/${other.subscriptionId}`);
    await page.locator('details[data-action-panel="pause"] summary').click();
    await page.fill('#pause-reason', '요청 확인');
    await page.locator('button[data-action="pause"]').click();
    // Meanwhile the SaaS backend cancels the subscription through the API.
    const res = await t.http
      .post(`/v1/subscriptions/${other.subscriptionId}/cancel`)
      .set(bearer(t.serviceKey))
      .send({ at_period_end: false, reason: 'customer left' });
    expect(res.status).toBe(200);
    await page.locator('button[data-confirm="pause"]').click();
    await expect(page.locator('[data-notice="error"]').textContent()).resolves.toContain(
      'Cannot pause a canceled subscription; allowed from: trialing, active, past_due',
    );
    await shot(page, '12-action-refused');
    await context.close();
  });

  it('should cancel at the end of the period, keeping the subscription active until then', async () => {
    const { context, page } = await consoleContext(browser, problems);
    await signIn(page, finance);
    await page.goto(`${t.url}/console/subscriptions/${pastDue.subscriptionId}`);
    await page.locator('details[data-action-panel="cancel"] summary').click();
    await page.locator('input[name="when"][value="period_end"]').check();
    await page.fill('#cancel-reason', '고객이 다음 달부터 해지 요청');
    await page.locator('button[data-action="cancel"]').click();
    await expect(page.locator('[data-review="cancel"]').textContent()).resolves.toContain('현재 기간이 끝날 때 해지');
    await page.locator('button[data-confirm="cancel"]').click();
    await page.waitForURL(/done=cancel_scheduled/);
    await expect(page.locator('[data-subscription-status]').getAttribute('data-subscription-status')).resolves.toBe('active');
    await expect(page.locator('[data-subscription-status]').textContent()).resolves.toContain('기간 종료 시 해지 예정');
    const [sub] = (await t.db.query(`SELECT status, cancel_at_period_end, cancel_reason FROM subscriptions WHERE id = $1`, [pastDue.subscriptionId])).rows;
    expect(sub).toEqual({ status: 'active', cancel_at_period_end: true, cancel_reason: '고객이 다음 달부터 해지 요청' });
    await context.close();
  });

  it('should show the other screens: payments, charge runs with live progress, reconciliation, webhooks', async () => {
    const { context, page } = await consoleContext(browser, problems);
    await signIn(page, finance);

    // The overview after the retry: 11,000원 recovered at the first retry step, and an open receipt mismatch.
    const [{ present }] = (await t.db.query(`SELECT to_regclass('public.finance_flags') IS NOT NULL AS present`)).rows;
    if (present) {
      await t.db.query(
        `INSERT INTO finance_flags (kind, subscription_id, message, created_at) VALUES ('receipt_mismatch', $1, 'receipt amount 12,000 vs 11,000', $2)`,
        [pastDue.subscriptionId, t.clock.now()],
      );
    }
    await page.goto(`${t.url}/console`);
    await expect(page.locator('[data-chart="recovered"] [data-retry-step="1"]').textContent()).resolves.toContain('11,000원 (1건)');
    await expect(page.locator('[data-problem="receipt-mismatches"]').textContent()).resolves.toBe(present ? '1건' : '0건');
    await shot(page, '13-overview-after-retry');

    await page.goto(`${t.url}/console/payments?status=failed`);
    const failed = page.locator('tr[data-payment]');
    await expect(failed.count()).resolves.toBe(1);
    await expect(failed.textContent()).resolves.toContain('잔액부족');
    await shot(page, '14-payments-failed');
    await page.goto(`${t.url}/console/payments?status=refunded&customer=${encodeURIComponent('김연체')}`);
    await expect(page.locator('tr[data-payment]').count()).resolves.toBe(1);
    // By date (KST): the two first charges were made on 2026-01-15.
    await page.goto(`${t.url}/console/payments?from=2026-01-15&to=2026-01-15`);
    await expect(page.locator('tr[data-payment]').count()).resolves.toBe(2);

    // A run in progress: its counts come in every 2 seconds without reloading the page.
    const [run] = (
      await t.db.query(
        `INSERT INTO charge_runs (trigger, status, as_of, worker, due, charged, started_at) VALUES ('manual', 'running', $1, 'test', 10, 3, $1) RETURNING id`,
        [t.clock.now()],
      )
    ).rows;
    await page.goto(`${t.url}/console/charge-runs`);
    const progress = page.locator(`[data-run="${run.id}"]`);
    await expect(progress.getAttribute('data-run-status')).resolves.toBe('running');
    await expect(progress.locator('[data-count="charged"]').textContent()).resolves.toBe('3');
    await shot(page, '15-charge-runs-running');
    await t.db.query(`UPDATE charge_runs SET charged = 10, status = 'completed', finished_at = $2 WHERE id = $1`, [run.id, t.clock.now()]);
    await page.locator(`[data-run="${run.id}"][data-run-status="completed"]`).waitFor({ timeout: 15000 });
    await expect(page.locator(`[data-run="${run.id}"] [data-count="charged"]`).textContent()).resolves.toBe('10');

    await page.goto(`${t.url}/console/reconciliation`);
    await page.fill('#date', '2026-01-15');
    await page.getByRole('button', { name: '비교하기' }).click();
    await expect(page.locator('[data-differences]').getAttribute('data-differences')).resolves.toBe('0');
    await shot(page, '16-reconciliation');

    // A delivery that failed for good, re-sent by the operator.
    const [endpoint] = (
      await t.db.query(
        `INSERT INTO webhook_endpoints (url, events, secret_ciphertext, active, created_at, updated_at) VALUES ('https://saas.example.com/hooks', '{*}', 'unused', true, $1, $1) RETURNING id`,
        [t.clock.now()],
      )
    ).rows;
    const [event] = (
      await t.db.query(
        `INSERT INTO webhook_events (type, subscription_id, sequence, payload, created_at) VALUES ('payment.succeeded', $1, 1, '{}', $2) RETURNING id`,
        [pastDue.subscriptionId, t.clock.now()],
      )
    ).rows;
    const [delivery] = (
      await t.db.query(
        `INSERT INTO webhook_deliveries (event_id, endpoint_id, status, attempts, last_status_code, last_error, created_at, updated_at)
         VALUES ($1, $2, 'failed', 12, 500, 'HTTP 500', $3, $3) RETURNING id`,
        [event.id, endpoint.id, t.clock.now()],
      )
    ).rows;
    await page.getByRole('link', { name: '웹훅' }).click();
    await expect(page.locator(`tr[data-delivery="${delivery.id}"]`).textContent()).resolves.toContain('payment.succeeded');
    await shot(page, '17-webhooks-failed');
    await page.locator(`tr[data-delivery="${delivery.id}"] button[data-action="resend"]`).click();
    await expect(page.locator('[data-notice="ok"]').textContent()).resolves.toContain('다시 보내도록');
    const [after] = (await t.db.query(`SELECT status FROM webhook_deliveries WHERE id = $1`, [delivery.id])).rows;
    expect(after.status).toBe('pending');
    await context.close();
  });

  it('should show a viewer no action buttons and refuse its posts', async () => {
    const { context, page } = await consoleContext(browser, problems);
    await signIn(page, viewer);
    await page.goto(`${t.url}/console/subscriptions/${pastDue.subscriptionId}`);
    await expect(page.locator('[data-read-only]').count()).resolves.toBe(1);
    await expect(page.locator('main form[method="post"], main button, main [data-action]').count()).resolves.toBe(0);
    await shot(page, '18-viewer-subscription');
    const paymentId = (await paymentDetails(t, pastDue.subscriptionId)).find((p) => p.period.index === 0 && p.status !== 'ABORTED')!.id;
    await page.goto(`${t.url}/console/payments/${paymentId}`);
    await expect(page.locator('main form[method="post"], main button').count()).resolves.toBe(0);
    await page.goto(`${t.url}/console/webhooks`);
    await expect(page.locator('main button[data-action]').count()).resolves.toBe(0);

    // Even with its session's CSRF token, a viewer's post is refused and changes nothing.
    const [before] = (await t.db.query(`SELECT status, updated_at FROM subscriptions WHERE id = $1`, [pastDue.subscriptionId])).rows;
    const csrf = await page.locator('header input[name="_csrf"]').getAttribute('value');
    const res = await context.request.post(`${t.url}/console/subscriptions/${pastDue.subscriptionId}/pause`, {
      form: { _csrf: csrf!, step: 'confirm', reason: 'viewer tries' },
      maxRedirects: 0,
    });
    expect(res.status()).toBe(403);
    const [after] = (await t.db.query(`SELECT status, updated_at FROM subscriptions WHERE id = $1`, [pastDue.subscriptionId])).rows;
    expect(after).toEqual(before);
    await context.close();
  });

  it('should create an operator from the CLI whose printed password signs in once', async () => {
    let out = '';
    const withApp = <T>(fn: (app: typeof t.app) => Promise<T>) => fn(t.app);
    const code = await runOperatorsCommand('operators:create', ['--email', 'cli.jung@example.com', '--role', 'viewer', '--name', '정조회'], withApp, (x) => {
      out += x;
    });
    expect(code).toBe(0);
    const password = /Password: (\S+)/.exec(out)![1];
    const { context, page } = await consoleContext(browser, problems);
    await page.goto(`${t.url}/console/login`);
    await page.fill('#email', 'cli.jung@example.com');
    await page.fill('#password', password);
    await page.getByRole('button', { name: '로그인' }).click();
    await page.waitForURL(`${t.url}/console/account/password`);
    await page.fill('#current', password);
    await page.fill('#new-password', 'jung-chose-her-own');
    await page.fill('#confirm-password', 'jung-chose-her-own');
    await page.locator('button[data-action="change-password"]').click();
    await page.waitForURL(/done=password_changed/);
    // Signed out, the printed password no longer opens the console; the chosen one does.
    await page.getByRole('button', { name: '로그아웃' }).click();
    await page.waitForURL(/\/console\/login/);
    await page.fill('#email', 'cli.jung@example.com');
    await page.fill('#password', password);
    await page.getByRole('button', { name: '로그인' }).click();
    await expect(page.locator('[data-notice="error"]').textContent()).resolves.toContain('이메일 또는 비밀번호가 맞지 않습니다');
    await page.fill('#password', 'jung-chose-her-own');
    await page.getByRole('button', { name: '로그인' }).click();
    await page.waitForURL(`${t.url}/console`);
    await context.close();
  });

  it('should lock an account after five wrong passwords, even against the right one', async () => {
    const { context, page } = await consoleContext(browser, problems);
    await page.goto(`${t.url}/console/login`);
    for (let i = 1; i <= 5; i++) {
      await page.fill('#email', lockable.email);
      await page.fill('#password', `wrong-password-${i}`);
      await page.getByRole('button', { name: '로그인' }).click();
      const notice = await page.locator('[data-notice="error"]').textContent();
      expect(notice).toContain(i < 5 ? '이메일 또는 비밀번호가 맞지 않습니다' : '계정이 잠겼습니다');
    }
    await page.fill('#email', lockable.email);
    await page.fill('#password', lockable.password);
    await page.getByRole('button', { name: '로그인' }).click();
    await expect(page.locator('[data-notice="error"]').textContent()).resolves.toContain('계정이 잠겼습니다');
    await shot(page, '19-locked');
    expect(page.url()).toContain('/console/login');
    const [row] = (await t.db.query(`SELECT locked_until FROM operators WHERE email = $1`, [lockable.email])).rows;
    expect(row.locked_until.getTime()).toBe(t.clock.now().getTime() + 15 * 60 * 1000);
    await context.close();
  });

  it('should not let an API key in, and send security headers', async () => {
    const page = await t.http.get('/console').set(bearer(t.adminKey));
    expect(page.status).toBe(303);
    expect(page.headers.location).toBe('/console/login?next=%2Fconsole');
    const login = await t.http.get('/console/login');
    expect(login.headers['content-security-policy']).toContain("script-src 'self'");
    expect(login.headers['content-security-policy']).toContain("default-src 'self'");
    expect(login.headers['x-frame-options']).toBe('SAMEORIGIN');
    // The session cookie is httpOnly and SameSite=Strict; a form without the CSRF token is refused.
    const { context, page: p } = await consoleContext(browser, problems);
    await signIn(p, finance);
    const cookie = (await context.cookies()).find((c) => c.name === 'console_session')!;
    expect(cookie).toEqual(expect.objectContaining({ httpOnly: true, sameSite: 'Strict', path: '/console' }));
    const res = await context.request.post(`${t.url}/console/subscriptions/${pastDue.subscriptionId}/pause`, {
      form: { step: 'confirm', reason: 'no token' },
      maxRedirects: 0,
    });
    expect(res.status()).toBe(403);
    // An unknown console address is a page too, not the API's JSON.
    const missing = await context.request.get(`${t.url}/console/no-such-screen`);
    expect(missing.status()).toBe(404);
    expect(missing.headers()['content-type']).toContain('text/html');
    expect(await missing.text()).toContain('찾을 수 없음');

    // After 30 minutes without a request the session is over.
    const before = t.clock.now();
    t.clock.advance(31 * 60 * 1000);
    try {
      await p.goto(`${t.url}/console/payments`);
      expect(new URL(p.url()).pathname).toBe('/console/login');
    } finally {
      t.clock.set(before);
    }
    await context.close();
  });
});
