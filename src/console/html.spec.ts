import { safeNext } from './console-auth.controller';
import { escapeHtml, fromSeoulInput, html, kst, kstDate, raw, won } from './html';

describe('console html', () => {
  it('should escape every interpolated value, nested templates and arrays included', () => {
    const name = `<script>alert("x")</script>'&`;
    const out = html`<p title="${name}">${name}${[name, html`<b>${name}</b>`]}</p>`.value;
    expect(out).not.toContain('<script>');
    expect(out).toBe(
      `<p title="&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;&#39;&amp;">` +
        `&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;&#39;&amp;`.repeat(2) +
        `<b>&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;&#39;&amp;</b></p>`,
    );
  });

  it('should leave out null, undefined and false, and keep markup made by the tag or raw', () => {
    expect(html`${null}${undefined}${false}${0}${raw('<br>')}`.value).toBe('0<br>');
    expect(escapeHtml('`')).toBe('&#96;');
  });

  it('should write won with thousands separators and 원', () => {
    expect(won(11000)).toBe('11,000원');
    expect(won('1234567')).toBe('1,234,567원');
    expect(won(0)).toBe('0원');
    expect(won(null)).toBe('–');
  });

  it('should show instants in Asia/Seoul with the zone', () => {
    expect(kst('2026-01-15T01:00:00.000Z')).toBe('2026-01-15 10:00 KST');
    expect(kst(new Date('2026-01-31T15:30:00.000Z'))).toBe('2026-02-01 00:30 KST');
    expect(kstDate('2026-01-31T15:30:00.000Z')).toBe('2026-02-01');
    expect(kst(null)).toBe('–');
  });

  it('should read a Seoul wall time as an instant and refuse impossible dates', () => {
    expect(fromSeoulInput('2026-03-01T09:00')!.toISOString()).toBe('2026-03-01T00:00:00.000Z');
    expect(fromSeoulInput('2026-03-01')!.toISOString()).toBe('2026-02-28T15:00:00.000Z');
    expect(fromSeoulInput('2026-02-30')).toBeNull();
    expect(fromSeoulInput('tomorrow')).toBeNull();
  });

  it('should follow only paths inside the console after signing in', () => {
    expect(safeNext('/console/subscriptions?status=past_due')).toBe('/console/subscriptions?status=past_due');
    expect(safeNext('https://evil.example/console')).toBe('/console');
    expect(safeNext('//evil.example')).toBe('/console');
    expect(safeNext('/console//evil.example')).toBe('/console');
    expect(safeNext('/v1/plans')).toBe('/console');
    expect(safeNext(undefined)).toBe('/console');
  });
});
