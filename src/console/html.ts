/**
 * Server-side HTML for the console. Every value interpolated with the `html` tag is escaped unless it is itself
 * SafeHtml made by this tag (or by `raw` for a fixed string of this module), so data from the database or the
 * request can never become markup.
 */
export class SafeHtml {
  constructor(readonly value: string) {}
  toString(): string {
    return this.value;
  }
}

const ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;', '`': '&#96;' };

export function escapeHtml(value: string): string {
  return value.replace(/[&<>"'`]/g, (c) => ESCAPES[c]);
}

function render(value: unknown): string {
  if (value === null || value === undefined || value === false) return '';
  if (value instanceof SafeHtml) return value.value;
  if (Array.isArray(value)) return value.map(render).join('');
  return escapeHtml(String(value));
}

export function html(strings: TemplateStringsArray, ...values: unknown[]): SafeHtml {
  let out = strings[0];
  for (let i = 0; i < values.length; i++) out += render(values[i]) + strings[i + 1];
  return new SafeHtml(out);
}

/** Only for constant markup written in this code, never for data. */
export function raw(markup: string): SafeHtml {
  return new SafeHtml(markup);
}

// ------------------------------------------------------------------------------------------------------ formatting

/** Won as Koreans write it: 11,000원. */
export function won(amount: number | string | null | undefined): string {
  if (amount === null || amount === undefined || amount === '') return '–';
  return `${Number(amount).toLocaleString('en-US')}원`;
}

export const CONSOLE_TIME_ZONE = 'Asia/Seoul';

const PARTS = new Intl.DateTimeFormat('en-CA', {
  timeZone: CONSOLE_TIME_ZONE,
  year: 'numeric',
  month: '2-digit',
  day: '2-digit',
  hour: '2-digit',
  minute: '2-digit',
  second: '2-digit',
  hourCycle: 'h23',
});

function seoulParts(d: Date): Record<string, string> {
  return Object.fromEntries(PARTS.formatToParts(d).map((p) => [p.type, p.value]));
}

function asDate(value: Date | string | null | undefined): Date | null {
  if (value === null || value === undefined) return null;
  const d = value instanceof Date ? value : new Date(value);
  return Number.isNaN(d.getTime()) ? null : d;
}

/** "2026-01-15 10:00 KST" (Asia/Seoul, the zone shown). */
export function kst(value: Date | string | null | undefined): string {
  const d = asDate(value);
  if (!d) return '–';
  const p = seoulParts(d);
  return `${p.year}-${p.month}-${p.day} ${p.hour}:${p.minute} KST`;
}

/** The business date in Seoul: "2026-01-15". */
export function kstDate(value: Date | string): string {
  const p = seoulParts(asDate(value)!);
  return `${p.year}-${p.month}-${p.day}`;
}

/** A Seoul wall time "YYYY-MM-DDTHH:mm" (an <input type=datetime-local> value, or a date alone) as an instant. */
export function fromSeoulInput(value: string): Date | null {
  const m = /^(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2}))?$/.exec(value.trim());
  if (!m) return null;
  const [y, mo, d, h, mi] = [m[1], m[2], m[3], m[4] ?? '00', m[5] ?? '00'].map(Number);
  // Seoul has been UTC+9 without daylight saving since 1988.
  const ms = Date.UTC(y, mo - 1, d, h, mi) - 9 * 3600_000;
  const date = new Date(ms);
  const back = seoulParts(date);
  if (Number(back.year) !== y || Number(back.month) !== mo || Number(back.day) !== d) return null;
  return date;
}

/** Seconds or minutes a run took: "2분 5초". */
export function duration(from: Date | string | null, to: Date | string | null): string {
  const a = asDate(from);
  const b = asDate(to);
  if (!a || !b) return '–';
  const s = Math.max(0, Math.round((b.getTime() - a.getTime()) / 1000));
  if (s < 60) return `${s}초`;
  const m = Math.floor(s / 60);
  return m < 60 ? `${m}분 ${s % 60}초` : `${Math.floor(m / 60)}시간 ${m % 60}분`;
}

// ------------------------------------------------------------------------------------------------------ labels

export const SUBSCRIPTION_STATUS_LABEL: Record<string, string> = {
  incomplete: '미완료',
  trialing: '체험 중',
  active: '활성',
  past_due: '연체',
  paused: '일시정지',
  canceled: '해지됨',
  unpaid: '미납',
};

export const PAYMENT_STATUS_LABEL: Record<string, string> = {
  READY: '예약됨',
  IN_PROGRESS: '진행 중',
  UNKNOWN: '결과 미확인',
  DONE: '결제 완료',
  ABORTED: '실패',
  CANCELED: '전액 환불',
  PARTIAL_CANCELED: '부분 환불',
};

export const REFUND_STATUS_LABEL: Record<string, string> = { pending: '전송 중', succeeded: '환불 완료', failed: '환불 실패', unknown: '결과 미확인' };

export const RUN_STATUS_LABEL: Record<string, string> = { running: '실행 중', completed: '완료', failed: '실패', interrupted: '중단됨' };

export const RUN_TRIGGER_LABEL: Record<string, string> = { cron: '야간 자동', manual: 'API 요청', cli: 'CLI' };

export const DELIVERY_STATUS_LABEL: Record<string, string> = { pending: '대기', delivered: '전달됨', failed: '실패' };

export const ROLE_LABEL: Record<string, string> = { finance: '재무 (실행 가능)', viewer: '조회 전용' };

export const EVENT_LABEL: Record<string, string> = {
  'subscription.created': '구독 생성',
  'subscription.activated': '활성화',
  'subscription.renewed': '갱신',
  'subscription.past_due': '연체 전환',
  'subscription.paused': '일시정지',
  'subscription.resumed': '재개',
  'subscription.plan_changed': '요금제 변경',
  'subscription.plan_change_scheduled': '요금제 변경 예약',
  'subscription.plan_change_requested': '요금제 변경 요청',
  'subscription.cancel_scheduled': '기간 종료 시 해지 예약',
  'subscription.reactivated': '해지 예약 취소',
  'subscription.canceled': '해지',
  'subscription.unpaid': '미납 전환',
  'subscription.retry_requested': '즉시 재시도 요청',
  'subscription.billing_key_changed': '결제 카드 변경',
  'payment.succeeded': '결제 성공',
  'payment.failed': '결제 실패',
  'refund.succeeded': '환불 완료',
  'refund.failed': '환불 실패',
};

export function label(map: Record<string, string>, key: string | null | undefined): string {
  if (!key) return '–';
  return map[key] ?? key;
}

/** A status badge: the Korean label, with the API's code for whoever reads the API too. */
export function badge(map: Record<string, string>, status: string): SafeHtml {
  return html`<span class="badge badge-${status.toLowerCase().replace(/[^a-z_]/g, '')}" data-status="${status}">${label(map, status)}</span>`;
}
