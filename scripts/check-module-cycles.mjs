// No two feature folders of src/ import each other, directly or through others (a cycle of folders).
// src/*.ts (the composition root: main, cli, app.module, bootstrap) may import anything and is not a folder.
// Usage: node scripts/check-module-cycles.mjs   (exit 1 and the cycles when there are any)
import { cruise } from 'dependency-cruiser';

const result = await cruise(['src'], { tsConfig: { fileName: 'tsconfig.json' }, tsPreCompilationDeps: true, doNotFollow: { path: 'node_modules' } });
const folderOf = (path) => {
  const parts = path.split('/');
  return parts[0] === 'src' && parts.length > 2 ? parts[1] : null;
};
const edges = new Map();
const via = new Map();
for (const m of result.output.modules) {
  const from = folderOf(m.source);
  if (!from || m.source.endsWith('.spec.ts')) continue;
  for (const d of m.dependencies) {
    const to = folderOf(d.resolved);
    if (!to || to === from) continue;
    if (!edges.has(from)) edges.set(from, new Set());
    edges.get(from).add(to);
    if (!via.has(`${from}>${to}`)) via.set(`${from}>${to}`, `${m.source} -> ${d.resolved}`);
  }
}
// Tarjan's strongly connected components: every component of more than one folder is a cycle.
let index = 0;
const stack = [];
const state = new Map();
const cycles = [];
function visit(v) {
  state.set(v, { index, low: index, onStack: true });
  index++;
  stack.push(v);
  for (const w of edges.get(v) ?? []) {
    if (!state.has(w)) {
      visit(w);
      state.get(v).low = Math.min(state.get(v).low, state.get(w).low);
    } else if (state.get(w).onStack) {
      state.get(v).low = Math.min(state.get(v).low, state.get(w).index);
    }
  }
  if (state.get(v).low === state.get(v).index) {
    const component = [];
    let w;
    do {
      w = stack.pop();
      state.get(w).onStack = false;
      component.push(w);
    } while (w !== v);
    if (component.length > 1) cycles.push(component.sort());
  }
}
for (const v of edges.keys()) if (!state.has(v)) visit(v);
if (cycles.length) {
  console.error('Feature folders that import each other (a cycle):');
  for (const c of cycles) {
    console.error(`- ${c.join(', ')}`);
    for (const a of c) for (const b of c) if (edges.get(a)?.has(b)) console.error(`    ${via.get(`${a}>${b}`)}`);
  }
  process.exit(1);
}
console.log(`No cycles between the ${edges.size} folders of src/.`);
