import type { SubscriptionResponseDto } from '../../ledger/dto/subscription.dto';
import type { ConsoleQueryService, EventRow, Paged, PaymentRow, RefundRow, SubscriptionRow } from '../console-query.service';
import { badge, EVENT_LABEL, html, kst, label, PAYMENT_STATUS_LABEL, REFUND_STATUS_LABEL, SafeHtml, SUBSCRIPTION_STATUS_LABEL, won } from '../html';
import { csrfField, page, PageContext } from '../layout';

export type SubscriptionContext = NonNullable<Awaited<ReturnType<ConsoleQueryService['subscriptionContext']>>>;

export interface SubscriptionFilters {
  q: string;
  status: string;
  plan: string;
  stage: string;
}

const INTERVAL_LABEL: Record<string, string> = { day: '일', week: '주', month: '개월', year: '년' };

export function intervalText(interval: string, count: number): string {
  return count === 1
    ? ({ day: '매일', week: '매주', month: '매월', year: '매년' }[interval] ?? interval)
    : `${count}${INTERVAL_LABEL[interval] ?? interval}마다`;
}

/** The actions the console offers for a status (the service decides in the end; a refusal shows its reason). */
export const ACTIONS_BY_STATUS: Record<string, ConsoleAction[]> = {
  incomplete: ['cancel'],
  trialing: ['pause', 'cancel'],
  active: ['pause', 'cancel'],
  past_due: ['retry', 'pause', 'cancel'],
  paused: ['resume', 'cancel'],
  unpaid: ['retry', 'cancel'],
  canceled: [],
};

export type ConsoleAction = 'pause' | 'resume' | 'cancel' | 'retry';

export const ACTION_LABEL: Record<ConsoleAction, string> = { pause: '일시정지', resume: '재개', cancel: '해지', retry: '지금 재시도' };

function query(f: SubscriptionFilters, page: number): string {
  const p = new URLSearchParams();
  if (f.q) p.set('q', f.q);
  if (f.status) p.set('status', f.status);
  if (f.plan) p.set('plan', f.plan);
  if (f.stage) p.set('stage', f.stage);
  if (page > 1) p.set('page', String(page));
  const s = p.toString();
  return s ? `?${s}` : '';
}

export function subscriptionsPage(
  ctx: PageContext,
  f: SubscriptionFilters,
  plans: { id: string; name: string; amount: string }[],
  result: Paged<SubscriptionRow>,
): string {
  const option = (value: string, text: string, current: string) =>
    html`<option value="${value}" ${value === current ? html` selected` : html``}>${text}</option>`;
  return page(
    '구독',
    ctx,
    html`<h1>구독 검색</h1>
      <form class="card filters" method="get" action="/console/subscriptions" role="search">
        <div>
          <label for="q">고객 외부 ID, 이메일, 이름 또는 구독 ID</label><input id="q" name="q" type="search" value="${f.q}" placeholder="예: kim@example.com" />
        </div>
        <div>
          <label for="status">상태</label
          ><select id="status" name="status">
            ${option('', '전체', f.status)}${Object.entries(SUBSCRIPTION_STATUS_LABEL).map(([k, v]) => option(k, v, f.status))}
          </select>
        </div>
        <div>
          <label for="plan">요금제</label
          ><select id="plan" name="plan">
            ${option('', '전체', f.plan)}${plans.map((p) => option(p.id, `${p.name} (${won(p.amount)})`, f.plan))}
          </select>
        </div>
        <div>
          <label for="stage">연체 단계 (실패 횟수)</label
          ><select id="stage" name="stage">
            ${option('', '전체', f.stage)}${[1, 2, 3, 4, 5].map((n) => option(String(n), `${n}회 실패`, f.stage))}
          </select>
        </div>
        <div><button type="submit">검색</button></div>
      </form>
      <div class="card">
        <table>
          <thead>
            <tr>
              <th>고객</th>
              <th>요금제</th>
              <th>상태</th>
              <th>다음 청구</th>
              <th>구독 ID</th>
            </tr>
          </thead>
          <tbody>
            ${result.rows.map(
              (s) =>
                html`<tr data-subscription="${s.id}">
                  <td>
                    <a href="/console/subscriptions/${s.id}">${s.customer_name}</a><br /><span class="muted small"
                      >${s.customer_email ?? ''} · ${s.external_id}</span
                    >
                  </td>
                  <td>${s.plan_name}<br /><span class="muted small">${won(s.plan_amount)}</span></td>
                  <td>
                    ${badge(SUBSCRIPTION_STATUS_LABEL, s.status)}${s.status === 'past_due' ? html` <span class="small">${s.dunning_attempts}회 실패</span>` : html``}${s.cancel_at_period_end ? html` <span class="small">기간 종료 시 해지</span>` : html``}
                  </td>
                  <td>${kst(s.next_charge_at)}</td>
                  <td><code>${s.id.slice(0, 8)}</code></td>
                </tr>`,
            )}
            ${
              result.rows.length
                ? html``
                : html`<tr>
                    <td colspan="5" class="muted">조건에 맞는 구독이 없습니다.</td>
                  </tr>`
            }
          </tbody>
        </table>
        <nav class="pager" aria-label="페이지">
          ${result.page > 1 ? html`<a href="/console/subscriptions${query(f, result.page - 1)}">← 이전</a>` : html``}
          <span class="muted">${result.page} 페이지</span>
          ${result.hasMore ? html`<a href="/console/subscriptions${query(f, result.page + 1)}" rel="next">다음 →</a>` : html``}
        </nav>
      </div>`,
  );
}

