import type { ChargeRunView } from './runs.view';
import { duration, html, kst, label, RUN_STATUS_LABEL, RUN_TRIGGER_LABEL, SafeHtml, SUBSCRIPTION_STATUS_LABEL, won } from '../html';
import { page, PageContext } from '../layout';
import type { FinanceFlag, ReconciliationDifferenceRow } from '../console-query.service';

export interface OverviewData {
  mrr: number;
  countsByStatus: Record<string, number>;
  pastDueByStage: { stage: number; n: number }[];
  lastRun: ChargeRunView | null;
  lastCronRun: ChargeRunView | null;
  recovered: { retry_step: number; payments: number; amount: number }[];
  recoveredFrom: string;
  recoveredTo: string;
  unknownPayments: number;
  failedDeliveries: number;
  flags: FinanceFlag[];
  /** Open differences of the nightly reconciliation; null where it keeps none (yesterday is then checked live). */
  differences: ReconciliationDifferenceRow[] | null;
  reconciliationDate: string;
}

/** Money recovered at each retry step as an SVG bar chart (no script, no inline style). */
export function recoveredChart(rows: OverviewData['recovered']): SafeHtml {
  if (!rows.length) return html`<p class="muted" data-chart="empty">이 기간에 재시도로 회수된 결제가 없습니다.</p>`;
  const max = Math.max(...rows.map((r) => r.amount), 1);
  const barX = 74;
  const barMax = 150;
  const rowH = 30;
  const height = rows.length * rowH + 10;
  return html`<svg
    class="chart"
    role="img"
    aria-labelledby="recovered-title"
    width="100%"
    viewBox="0 0 360 ${height}"
    preserveAspectRatio="xMinYMin meet"
    data-chart="recovered"
  >
    <title id="recovered-title">재시도 단계별 회수 금액</title>
    ${rows.map((r, i) => {
      const w = Math.max(2, Math.round((r.amount / max) * barMax));
      const y = i * rowH + 6;
      return html`<g data-retry-step="${r.retry_step}"
        ><text x="0" y="${y + 15}">재시도 ${r.retry_step}회차</text>
        <rect class="bar" x="${barX}" y="${y}" width="${w}" height="20" rx="3"></rect>
        <text x="${barX + w + 6}" y="${y + 15}">${won(r.amount)} (${r.payments}건)</text></g
      >`;
    })}
  </svg>`;
}

function runSummary(title: string, run: ChargeRunView | null): SafeHtml {
  if (!run)
    return html`<div class="card">
      <h2>${title}</h2>
      <p class="muted">아직 실행된 적이 없습니다.</p>
    </div>`;
  return html`<div class="card">
    <h2>${title}</h2>
    <p>
      <a href="/console/charge-runs#run-${run.id}">${kst(run.started_at)}</a> · ${label(RUN_TRIGGER_LABEL, run.trigger)} ·
      <span class="badge badge-${run.status}">${label(RUN_STATUS_LABEL, run.status)}</span>
    </p>
    <dl class="facts">
      <dt>대상</dt>
      <dd>${run.counts.due}건</dd>
      <dt>성공</dt>
      <dd>${run.counts.charged}건</dd>
      <dt>실패</dt>
      <dd>${run.counts.failed}건</dd>
      <dt>결과 미확인</dt>
      <dd>${run.counts.unknown}건</dd>
      <dt>소요 시간</dt>
      <dd>${run.finished_at ? duration(run.started_at, run.finished_at) : '실행 중'}</dd>
      ${
        run.error
          ? html`<dt>오류</dt>
              <dd>${run.error}</dd>`
          : html``
      }
    </dl>
  </div>`;
}

