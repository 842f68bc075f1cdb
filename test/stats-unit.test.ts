/**
 * The counters' parts without a daemon: the metric table (valid Prometheus names, every metric
 * in the README), the bounds that keep an attacker's random virus names from growing memory,
 * the text format's escaping, and the master's defence against malformed deltas.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { LABEL_NAME_RE, METRIC_NAME_RE, METRICS, NAME_SERIES_MAX, metricsTableMarkdown } from '../src/ops/stats-metrics.js';
import { StatsRecorder, type StatsDelta } from '../src/ops/stats.js';
import { BoundedCounts, SERVER_REPORT_STALE_MS, StatsStore } from '../src/ops/stats-store.js';
import { renderPrometheus, renderStatsLines } from '../src/ops/stats-render.js';
import { parseMetricsAddress } from '../src/config/metrics-address.js';
import { parseProm, total } from './helpers/prom.js';

const G = { workers: 2, inFlight: 0, degraded: false };
const infectedVerdict = (name: string) => ({ kind: 'infected', names: [name], findings: [] }) as const;
const infectedFields = { verdict: 'infected', action: 'reject', reply: 550, ms: 3 };

test('metric and label names are valid Prometheus names, prefixed avfilter_, unique; counters end in _total', () => {
  const seen = new Set<string>();
  for (const m of METRICS) {
    assert.match(m.name, METRIC_NAME_RE);
    assert.ok(m.name.startsWith('avfilter_'), m.name);
    assert.ok(!seen.has(m.name), `${m.name} twice`);
    seen.add(m.name);
    assert.equal(m.type === 'counter', m.name.endsWith('_total'), m.name);
    for (const l of m.labels) {
      assert.match(l, LABEL_NAME_RE);
      assert.ok(!l.startsWith('__') && l !== 'le', `${m.name}: reserved label ${l}`);
    }
  }
});

test('the README\'s "Stats and metrics" table is the one rendered from the metric table (every metric with its labels)', () => {
  const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');
  const want = metricsTableMarkdown();
  if (!readme.includes(want)) console.log(`README table should be:\n${want}`);
  assert.ok(readme.includes(want), 'README lacks the metrics table as rendered from src/ops/stats-metrics.ts');
  for (const m of METRICS) assert.ok(readme.includes(`| \`${m.name}\` |`));
});

test('the Grafana dashboard queries only metrics that exist', () => {
  const dash = readFileSync(new URL('../../docs/grafana-dashboard.json', import.meta.url), 'utf8');
  const names = new Set(METRICS.flatMap((m) => (m.type === 'histogram' ? [`${m.name}_bucket`, `${m.name}_sum`, `${m.name}_count`] : [m.name])));
  const used = new Set(JSON.parse(dash).panels.flatMap((p: { targets?: { expr: string }[] }) => (p.targets ?? []).flatMap((t) => t.expr.match(/avfilter_[a-z_]+/g) ?? [])));
  assert.ok(used.size >= 10, `the dashboard uses ${used.size} metrics`);
  for (const n of used) assert.ok(names.has(n as string), `dashboard queries unknown metric ${n}`);
});

test('random virus names (an attacker\'s) stay bounded: at most NAME_SERIES_MAX series plus "other", in the worker\'s delta and in the master; the total is exact', () => {
  const rec = new StatsRecorder();
  const store = new StatsStore();
  for (let i = 0; i < 5000; i++) {
    rec.message(infectedFields, infectedVerdict(`Random.${i}`));
    if (i % 700 === 0) store.add(rec.take());
  }
  store.add(rec.take());
  for (let i = 0; i < 1000; i++) rec.message(infectedFields, infectedVerdict(`More.${i}`));
  const delta = rec.take()!;
  assert.equal(Object.keys(delta.names).length, NAME_SERIES_MAX + 1, 'one delta: NAME_SERIES_MAX names and "other"');
  assert.equal(Object.values(delta.names).reduce((a, n) => a + n, 0), 1000);
  store.add(delta);
  const s = parseProm(renderPrometheus(store, G));
  const series = [...s.keys()].filter((k) => k.startsWith('avfilter_infected_total{'));
  assert.ok(series.length <= NAME_SERIES_MAX + 1, `${series.length} series`);
  assert.equal(total(s, 'avfilter_infected_total'), 6000);
  assert.ok(s.get('avfilter_infected_total{name="other"}')! > 0);
});

test('a frequent virus name keeps its series through a flood of names seen once', () => {
  const c = new BoundedCounts(10, true);
  for (let i = 0; i < 3; i++) c.add('Real.Virus', 1);
  for (let i = 0; i < 1000; i++) c.add(`Flood.${i}`, 1);
  c.add('Real.Virus', 1);
  assert.equal(c.get('Real.Virus'), 4);
  assert.equal(c.entries().reduce((a, [, n]) => a + n, 0), 1004);
  assert.ok(c.entries().length <= 11);
});

test('label values with quotes, backslashes, newlines and controls are escaped in the text format and quoted in the report lines', () => {
  const rec = new StatsRecorder();
  const store = new StatsStore();
  const evil = 'Evil"name\\with\nnewline\u202e';
  rec.message(infectedFields, infectedVerdict(evil));
  store.add(rec.take());
  const text = renderPrometheus(store, G);
  const s = parseProm(text);
  assert.equal(s.get('avfilter_infected_total{name="Evil\\"name\\\\with\\nnewline\u202e"}'), 1);
  const lines = renderStatsLines(store, G);
  for (const l of lines) assert.doesNotMatch(l, /[\n\u202e]/);
  assert.ok(lines.includes('infected name="Evil\\"name\\\\with\\x0anewline\\u202e": 1 (1)'), lines.join('\n'));
});

test('a malformed delta adds only what is well-formed in it; a "__proto__" name is a name', () => {
  const store = new StatsStore();
  store.add({ messages: { clean: { accept: { 200: -5, 201: 'x' } } }, names: { __proto__: 2, ok: Infinity }, duration: { b: [1, 2], sum: 1 }, engines: { yara: { scans: 3, errors: null } } } as unknown as StatsDelta);
  store.add(JSON.parse('{"names":{"__proto__":2}}') as StatsDelta);
  store.add(null as unknown as StatsDelta);
  const s = parseProm(renderPrometheus(store, G));
  assert.equal(total(s, 'avfilter_messages_total'), 0);
  assert.equal(s.get('avfilter_infected_total{name="__proto__"}'), 2);
  assert.equal(s.get('avfilter_engine_scans_total{engine="yara"}'), 3);
  assert.equal(s.get('avfilter_message_duration_seconds_count'), 0);
});

test('since the last reload: a reload that loads starts the second column again, a failed one does not', () => {
  const rec = new StatsRecorder();
  const store = new StatsStore();
  rec.message({ verdict: 'clean', action: 'accept', reply: 200, ms: 1 });
  store.add(rec.take());
  store.reloaded(false);
  rec.message({ verdict: 'clean', action: 'accept', reply: 200, ms: 1 });
  store.add(rec.take());
  assert.ok(renderStatsLines(store, G).includes('messages: 2 (2)'));
  store.reloaded(true);
  rec.message({ verdict: 'tempfail', action: 'tempfail', reply: 451, code: 'ETIMEOUT', ms: 1 });
  store.add(rec.take());
  const lines = renderStatsLines(store, G);
  for (const want of ['messages: 3 (1)', 'messages verdict=clean action=accept reply=200: 2 (0)', 'tempfails code=ETIMEOUT: 1 (1)', 'reloads ok: 1 (1)', 'reloads failed: 1 (0)']) {
    assert.ok(lines.includes(want), `${want}\n${lines.join('\n')}`);
  }
  assert.equal(rec.take(), undefined, 'nothing new: no delta');
});

test('metrics addresses: loopback, unix and port 0 accepted; other IPs accepted as exposed; host names and bad forms refused', () => {
  assert.equal(parseMetricsAddress(''), undefined);
  assert.deepEqual(parseMetricsAddress('tcp:127.0.0.1:9187'), { kind: 'tcp', host: '127.0.0.1', port: 9187, exposed: false });
  assert.deepEqual(parseMetricsAddress('tcp:localhost:0'), { kind: 'tcp', host: '127.0.0.1', port: 0, exposed: false });
  assert.deepEqual(parseMetricsAddress('tcp:[::1]:9187'), { kind: 'tcp', host: '::1', port: 9187, exposed: false });
  assert.deepEqual(parseMetricsAddress('unix:/run/avfilter/metrics.sock'), { kind: 'unix', path: '/run/avfilter/metrics.sock' });
  assert.equal(parseMetricsAddress('tcp:192.0.2.1:9187')!.kind === 'tcp' && (parseMetricsAddress('tcp:192.0.2.1:9187') as { exposed: boolean }).exposed, true);
  assert.equal((parseMetricsAddress('tcp:[2001:db8::1]:9187') as { exposed: boolean }).exposed, true);
  for (const bad of ['tcp:example.test:9187', 'tcp:127.0.0.1', 'tcp:127.0.0.1:65536', 'unix:relative', 'http://127.0.0.1:9187/', 'tcp:::1:9187', `unix:/${'x'.repeat(120)}`]) {
    assert.throws(() => parseMetricsAddress(bad), { code: 'EBADMETRICS' }, bad);
  }
});

test('clamd server state: down when any worker that reported lately has it down; a worker silent for 10 s no longer counts', () => {
  const store = new StatsStore();
  const report = (up: boolean, failures = 0) => ({ servers: [{ server: 'unix:/run/clamav/clamd.ctl', up, failures, lastError: up ? '' : 'ECONNECT: refused' }] }) as unknown as StatsDelta;
  store.add(report(true), 1);
  store.add(report(false, 1), 2);
  const state = store.servers.get('unix:/run/clamav/clamd.ctl')!;
  assert.equal(state.up(), false, 'one of two workers has it down');
  assert.equal(state.lastError, 'ECONNECT: refused');
  store.add(report(true), 2);
  assert.equal(state.up(), true, 'both see it up again');
  assert.equal(state.up(Date.now() + SERVER_REPORT_STALE_MS + 1), undefined, 'nobody reported lately');
  const s = parseProm(renderPrometheus(store, G));
  assert.equal(s.get('avfilter_clamd_server_failures_total{server="unix:/run/clamav/clamd.ctl"}'), 1);
});