function actorText(e: EventRow): string {
  if (e.actor_type === 'operator') return `${e.actor_name ?? e.actor_id ?? ''} (운영자)`;
  if (e.actor_type === 'api_key') return `${e.actor_name ?? e.actor_id ?? ''} (API 키)`;
  return '시스템';
}

interface TimelineItem {
  at: Date;
  kind: 'event' | 'payment' | 'refund' | 'reservation';
  body: SafeHtml;
}

export function timelineItems(events: EventRow[], payments: PaymentRow[], refunds: RefundRow[]): TimelineItem[] {
  const items: TimelineItem[] = [];
  for (const e of events) {
    items.push({
      at: e.created_at,
      kind: 'event',
      body: html`<strong>${label(EVENT_LABEL, e.type)}</strong> <span class="muted small">${e.type}</span> ·
        <span data-actor-type="${e.actor_type}">${actorText(e)}</span> ${e.reason ? html`<br />사유: ${e.reason}` : html``}`,
    });
  }
  for (const p of payments) {
    if (p.status === 'READY' && p.reserve_id) {
      items.push({
        at: p.created_at,
        kind: 'reservation',
        body: html`<strong>예약 결제</strong> <a href="/console/payments/${p.id}">${won(p.amount)}</a> · 실행 예정 ${kst(p.reserve_execute_at)}`,
      });
      continue;
    }
    items.push({
      at: p.approved_at ?? p.created_at,
      kind: 'payment',
      body: html`<strong>결제</strong> <a href="/console/payments/${p.id}">${won(p.amount)}</a> ${badge(PAYMENT_STATUS_LABEL, p.status)} · ${p.attempt}번째 시도
        · 기간 ${kst(p.period_start)} ~ ${kst(p.period_end)}
        ${p.failure_message ? html`<br />실패 사유: ${p.failure_message} <span class="muted small">${p.failure_code ?? ''}</span>` : html``}`,
    });
  }
  for (const r of refunds) {
    items.push({
      at: r.created_at,
      kind: 'refund',
      body: html`<strong>환불</strong> ${won(r.amount)} (면세 ${won(r.tax_free_amount)}, 부가세 ${won(r.vat)}) ${badge(REFUND_STATUS_LABEL, r.status)} ·
        ${r.requested_by_name} <br />사유: ${r.reason}${r.failure_message ? html` · 실패: ${r.failure_message}` : html``}`,
    });
  }
  return items.sort((a, b) => b.at.getTime() - a.at.getTime());
}

function actionForm(ctx: PageContext, subId: string, action: ConsoleAction): SafeHtml {
  const fields: Record<ConsoleAction, SafeHtml> = {
    pause: html`<label for="pause-resume-at">재개 예정 시각 (선택, KST)</label><input id="pause-resume-at" name="resume_at" type="datetime-local" />
      <p class="muted small">비워 두면 직접 재개할 때까지 멈춥니다. 일시정지 중에는 청구하지 않고, 남은 예약 결제는 취소됩니다.</p>`,
    resume: html`<p class="muted small">결제된 기간 안이면 그대로 이어지고, 기간이 끝났으면 오늘부터 새 기간을 시작해 바로 청구합니다.</p>`,
    cancel: html`<fieldset>
        <legend>해지 시점</legend>
        <label class="check"><input type="radio" name="when" value="now" checked /> 지금 해지</label>
        <label class="check"><input type="radio" name="when" value="period_end" /> 현재 기간이 끝날 때 해지</label>
      </fieldset>
      <label class="check"><input type="checkbox" name="refund_unused" value="1" /> 남은 기간 금액 환불 (지금 해지할 때만)</label>`,
    retry: html`<p class="muted small">연체된 기간의 결제를 지금 다시 시도합니다. 실패해도 재시도 일정은 바뀌지 않습니다.</p>`,
  };
  return html`<details data-action-panel="${action}">
    <summary>${ACTION_LABEL[action]}</summary>
    <form method="post" action="/console/subscriptions/${subId}/${action}">
      ${csrfField(ctx)}<input type="hidden" name="step" value="review" />
      ${fields[action]}
      <label for="${action}-reason">사유 (감사 기록에 남습니다)</label><textarea id="${action}-reason" name="reason" required maxlength="500"></textarea>
      <p><button type="submit" data-action="${action}">${ACTION_LABEL[action]} 검토</button></p>
    </form>
  </details>`;
}

