import type { Paged, PaymentRow, RefundRow } from '../console-query.service';
import { badge, html, kst, PAYMENT_STATUS_LABEL, REFUND_STATUS_LABEL, SafeHtml, won } from '../html';
import { csrfField, page, PageContext } from '../layout';

export interface PaymentFilters {
  status: string;
  from: string;
  to: string;
  customer: string;
}

/** The status filter's choices: the API's statuses grouped as finance asks for them. */
export const PAYMENT_STATUS_FILTERS: Record<string, { text: string; statuses: string[] }> = {
  failed: { text: '실패', statuses: ['ABORTED'] },
  UNKNOWN: { text: '결과 미확인', statuses: ['UNKNOWN'] },
  refunded: { text: '환불 (전액·부분)', statuses: ['CANCELED', 'PARTIAL_CANCELED'] },
  DONE: { text: '결제 완료', statuses: ['DONE'] },
  READY: { text: '예약됨', statuses: ['READY'] },
  IN_PROGRESS: { text: '진행 중', statuses: ['IN_PROGRESS'] },
};

function query(f: PaymentFilters, page: number): string {
  const p = new URLSearchParams();
  for (const [k, v] of Object.entries(f)) if (v) p.set(k, v);
  if (page > 1) p.set('page', String(page));
  const s = p.toString();
  return s ? `?${s}` : '';
}

export function paymentsPage(ctx: PageContext, f: PaymentFilters, result: Paged<PaymentRow>, error: string | null): string {
  const option = (value: string, text: string) => html`<option value="${value}" ${value === f.status ? html` selected` : html``}>${text}</option>`;
  return page(
    '결제',
    ctx,
    html`<h1>결제</h1>
      <form class="card filters" method="get" action="/console/payments">
        <div>
          <label for="status">상태</label
          ><select id="status" name="status">
            ${option('', '전체')}${Object.entries(PAYMENT_STATUS_FILTERS).map(([k, v]) => option(k, v.text))}
          </select>
        </div>
        <div><label for="from">시작일 (KST)</label><input id="from" name="from" type="date" value="${f.from}" /></div>
        <div><label for="to">종료일 (KST, 포함)</label><input id="to" name="to" type="date" value="${f.to}" /></div>
        <div><label for="customer">고객 (이메일, 이름, 외부 ID)</label><input id="customer" name="customer" type="search" value="${f.customer}" /></div>
        <div><button type="submit">조회</button></div>
      </form>
      ${error ? html`<div class="notice error" role="alert">${error}</div>` : html``}
      <div class="card">
        <table>
          <thead>
            <tr>
              <th>요청 일시</th>
              <th>고객</th>
              <th>상태</th>
              <th class="num">금액</th>
              <th class="num">남은 금액</th>
              <th>실패 사유</th>
            </tr>
          </thead>
          <tbody>
            ${result.rows.map(
              (p) =>
                html`<tr data-payment="${p.id}">
                  <td><a href="/console/payments/${p.id}">${kst(p.created_at)}</a></td>
                  <td>
                    <a href="/console/subscriptions/${p.subscription_id}">${p.customer_name}</a><br /><span class="muted small">${p.customer_email ?? ''}</span>
                  </td>
                  <td>${badge(PAYMENT_STATUS_LABEL, p.status)}</td>
                  <td class="num">${won(p.amount)}</td>
                  <td class="num">${won(p.balance_amount)}</td>
                  <td class="small">${p.failure_message ?? ''}</td>
                </tr>`,
            )}
            ${
              result.rows.length
                ? html``
                : html`<tr>
                    <td colspan="6" class="muted">조건에 맞는 결제가 없습니다.</td>
                  </tr>`
            }
          </tbody>
        </table>
        <nav class="pager" aria-label="페이지">
          ${result.page > 1 ? html`<a href="/console/payments${query(f, result.page - 1)}">← 이전</a>` : html``}
          <span class="muted">${result.page} 페이지</span>
          ${result.hasMore ? html`<a href="/console/payments${query(f, result.page + 1)}" rel="next">다음 →</a>` : html``}
        </nav>
      </div>`,
  );
}

