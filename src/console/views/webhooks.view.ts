import type { DeliveryRow, Paged } from '../console-query.service';
import { DELIVERY_STATUS_LABEL, html, kst, label } from '../html';
import { csrfField, page, PageContext } from '../layout';

export function webhooksPage(ctx: PageContext, status: string, deliveries: Paged<DeliveryRow>): string {
  const finance = ctx.operator?.role === 'finance';
  const tabs = ['failed', 'pending', 'delivered'];
  return page(
    '웹훅',
    ctx,
    html`<h1>보내는 웹훅</h1>
      <p>
        ${tabs.map((t) => html`<a class="button${t === status ? '' : ' secondary'}" href="/console/webhooks?status=${t}" ${t === status ? html` aria-current="page"` : html``}>${label(DELIVERY_STATUS_LABEL, t)}</a> `)}
      </p>
      <div class="card">
        <table>
          <thead>
            <tr>
              <th>이벤트</th>
              <th>엔드포인트</th>
              <th>상태</th>
              <th class="num">시도</th>
              <th>마지막 응답</th>
              <th>갱신</th>
              ${finance ? html`<th>재전송</th>` : html``}
            </tr>
          </thead>
          <tbody>
            ${deliveries.rows.map(
              (d) =>
                html`<tr data-delivery="${d.id}">
                  <td>${d.event_type}${d.subscription_id ? html` · <a href="/console/subscriptions/${d.subscription_id}">구독</a>` : html``}</td>
                  <td class="small">${d.endpoint_url}</td>
                  <td><span class="badge badge-${d.status}">${label(DELIVERY_STATUS_LABEL, d.status)}</span></td>
                  <td class="num">${d.attempts}</td>
                  <td class="small">${d.last_status_code ?? ''} ${d.last_error ?? ''}</td>
                  <td>${kst(d.updated_at)}</td>
                  ${
                    finance
                      ? html`<td>
                          <form method="post" action="/console/webhooks/deliveries/${d.id}/resend">
                            ${csrfField(ctx)}<button type="submit" class="secondary" data-action="resend">재전송</button>
                          </form>
                        </td>`
                      : html``
                  }
                </tr>`,
            )}
            ${
              deliveries.rows.length
                ? html``
                : html`<tr>
                    <td colspan="7" class="muted">해당하는 전달이 없습니다.</td>
                  </tr>`
            }
          </tbody>
        </table>
        <div class="pager">
          ${deliveries.page > 1 ? html`<a href="/console/webhooks?status=${status}&amp;page=${deliveries.page - 1}">← 이전</a>` : html``}
          <span class="muted">${deliveries.page} 페이지</span>
          ${deliveries.hasMore ? html`<a href="/console/webhooks?status=${status}&amp;page=${deliveries.page + 1}">다음 →</a>` : html``}
        </div>
      </div>`,
  );
}