export function subscriptionHeader(sub: SubscriptionResponseDto, c: SubscriptionContext): SafeHtml {
  return html`<dl class="facts">
    <dt>고객</dt>
    <dd>${c.customer.name} · ${c.customer.email ?? '이메일 없음'} · <span class="muted">${c.customer.external_id}</span></dd>
    <dt>요금제</dt>
    <dd>
      ${c.plan.name} · ${won(c.plan.amount)}
      ${intervalText(c.plan.interval, c.plan.interval_count)}${Number(c.plan.tax_free_amount) ? html` (면세 ${won(c.plan.tax_free_amount)})` : html``}
      ${c.pendingPlanName ? html`<br /><span class="small">다음 갱신부터: ${c.pendingPlanName}</span>` : html``}
    </dd>
    <dt>상태</dt>
    <dd data-subscription-status="${sub.status}">
      ${badge(SUBSCRIPTION_STATUS_LABEL, sub.status)}
      ${sub.status === 'past_due' ? html` ${sub.dunning.attempts}회 실패 · 다음 재시도 ${kst(sub.dunning.next_retry_at)}` : html``}
      ${sub.cancel_at_period_end ? html` · 기간 종료 시 해지 예정` : html``}
    </dd>
    ${
      sub.pause
        ? html`<dt>일시정지</dt>
            <dd>
              ${kst(sub.pause.paused_at)}부터 · 재개 예정 <span data-resume-at>${sub.pause.resume_at ? kst(sub.pause.resume_at) : '없음 (직접 재개)'}</span>
            </dd>`
        : html``
    }
    <dt>현재 기간</dt>
    <dd>${kst(sub.current_period_start)} ~ ${kst(sub.current_period_end)}</dd>
    <dt>다음 청구</dt>
    <dd>${kst(sub.next_charge_at)}</dd>
    <dt>결제 카드</dt>
    <dd>
      ${c.card ? html`${c.card.card_company ?? ''} ${c.card.card_no_masked ?? ''}${c.card.status !== 'active' ? html` <span class="badge badge-canceled">삭제됨</span>` : html``}` : '–'}
    </dd>
    ${
      sub.dunning.last_failure
        ? html`<dt>마지막 실패</dt>
            <dd>${sub.dunning.last_failure.message ?? ''} <span class="muted small">${sub.dunning.last_failure.code}</span></dd>`
        : html``
    }
    ${
      sub.cancel_reason
        ? html`<dt>해지 사유</dt>
            <dd>${sub.cancel_reason}</dd>`
        : html``
    }
    <dt>구독 ID</dt>
    <dd><code>${sub.id}</code></dd>
  </dl>`;
}

