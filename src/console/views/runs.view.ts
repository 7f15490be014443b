import type { ChargeRunsService } from '../../charging/charge-runs.service';
import { duration, html, kst, label, RUN_STATUS_LABEL, RUN_TRIGGER_LABEL, SafeHtml } from '../html';
import { page, PageContext } from '../layout';

export type ChargeRunView = ReturnType<ChargeRunsService['map']>;

/**
 * A run's progress. While it runs, htmx asks for this fragment again every 2 seconds and swaps it in; once the run
 * has ended the fragment comes back without the polling attributes, so the polling stops.
 */
export function runProgress(run: ChargeRunView, now: Date): SafeHtml {
  const running = run.status === 'running';
  const c = run.counts;
  return html`<section
    class="card"
    id="run-progress-${run.id}"
    data-run="${run.id}"
    data-run-status="${run.status}"
    ${running ? html`hx-get="/console/charge-runs/${run.id}/progress" hx-trigger="every 2s" hx-swap="outerHTML"` : html``}
    aria-live="polite"
  >
    <h2>
      ${running ? '실행 중인 청구' : '청구 실행'} · ${kst(run.started_at)} <span class="badge badge-${run.status}">${label(RUN_STATUS_LABEL, run.status)}</span>
    </h2>
    <div class="progress">
      <span>대상 <strong>${c.due}</strong></span
      ><span>성공 <strong data-count="charged">${c.charged}</strong></span
      ><span>실패 <strong>${c.failed}</strong></span> <span>결과 미확인 <strong>${c.unknown}</strong></span
      ><span>건너뜀 <strong>${c.skipped}</strong></span
      ><span>확정 <strong>${c.resolved}</strong></span> <span>해지 <strong>${c.canceled}</strong></span
      ><span>재개 <strong>${c.resumed}</strong></span>
      <span>경과 ${duration(run.started_at, run.finished_at ?? now)}</span>
    </div>
  </section>`;
}

export function runsPage(ctx: PageContext, runs: ChargeRunView[], nextCursor: string | null, now: Date): string {
  const running = runs.filter((r) => r.status === 'running');
  return page(
    '청구 실행',
    ctx,
    html`<h1>청구 실행</h1>
      ${running.map((r) => runProgress(r, now))}
      <div class="card">
        <table>
          <thead>
            <tr>
              <th>시작</th>
              <th>방식</th>
              <th>상태</th>
              <th class="num">대상</th>
              <th class="num">성공</th>
              <th class="num">실패</th>
              <th class="num">미확인</th>
              <th class="num">확정</th>
              <th>소요 시간</th>
              <th>오류</th>
            </tr>
          </thead>
          <tbody>
            ${runs.map(
              (r) =>
                html`<tr id="run-${r.id}">
                  <td>${kst(r.started_at)}</td>
                  <td>${label(RUN_TRIGGER_LABEL, r.trigger)}${r.requested_by ? html` <span class="muted small">${r.requested_by}</span>` : html``}</td>
                  <td><span class="badge badge-${r.status}">${label(RUN_STATUS_LABEL, r.status)}</span></td>
                  <td class="num">${r.counts.due}</td>
                  <td class="num">${r.counts.charged}</td>
                  <td class="num">${r.counts.failed}</td>
                  <td class="num">${r.counts.unknown}</td>
                  <td class="num">${r.counts.resolved}</td>
                  <td>${r.finished_at ? duration(r.started_at, r.finished_at) : '실행 중'}</td>
                  <td>${r.error ?? ''}</td>
                </tr>`,
            )}
            ${
              runs.length
                ? html``
                : html`<tr>
                    <td colspan="10" class="muted">아직 실행된 적이 없습니다.</td>
                  </tr>`
            }
          </tbody>
        </table>
        ${nextCursor ? html`<div class="pager"><a href="/console/charge-runs?cursor=${nextCursor}">이전 실행 더 보기 →</a></div>` : html``}
      </div>`,
  );
}