export function overviewPage(ctx: PageContext, d: OverviewData): string {
  const statuses = ['active', 'trialing', 'past_due', 'paused', 'unpaid', 'incomplete', 'canceled'];
  const problems = d.unknownPayments + d.failedDeliveries + d.flags.length + (d.differences?.length ?? 0);
  return page(
    '개요',
    ctx,
    html`<h1>개요</h1>
      <div class="grid">
        <div class="card">
          <h2>월 반복 매출 (MRR)</h2>
          <p class="kpi" data-kpi="mrr">${won(d.mrr)}</p>
          <p class="muted small">활성·연체 구독의 월 환산 금액 (부가세 포함)</p>
        </div>
        <div class="card">
          <h2>상태별 구독</h2>
          <table>
            <tbody>
              ${statuses.map(
                (s) =>
                  html`<tr>
                    <th scope="row"><a href="/console/subscriptions?status=${s}">${label(SUBSCRIPTION_STATUS_LABEL, s)}</a></th>
                    <td class="num" data-count="${s}">${d.countsByStatus[s] ?? 0}</td>
                  </tr>`,
              )}
            </tbody>
          </table>
        </div>
        <div class="card">
          <h2>연체 단계별</h2>
          ${
            d.pastDueByStage.length
              ? html`<table>
                  <thead>
                    <tr>
                      <th>실패 횟수</th>
                      <th class="num">구독</th>
                    </tr>
                  </thead>
                  <tbody>
                    ${d.pastDueByStage.map(
                      (r) =>
                        html`<tr>
                          <td><a href="/console/subscriptions?status=past_due&amp;stage=${r.stage}">${r.stage}회 실패</a></td>
                          <td class="num">${r.n}</td>
                        </tr>`,
                    )}
                  </tbody>
                </table>`
              : html`<p class="muted">연체 중인 구독이 없습니다.</p>`
          }
        </div>
      </div>
      <div class="grid">
        ${runSummary('지난밤 정기 청구', d.lastCronRun)}
        ${d.lastRun && d.lastRun.id !== d.lastCronRun?.id ? runSummary('가장 최근 청구 실행', d.lastRun) : html``}
        <div class="card">
          <h2>재시도로 회수한 금액</h2>
          <p class="muted small">${kst(d.recoveredFrom)} ~ ${kst(d.recoveredTo)}</p>
          ${recoveredChart(d.recovered)}
        </div>
      </div>
      <div class="card">
        <h2>확인이 필요한 문제 <span class="badge${problems ? ' badge-failed' : ''}">${problems}</span></h2>
        <ul class="problems">
          <li>
            <a href="/console/payments?status=UNKNOWN">결과 미확인 결제</a>: <strong data-problem="unknown-payments">${d.unknownPayments}건</strong>
            <span class="muted small">(다음 청구 실행이나 Bootpay 웹훅이 확정합니다)</span>
          </li>
          <li><a href="/console/webhooks">전달 실패한 웹훅</a>: <strong data-problem="failed-deliveries">${d.failedDeliveries}건</strong></li>
          <li>
            영수증 불일치: <strong data-problem="receipt-mismatches">${d.flags.length}건</strong> ${
              d.flags.length
                ? html`<ul>
                    ${d.flags.map(
                      (f) =>
                        html`<li>
                          ${kst(f.created_at)} · ${f.kind} · ${f.message ?? ''}
                          ${f.subscription_id ? html` · <a href="/console/subscriptions/${f.subscription_id}">구독</a>` : html``}
                          ${f.payment_id ? html` · <a href="/console/payments/${f.payment_id}">결제</a>` : html``}
                        </li>`,
                    )}
                  </ul>`
                : html``
            }
          </li>
          ${
            d.differences
              ? html`<li>
                  대사 차이 (야간 대사, 미해결): <strong data-problem="reconciliation">${d.differences.length}건</strong> ${
                    d.differences.length
                      ? html`<ul>
                          ${d.differences.map((x) => html`<li>${kst(x.first_seen_at)}부터 · ${x.kind === 'payment' ? html`<a href="/console/payments/${x.object_id}">결제</a>` : '예약'} · ${x.field}: 장부 ${JSON.stringify(x.local)} / Bootpay ${JSON.stringify(x.bootpay)}</li>`)}
                        </ul>`
                      : html``
                  }
                </li>`
              : html`<li>
                  대사 차이 (${d.reconciliationDate}):
                  <span hx-get="/console/overview/reconciliation?date=${d.reconciliationDate}" hx-trigger="load" hx-swap="outerHTML"
                    ><a href="/console/reconciliation?date=${d.reconciliationDate}">대사 화면에서 확인</a></span
                  >
                </li>`
          }
        </ul>
      </div>`,
  );
}