export function subscriptionPage(
  ctx: PageContext,
  sub: SubscriptionResponseDto,
  c: SubscriptionContext,
  t: { events: EventRow[]; payments: PaymentRow[]; refunds: RefundRow[] },
): string {
  const finance = ctx.operator?.role === 'finance';
  const actions = ACTIONS_BY_STATUS[sub.status] ?? [];
  const refundable = (p: PaymentRow) => ['DONE', 'PARTIAL_CANCELED'].includes(p.status) && Number(p.balance_amount) > 0;
  return page(
    `${c.customer.name}의 구독`,
    ctx,
    html`<p class="small"><a href="/console/subscriptions">← 구독 검색</a></p>
      <h1>${c.customer.name}의 구독</h1>
      <div class="grid-2">
        <div>
          <div class="card">${subscriptionHeader(sub, c)}</div>
          <div class="card">
            <h2>결제</h2>
            <table>
              <thead>
                <tr>
                  <th>일시</th>
                  <th>상태</th>
                  <th class="num">금액</th>
                  <th class="num">남은 금액</th>
                  <th>기간</th>
                  ${finance ? html`<th></th>` : html``}
                </tr>
              </thead>
              <tbody>
                ${t.payments.map(
                  (p) =>
                    html`<tr data-payment="${p.id}">
                      <td><a href="/console/payments/${p.id}">${kst(p.approved_at ?? p.created_at)}</a></td>
                      <td>${badge(PAYMENT_STATUS_LABEL, p.status)}</td>
                      <td class="num">${won(p.amount)}</td>
                      <td class="num">${won(p.balance_amount)}</td>
                      <td class="small">${kst(p.period_start)} ~<br />${kst(p.period_end)}</td>
                      ${finance ? html`<td>${refundable(p) ? html`<a class="button secondary" href="/console/payments/${p.id}#refund" data-action="refund">환불</a>` : html``}</td>` : html``}
                    </tr>`,
                )}
                ${
                  t.payments.length
                    ? html``
                    : html`<tr>
                        <td colspan="6" class="muted">결제가 없습니다.</td>
                      </tr>`
                }
              </tbody>
            </table>
          </div>
          <div class="card">
            <h2>이력</h2>
            <ol class="timeline" data-timeline>
              ${timelineItems(t.events, t.payments, t.refunds).map(
                (i) =>
                  html`<li class="kind-${i.kind}" data-kind="${i.kind}">
                    <div class="when">${kst(i.at)}</div>
                    ${i.body}
                  </li>`,
              )}
            </ol>
          </div>
        </div>
        <div>
          ${
            finance
              ? html`<div class="card actions">
                  <h2>작업</h2>
                  ${actions.length ? actions.map((a) => actionForm(ctx, sub.id, a)) : html`<p class="muted">해지된 구독에는 할 수 있는 작업이 없습니다.</p>`}
                  <p class="muted small">각 작업은 검토 화면에서 한 번 더 확인한 뒤 실행됩니다. 환불은 결제 목록의 「환불」에서 합니다.</p>
                </div>`
              : html`<div class="card">
                  <h2>작업</h2>
                  <p class="muted" data-read-only>조회 전용 계정입니다. 작업은 재무(finance) 권한이 있는 운영자만 할 수 있습니다.</p>
                </div>`
          }
        </div>
      </div>`,
  );
}

export interface ActionReview {
  action: ConsoleAction;
  reason: string;
  resumeAtInput?: string;
  resumeAt?: Date | null;
  when?: 'now' | 'period_end';
  refundUnused?: boolean;
}

export function reviewPage(ctx: PageContext, sub: SubscriptionResponseDto, c: SubscriptionContext, r: ActionReview): string {
  const what: Record<ConsoleAction, SafeHtml> = {
    pause: html`구독을 <strong>일시정지</strong>합니다. 재개 예정: <strong data-review-resume-at>${r.resumeAt ? kst(r.resumeAt) : '없음 (직접 재개)'}</strong>`,
    resume: html`구독을 <strong>재개</strong>합니다. 결제 기간이 이미 끝났으면 바로 청구합니다.`,
    cancel: html`구독을
      <strong>${r.when === 'period_end' ? '현재 기간이 끝날 때' : '지금'} 해지</strong
      >합니다.${r.when === 'now' && r.refundUnused ? html` 남은 기간 금액을 환불합니다.` : html``}`,
    retry: html`연체된 결제를 <strong>지금 다시 청구</strong>합니다 (${won(c.plan.amount)}).`,
  };
  return page(
    `${ACTION_LABEL[r.action]} 확인`,
    ctx,
    html`<p class="small"><a href="/console/subscriptions/${sub.id}">← 구독으로 돌아가기</a></p>
      <h1>${ACTION_LABEL[r.action]} 확인</h1>
      <div class="grid-2">
        <div class="card">
          <p data-review="${r.action}">${what[r.action]}</p>
          <p>사유: ${r.reason}</p>
          <form method="post" action="/console/subscriptions/${sub.id}/${r.action}">
            ${csrfField(ctx)} <input type="hidden" name="step" value="confirm" /><input type="hidden" name="reason" value="${r.reason}" />
            ${r.resumeAtInput ? html`<input type="hidden" name="resume_at" value="${r.resumeAtInput}" />` : html``}
            ${r.when ? html`<input type="hidden" name="when" value="${r.when}" />` : html``}
            ${r.refundUnused ? html`<input type="hidden" name="refund_unused" value="1" />` : html``}
            <p>
              <button type="submit" class="${r.action === 'cancel' ? 'danger' : ''}" data-confirm="${r.action}">확인하고 ${ACTION_LABEL[r.action]}</button>
              <a class="button secondary" href="/console/subscriptions/${sub.id}">취소</a>
            </p>
          </form>
        </div>
        <div class="card">${subscriptionHeader(sub, c)}</div>
      </div>`,
  );
}
