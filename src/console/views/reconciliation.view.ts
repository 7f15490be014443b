import type { ReportsService } from '../../reports/reports.service';
import { html, kst } from '../html';
import { page, PageContext } from '../layout';

export type Reconciliation = Awaited<ReturnType<ReportsService['reconciliation']>>;

const FIELD_LABEL: Record<string, string> = {
  receipt_id: '영수증',
  order_id: '주문 번호',
  amount: '결제 금액',
  tax_free_amount: '면세 금액',
  refunded_amount: '환불 금액',
  refunded_tax_free: '환불 면세 금액',
  status: '상태',
  receipt: '영수증 조회',
  reservation: '예약 조회',
};

function show(v: unknown): string {
  if (v === null || v === undefined) return '없음';
  if (typeof v === 'number') return `${v.toLocaleString('en-US')}`;
  return String(v);
}

export function reconciliationPage(ctx: PageContext, date: string, report: Reconciliation | null, error: string | null): string {
  return page(
    '대사',
    ctx,
    html`<h1>대사 (Bootpay와 장부 비교)</h1>
      <form class="card filters" method="get" action="/console/reconciliation">
        <div><label for="date">영업일 (Asia/Seoul)</label><input id="date" name="date" type="date" value="${date}" required /></div>
        <div><button type="submit">비교하기</button></div>
      </form>
      ${error ? html`<div class="notice error" role="alert">${error}</div>` : html``}
      ${
        report
          ? html`<div class="card">
              <h2>${report.date} 결과</h2>
              <p class="muted small">
                ${kst(report.from)} ~ ${kst(report.to)} · 결제 ${report.payments}건, 예약 ${report.reservations}건, Bootpay와 대조 ${report.checked}건 · 생성
                ${kst(report.generated_at)}
              </p>
              ${
                report.differences.length
                  ? html`<table data-differences="${report.differences.length}">
                      <thead>
                        <tr>
                          <th>종류</th>
                          <th>ID</th>
                          <th>항목</th>
                          <th>장부</th>
                          <th>Bootpay</th>
                        </tr>
                      </thead>
                      <tbody>
                        ${report.differences.map(
                          (d) =>
                            html`<tr>
                              <td>${d.kind === 'payment' ? '결제' : '예약'}</td>
                              <td>
                                ${d.kind === 'payment' ? html`<a href="/console/payments/${d.id}">${d.id.slice(0, 8)}</a>` : d.id.slice(0, 8)}${d.receipt_id ? html` <span class="muted small">${d.receipt_id}</span>` : html``}
                              </td>
                              <td>${FIELD_LABEL[d.field] ?? d.field}</td>
                              <td>${show(d.local)}</td>
                              <td>${show(d.bootpay)}</td>
                            </tr>`,
                        )}
                      </tbody>
                    </table>`
                  : html`<p data-differences="0">차이가 없습니다.</p>`
              }
            </div>`
          : html``
      }`,
  );
}
