/**
 * `node dist/bench/cpuprofile.js FILE.cpuprofile [N]`: where a V8 CPU profile (node --cpu-prof)
 * spent its time: the top N functions by self time, and self time per script (node internals,
 * each package under node_modules, each file of dist/src). For profiling avfilter under the
 * benchmark's load: AVFILTER_BENCH_NODE_ARGS="--cpu-prof --cpu-prof-dir=DIR" npm run bench --
 * --only filter. Reads the JSON; fails with the JSON or fs error.
 */
import { readFileSync } from 'node:fs';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  hitCount?: number;
}

interface Profile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
  startTime: number;
  endTime: number;
}

function scriptOf(url: string): string {
  if (!url) return '(native / VM)';
  const nm = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (nm) return `node_modules/${nm[1]}`;
  const dist = /\/dist\/(.*)$/.exec(url);
  if (dist) return dist[1]!;
  if (url.startsWith('node:')) return 'node internals';
  return url;
}

const [file, topArg] = process.argv.slice(2);
if (!file) {
  console.error('usage: node dist/bench/cpuprofile.js FILE.cpuprofile [N]');
  process.exit(2);
}
const p = JSON.parse(readFileSync(file, 'utf8')) as Profile;
const byId = new Map(p.nodes.map((n) => [n.id, n]));
const self = new Map<number, number>();
p.samples.forEach((id, i) => self.set(id, (self.get(id) ?? 0) + (p.timeDeltas[i] ?? 0) / 1000));
const total = [...self.values()].reduce((a, b) => a + b, 0);
const byFn = new Map<string, number>();
const byScript = new Map<string, number>();
for (const [id, ms] of self) {
  const f = byId.get(id)!.callFrame;
  const fn = `${f.functionName || '(anonymous)'} ${scriptOf(f.url)}:${f.lineNumber + 1}`;
  byFn.set(fn, (byFn.get(fn) ?? 0) + ms);
  byScript.set(scriptOf(f.url), (byScript.get(scriptOf(f.url)) ?? 0) + ms);
}
const top = (m: Map<string, number>, n: number): string[] =>
  [...m].sort((a, b) => b[1] - a[1]).slice(0, n).map(([k, v]) => `${v.toFixed(0).padStart(8)} ms ${((100 * v) / total).toFixed(1).padStart(5)}%  ${k}`);
console.log(`${file}: ${total.toFixed(0)} ms sampled over ${((p.endTime - p.startTime) / 1000).toFixed(0)} ms`);
console.log('\nself time by script:');
console.log(top(byScript, 25).join('\n'));
console.log(`\nself time by function (top ${Number(topArg ?? 30)}):`);
console.log(top(byFn, Number(topArg ?? 30)).join('\n'));
