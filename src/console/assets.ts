import { readFileSync } from 'node:fs';

/**
 * The console's static assets, all served by the service itself (no CDN, no bundler): htmx from its npm package
 * (resolved at run time, so it works from src/ and dist/ alike) and this stylesheet, kept in a TypeScript string so
 * that `tsc` carries it into dist/ with the code.
 */
let htmx: Buffer | undefined;
export function htmxScript(): Buffer {
  htmx ??= readFileSync(require.resolve('htmx.org/dist/htmx.min.js'));
  return htmx;
}

/** Changes with the stylesheet or htmx, so browsers may cache the assets for long. */
export const ASSET_VERSION = '1';

export const CONSOLE_CSS = `
:root {
  --fg: #1d2330; --muted: #5d6678; --line: #d8dde6; --bg: #f5f7fa; --card: #fff;
  --accent: #1f5eff; --accent-dark: #1745c2; --danger: #c62828; --ok: #1b7f3b; --warn: #a15c00;
  font-family: "Noto Sans KR", "Nanum Gothic", NanumGothic, "Apple SD Gothic Neo", "Malgun Gothic", system-ui, sans-serif;
  font-size: 15px; line-height: 1.5; color: var(--fg); background: var(--bg);
}
* { box-sizing: border-box; }
body { margin: 0; }
a { color: var(--accent); }
a:focus-visible, button:focus-visible, input:focus-visible, select:focus-visible, summary:focus-visible {
  outline: 3px solid #ffbf47; outline-offset: 2px;
}
.skip { position: absolute; left: -999px; top: 0; background: #fff; padding: 8px; z-index: 10; }
.skip:focus { left: 8px; }
header.top { background: #162033; color: #fff; }
header.top .bar { max-width: 1240px; margin: 0 auto; padding: 0 20px; display: flex; align-items: center; gap: 24px; min-height: 56px; flex-wrap: wrap; }
header.top .brand { font-weight: 700; color: #fff; text-decoration: none; white-space: nowrap; }
header.top nav ul { list-style: none; display: flex; gap: 4px; margin: 0; padding: 0; flex-wrap: wrap; }
header.top nav a { color: #dfe6f5; text-decoration: none; padding: 8px 10px; border-radius: 6px; display: block; }
header.top nav a[aria-current="page"], header.top nav a:hover { background: #2a3a5c; color: #fff; }
header.top .who { margin-left: auto; display: flex; align-items: center; gap: 12px; font-size: 14px; color: #c9d2e6; }
header.top .who form { margin: 0; }
header.top .who a { color: #dfe6f5; }
header.top .who button { background: transparent; color: #fff; border: 1px solid #56648a; padding: 4px 10px; }
main { max-width: 1240px; margin: 0 auto; padding: 20px; }
h1 { font-size: 22px; margin: 4px 0 16px; }
h2 { font-size: 17px; margin: 0 0 12px; }
.card { background: var(--card); border: 1px solid var(--line); border-radius: 10px; padding: 16px 18px; margin-bottom: 16px; }
.grid { display: grid; gap: 16px; grid-template-columns: repeat(auto-fit, minmax(260px, 1fr)); }
.grid-2 { display: grid; gap: 16px; grid-template-columns: minmax(0, 3fr) minmax(320px, 2fr); align-items: start; }
@media (max-width: 1000px) { .grid-2 { grid-template-columns: 1fr; } }
.kpi { font-size: 26px; font-weight: 700; }
.muted { color: var(--muted); }
.small { font-size: 13px; }
table { width: 100%; border-collapse: collapse; }
th, td { text-align: left; padding: 8px 10px; border-bottom: 1px solid var(--line); vertical-align: top; }
th { font-size: 13px; color: var(--muted); font-weight: 600; background: #fafbfd; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
dl.facts { display: grid; grid-template-columns: max-content 1fr; gap: 6px 16px; margin: 0; }
dl.facts dt { color: var(--muted); }
dl.facts dd { margin: 0; }
.badge { display: inline-block; padding: 1px 8px; border-radius: 999px; font-size: 13px; background: #e8ecf3; color: #34405a; white-space: nowrap; }
.badge-active, .badge-done, .badge-succeeded, .badge-completed, .badge-delivered { background: #e3f4e8; color: var(--ok); }
.badge-past_due, .badge-unknown, .badge-pending, .badge-running, .badge-partial_canceled { background: #fff1dc; color: var(--warn); }
.badge-canceled, .badge-aborted, .badge-failed, .badge-unpaid, .badge-interrupted { background: #fde7e7; color: var(--danger); }
.badge-paused, .badge-trialing, .badge-ready { background: #e6edff; color: var(--accent-dark); }
form.inline { display: inline; }
label { display: block; font-weight: 600; margin: 10px 0 4px; font-size: 14px; }
label.check { font-weight: 400; display: flex; gap: 8px; align-items: center; }
input[type=text], input[type=email], input[type=password], input[type=number], input[type=date], input[type=datetime-local], input[type=search], select, textarea {
  font: inherit; padding: 7px 10px; border: 1px solid #aab3c5; border-radius: 6px; background: #fff; width: 100%; max-width: 420px;
}
textarea { min-height: 64px; }
button, .button { font: inherit; cursor: pointer; border-radius: 6px; border: 1px solid var(--accent); background: var(--accent); color: #fff; padding: 7px 14px; text-decoration: none; display: inline-block; white-space: nowrap; }
button:hover, .button:hover { background: var(--accent-dark); }
button.secondary, .button.secondary { background: #fff; color: var(--accent); }
button.danger { background: var(--danger); border-color: var(--danger); }
.filters { display: flex; flex-wrap: wrap; gap: 12px; align-items: end; }
.filters label { margin: 0 0 4px; }
.filters > div { min-width: 160px; }
.actions details { border: 1px solid var(--line); border-radius: 8px; padding: 8px 12px; margin-bottom: 8px; background: #fbfcfe; }
.actions summary { cursor: pointer; font-weight: 600; }
.notice { padding: 10px 14px; border-radius: 8px; margin-bottom: 16px; border: 1px solid; }
.notice.ok { background: #e9f7ee; border-color: #9fd3b0; color: #14532d; }
.notice.error { background: #fdecec; border-color: #f0a3a3; color: #7f1d1d; }
.notice.info { background: #eef3ff; border-color: #b7c8f5; color: #1e3a8a; }
.split { font-variant-numeric: tabular-nums; }
.split td:last-child { text-align: right; }
.timeline { list-style: none; margin: 0; padding: 0; }
.timeline li { border-left: 3px solid var(--line); padding: 4px 0 10px 14px; position: relative; }
.timeline li .when { font-size: 13px; color: var(--muted); }
.timeline li.kind-payment { border-left-color: #7aa2ff; }
.timeline li.kind-refund { border-left-color: #f0a04b; }
.timeline li.kind-reservation { border-left-color: #b59cf0; }
.pager { display: flex; gap: 12px; margin-top: 12px; align-items: center; }
.login { max-width: 420px; margin: 60px auto; }
svg.chart text { font-size: 11px; fill: var(--fg); }
svg.chart rect.bar { fill: var(--accent); }
.problems li { margin-bottom: 6px; }
.progress { display: flex; gap: 14px; flex-wrap: wrap; }
code { font-size: 13px; background: #eef1f6; padding: 1px 5px; border-radius: 4px; }
`;