export interface RefundPreview {
  amount: number;
  taxFree: number;
  vat: number;
  supply: number;
  balanceAfter: number;
}

export function splitTable(p: { amount: number; taxFree: number; vat: number; supply: number }, caption: string): SafeHtml {
  return html`<table class="split" data-split>
    <caption class="muted small">
      ${caption}
    </caption>
    <tbody>
      <tr>
        <th scope="row">환불 금액</th>
        <td data-split-amount>${won(p.amount)}</td>
      </tr>
      <tr>
        <th scope="row">면세 금액</th>
        <td data-split-tax-free>${won(p.taxFree)}</td>
      </tr>
      <tr>
        <th scope="row">공급가액</th>
        <td data-split-supply>${won(p.supply)}</td>
      </tr>
      <tr>
        <th scope="row">부가세</th>
        <td data-split-vat>${won(p.vat)}</td>
      </tr>
    </tbody>
  </table>`;
}

export function refundableBalance(p: PaymentRow): { balance: number; remainingTaxFree: number } {
  return { balance: Number(p.balance_amount), remainingTaxFree: Number(p.tax_free_amount) - Number(p.refunded_tax_free) };
}

export function refundForm(ctx: PageContext, p: PaymentRow, values: { amount?: string; taxFree?: string; reason?: string } = {}): SafeHtml {
  const { balance, remainingTaxFree } = refundableBalance(p);
  return html`<form method="post" action="/console/payments/${p.id}/refund" id="refund">
    ${csrfField(ctx)}<input type="hidden" name="step" value="review" />
    <p>남은 금액 <strong data-balance>${won(balance)}</strong> (면세 ${won(remainingTaxFree)})</p>
    <label for="refund-amount">환불 금액 (원, 비우면 남은 금액 전부)</label>
    <input id="refund-amount" name="amount" type="number" min="1" max="${balance}" step="1" inputmode="numeric" value="${values.amount ?? ''}" />
    <label for="refund-tax-free">면세 금액 (원, 비우면 비율대로 나눔)</label>
    <input id="refund-tax-free" name="tax_free_amount" type="number" min="0" step="1" inputmode="numeric" value="${values.taxFree ?? ''}" />
    <label for="refund-reason">사유 (감사 기록에 남습니다)</label
    ><textarea id="refund-reason" name="reason" required maxlength="500">${values.reason ?? ''}</textarea>
    <p><button type="submit" data-action="refund-review">환불 미리보기</button></p>
  </form>`;
}

