/**
 * Summarises V8 .cpuprofile files (as bench:charge writes them with BENCH_CPU_PROF=1): self time by function and by
 * area (a package under node_modules, a folder of src/, Node's internals, GC), as a share of the profile's busy time
 * (idle left out) and, with --per N, in milliseconds per charge.
 *
 *   node dist/bench/profile-summary.js [--top 30] [--per 5000] <file.cpuprofile>...
 *
 * Several files are summarised one after another; with two, the areas are also compared side by side (ms per charge
 * when --per is given, so the engine's profile can be set against the gateway-only loop's).
 */
import { readFileSync } from 'node:fs';
import { basename } from 'node:path';

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
  columnNumber: number;
}

interface ProfileNode {
  id: number;
  callFrame: CallFrame;
  children?: number[];
}

interface CpuProfile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples: number[];
  timeDeltas: number[];
}

export interface Summary {
  file: string;
  /** Microseconds sampled in all, and without (idle). */
  totalUs: number;
  busyUs: number;
  byFunction: Map<string, number>;
  byArea: Map<string, number>;
}

/** Where a function lives: a package, a folder of the project, Node's internals, or V8's own pseudo-frames. */
export function areaOf(f: CallFrame): string {
  const url = f.url;
  if (!url) {
    if (f.functionName.startsWith('(')) return f.functionName; // (garbage collector), (program), (idle)
    return '(native)';
  }
  if (url.startsWith('node:')) return `node:${url.slice(5).split('/')[0]}`;
  const nm = url.lastIndexOf('/node_modules/');
  if (nm >= 0) {
    const rest = url.slice(nm + 14).split('/');
    return rest[0].startsWith('@') ? `${rest[0]}/${rest[1]}` : rest[0];
  }
  const m = /\/dist\/(src|bench)\/(.*)$/.exec(url);
  if (m) {
    const parts = m[2].split('/');
    return m[1] === 'bench' ? `bench/${parts[0]}` : `src/${parts[0]}`;
  }
  return url.replace(/^file:\/\//, '');
}

function fileOf(url: string): string {
  if (!url) return '';
  const nm = url.lastIndexOf('/node_modules/');
  if (nm >= 0) return url.slice(nm + 14);
  const d = url.lastIndexOf('/dist/');
  if (d >= 0) return url.slice(d + 6);
  return url.replace(/^file:\/\//, '');
}

export function summarise(file: string): Summary {
  const p = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile;
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const self = new Map<number, number>();
  // timeDeltas[i] is the time before sample i; the time of sample i is the gap to the next one.
  for (let i = 0; i < p.samples.length; i++) {
    const dt = i + 1 < p.timeDeltas.length ? p.timeDeltas[i + 1] : 0;
    self.set(p.samples[i], (self.get(p.samples[i]) ?? 0) + Math.max(0, dt));
  }
  const byFunction = new Map<string, number>();
  const byArea = new Map<string, number>();
  let totalUs = 0;
  let busyUs = 0;
  for (const [id, us] of self) {
    const f = byId.get(id)!.callFrame;
    totalUs += us;
    if (f.functionName === '(idle)') continue;
    busyUs += us;
    const key = `${f.functionName || '(anonymous)'}  ${fileOf(f.url)}${f.url ? `:${f.lineNumber + 1}` : ''}`;
    byFunction.set(key, (byFunction.get(key) ?? 0) + us);
    const area = areaOf(f);
    byArea.set(area, (byArea.get(area) ?? 0) + us);
  }
  return { file, totalUs, busyUs, byFunction, byArea };
}

function top(m: Map<string, number>, n: number): [string, number][] {
  return [...m.entries()].sort((a, b) => b[1] - a[1]).slice(0, n);
}

function print(s: Summary, n: number, per: number | null): void {
  const ms = (us: number) => (per ? `${((us / 1000) * (1 / per)).toFixed(4)} ms/charge` : `${(us / 1000).toFixed(0)} ms`);
  const pct = (us: number) => `${((us / Math.max(1, s.busyUs)) * 100).toFixed(1).padStart(5)}%`;
  process.stdout.write(
    `\n${basename(s.file)}: busy ${(s.busyUs / 1e6).toFixed(2)} s of ${(s.totalUs / 1e6).toFixed(2)} s sampled${per ? `, ${per} charges` : ''}\n`,
  );
  process.stdout.write(`  by area (self time, % of busy):\n`);
  for (const [k, us] of top(s.byArea, n)) process.stdout.write(`    ${pct(us)}  ${ms(us).padStart(18)}  ${k}\n`);
  process.stdout.write(`  top functions (self time, % of busy):\n`);
  for (const [k, us] of top(s.byFunction, n)) process.stdout.write(`    ${pct(us)}  ${ms(us).padStart(18)}  ${k}\n`);
}

function main(): void {
  const args = process.argv.slice(2);
  let n = 30;
  let per: number | null = null;
  const files: string[] = [];
  for (let i = 0; i < args.length; i++) {
    if (args[i] === '--top') n = Number(args[++i]);
    else if (args[i] === '--per') per = Number(args[++i]);
    else files.push(args[i]);
  }
  if (!files.length) {
    process.stderr.write('usage: node dist/bench/profile-summary.js [--top 30] [--per N] <file.cpuprofile>...\n');
    process.exit(2);
  }
  const sums = files.map(summarise);
  for (const s of sums) print(s, n, per);
  if (sums.length === 2) {
    const [a, b] = sums;
    const unit = per ? 'ms/charge' : 'ms';
    const f = (us: number) => (per ? (us / 1000 / per).toFixed(4) : (us / 1000).toFixed(0));
    process.stdout.write(`\nby area: ${basename(a.file)} | ${basename(b.file)} | difference (${unit}), largest differences first\n`);
    const keys = new Set([...a.byArea.keys(), ...b.byArea.keys()]);
    const rows = [...keys].map((k) => [k, a.byArea.get(k) ?? 0, b.byArea.get(k) ?? 0] as const).sort((x, y) => Math.abs(y[2] - y[1]) - Math.abs(x[2] - x[1]));
    for (const [k, x, y] of rows.slice(0, n)) process.stdout.write(`  ${f(x).padStart(9)}  ${f(y).padStart(9)}  ${f(y - x).padStart(9)}  ${k}\n`);
    process.stdout.write(`  ${f(a.busyUs).padStart(9)}  ${f(b.busyUs).padStart(9)}  ${f(b.busyUs - a.busyUs).padStart(9)}  (busy in all)\n`);
  }
}

if (require.main === module) main();