export function paymentPage(
  ctx: PageContext,
  p: PaymentRow,
  refunds: RefundRow[],
  extra: { notice?: SafeHtml; formValues?: { amount?: string; taxFree?: string; reason?: string } } = {},
): string {
  const finance = ctx.operator?.role === 'finance';
  const refundable = ['DONE', 'PARTIAL_CANCELED'].includes(p.status) && Number(p.balance_amount) > 0;
  const amount = Number(p.amount);
  const taxFree = Number(p.tax_free_amount);
  const vat = Number(p.vat);
  return page(
    '결제 상세',
    ctx,
    html`<p class="small"><a href="/console/subscriptions/${p.subscription_id}">← ${p.customer_name}의 구독</a></p>
      <h1>결제 ${won(p.amount)} ${badge(PAYMENT_STATUS_LABEL, p.status)}</h1>
      ${extra.notice ?? html``}
      <div class="grid-2">
        <div>
          <div class="card">
            <dl class="facts">
              <dt>고객</dt>
              <dd>${p.customer_name} · ${p.customer_email ?? ''}</dd>
              <dt>종류</dt>
              <dd>${p.kind === 'proration' ? '요금제 변경 차액' : '정기 결제'} · ${p.attempt}번째 시도</dd>
              <dt>기간</dt>
              <dd>${kst(p.period_start)} ~ ${kst(p.period_end)}</dd>
              <dt>금액</dt>
              <dd>${won(amount)} (면세 ${won(taxFree)}, 공급가액 ${won(amount - taxFree - vat)}, 부가세 ${won(vat)})</dd>
              <dt>남은 금액</dt>
              <dd data-payment-balance>${won(p.balance_amount)}</dd>
              <dt>요청</dt>
              <dd>${kst(p.created_at)}</dd>
              <dt>승인</dt>
              <dd>${kst(p.approved_at)}</dd>
              ${
                p.reserve_id
                  ? html`<dt>예약 실행</dt>
                      <dd>${kst(p.reserve_execute_at)}</dd>`
                  : html``
              }
              ${
                p.failure_message
                  ? html`<dt>실패 사유</dt>
                      <dd>${p.failure_message} <span class="muted small">${p.failure_code ?? ''}</span></dd>`
                  : html``
              }
              <dt>결제 ID</dt>
              <dd><code>${p.id}</code></dd>
            </dl>
          </div>
          <div class="card">
            <h2>환불</h2>
            <table>
              <thead>
                <tr>
                  <th>일시</th>
                  <th>상태</th>
                  <th class="num">금액</th>
                  <th class="num">면세</th>
                  <th class="num">부가세</th>
                  <th>요청자</th>
                  <th>사유</th>
                </tr>
              </thead>
              <tbody>
                ${refunds.map(
                  (r) =>
                    html`<tr data-refund="${r.id}">
                      <td>${kst(r.created_at)}</td>
                      <td>${badge(REFUND_STATUS_LABEL, r.status)}</td>
                      <td class="num">${won(r.amount)}</td>
                      <td class="num">${won(r.tax_free_amount)}</td>
                      <td class="num">${won(r.vat)}</td>
                      <td>${r.requested_by_name}</td>
                      <td>${r.reason}${r.failure_message ? html`<br /><span class="small">${r.failure_message}</span>` : html``}</td>
                    </tr>`,
                )}
                ${
                  refunds.length
                    ? html``
                    : html`<tr>
                        <td colspan="7" class="muted">환불 내역이 없습니다.</td>
                      </tr>`
                }
              </tbody>
            </table>
          </div>
        </div>
        <div>
          ${
            finance
              ? html`<div class="card">
                  <h2>환불하기</h2>
                  ${refundable ? refundForm(ctx, p, extra.formValues) : html`<p class="muted">이 결제는 환불할 수 없습니다 (상태 ${p.status}, 남은 금액 ${won(p.balance_amount)}).</p>`}
                </div>`
              : html``
          }
        </div>
      </div>`,
  );
}

export function refundReviewPage(ctx: PageContext, p: PaymentRow, preview: RefundPreview, input: { amount: number; taxFree: number; reason: string }): string {
  return page(
    '환불 확인',
    ctx,
    html`<p class="small"><a href="/console/payments/${p.id}">← 결제로 돌아가기</a></p>
      <h1>환불 확인</h1>
      <div class="grid-2">
        <div class="card">
          <p>${p.customer_name}의 결제 ${won(p.amount)} 중 <strong>${won(preview.amount)}</strong>을 환불합니다. Bootpay로 보내기 전에 확인하세요.</p>
          ${splitTable(preview, '부가세 = (환불 금액 − 면세) ÷ 11, 원 단위 반올림')}
          <p>환불 후 남은 금액: <strong data-balance-after>${won(preview.balanceAfter)}</strong></p>
          <p>사유: ${input.reason}</p>
          <form method="post" action="/console/payments/${p.id}/refund">
            ${csrfField(ctx)}<input type="hidden" name="step" value="confirm" /> <input type="hidden" name="amount" value="${input.amount}" /><input
              type="hidden"
              name="tax_free_amount"
              value="${input.taxFree}"
            /><input type="hidden" name="reason" value="${input.reason}" />
            <p>
              <button type="submit" class="danger" data-confirm="refund">확인하고 ${won(preview.amount)} 환불</button>
              <a class="button secondary" href="/console/payments/${p.id}">취소</a>
            </p>
          </form>
        </div>
      </div>`,
  );
}
