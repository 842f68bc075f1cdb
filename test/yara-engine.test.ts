/**
 * The embedded YARA-X engine against the real binding: the shipped EICAR rule, rule loading and
 * its errors, size limit, deadline and abort (with a deliberately slow rule so the native scan
 * really is running when the answer must come), names, version, default rules directory.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, mkdir, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { EngineResult, ScanItem, ScanSource } from '../src/engines/engine.js';
import {
  createYaraEngine,
  DEFAULT_RULES_DIR,
  packageRulesDir,
  YaraError,
  type YaraEngine,
  type YaraOptions,
} from '../src/engines/yara/index.js';
import { loadBindingFrom, BINDING_PACKAGE } from '../src/engines/yara/binding.js';
import { countRules } from '../src/engines/yara/rule-count.js';
import { ScanPool } from '../src/engines/yara/pool.js';
import { bufferSource } from '../src/bytes/sources.js';
import { eicar } from './helpers/eicar.js';

const REPO = fileURLToPath(new URL('../../', import.meta.url)); // dist/test/ → repo root
const SHIPPED_RULES = join(REPO, 'rules');
const MB = 1024 * 1024;

const engines: YaraEngine[] = [];
const tmpDirs: string[] = [];
after(async () => {
  await Promise.all(engines.map((e) => e.close()));
  await Promise.all(tmpDirs.map((d) => rm(d, { recursive: true, force: true })));
});

function engine(opts: Partial<YaraOptions> = {}): YaraEngine {
  const e = createYaraEngine({ rulesDir: SHIPPED_RULES, maxScanBytes: 4 * MB, scanTimeoutMs: 10_000, ...opts });
  engines.push(e);
  return e;
}

async function rulesDir(files: Record<string, string | Buffer>): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'avfilter-yara-'));
  tmpDirs.push(dir);
  for (const [name, text] of Object.entries(files)) await writeFile(join(dir, name), text);
  return dir;
}

function part(buf: Buffer, id = '1'): ScanItem {
  return { id, kind: 'part', source: bufferSource(buf) };
}

function scan(e: YaraEngine, buf: Buffer, signal = new AbortController().signal): Promise<EngineResult> {
  return e.scan(part(buf), signal);
}

function expectError(r: EngineResult, code: string): void {
  assert.equal(r.status, 'error', `expected error ${code}, got ${JSON.stringify(r)}`);
  if (r.status === 'error') assert.equal(r.code, code, r.message);
}

function expectCode(fn: () => unknown, code: string, ...inMessage: string[]): YaraError {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof YaraError, String(err));
    assert.equal(err.code, code, err.message);
    for (const s of inMessage) assert.ok(err.message.includes(s), `"${s}" not in: ${err.message}`);
    return err;
  }
  assert.fail(`expected a YaraError ${code}`);
}

/** The virus name the shipped rule declares (the "database" of this engine). */
async function shippedEicarName(): Promise<string> {
  const text = await readFile(join(SHIPPED_RULES, 'eicar.yar'), 'utf8');
  const m = /^\s*name\s*=\s*"([^"]+)"/m.exec(text);
  assert.ok(m, 'eicar.yar declares meta name');
  return m[1]!;
}

// A rule whose regex makes YARA-X slow on long runs of "a" (about 4 s per MB here): the scan is
// still running in its thread when the deadline or the abort must be answered.
const SLOW_RULE = 'rule slow { strings: $a = /a[^b]{0,50}c/ condition: $a }\n';
const SLOW_INPUT = Buffer.alloc(600 * 1024, 'a');

test('shipped rules: EICAR is infected with the name the rule declares', async () => {
  const name = await shippedEicarName();
  assert.equal(name, 'Eicar-Test-Signature');
  assert.deepEqual(await scan(engine(), eicar()), { status: 'infected', names: [name] });
});

test('shipped rules: EICAR in the middle of a larger buffer is infected', async () => {
  const filler = Buffer.alloc(200 * 1024);
  for (let i = 0; i < filler.length; i++) filler[i] = (i * 7919) % 251;
  const buf = Buffer.concat([filler, Buffer.from('\r\n'), eicar(), Buffer.from('\r\n'), filler]);
  assert.deepEqual(await scan(engine(), buf), { status: 'infected', names: [await shippedEicarName()] });
});

test('shipped rules: clean text, half an EICAR, or text naming it are clean', async () => {
  const e = engine();
  const full = eicar().toString('latin1');
  const head = full.slice(0, 28);
  const tail = full.slice(28);
  const cases = [
    'Hello, this is an ordinary message.\r\n',
    tail,
    head,
    `${head} ${tail}`, // both halves, not adjacent
    `${tail}${head}`, // wrong order
    'Please send me the EICAR-STANDARD-ANTIVIRUS-TEST-FILE so I can test the filter.',
    '',
  ];
  for (const text of cases) {
    assert.deepEqual(await scan(e, Buffer.from(text, 'latin1')), { status: 'clean' }, JSON.stringify(text));
  }
});

test('the repository rules never hold the contiguous EICAR string', async () => {
  const needle = eicar();
  for (const name of await readdir(SHIPPED_RULES)) {
    const bytes = await readFile(join(SHIPPED_RULES, name));
    assert.equal(bytes.includes(needle), false, name);
  }
});

test('default rules dir is the repository rules/ from dist, and from the sources too', () => {
  assert.equal(DEFAULT_RULES_DIR, SHIPPED_RULES);
  assert.equal(packageRulesDir(join(REPO, 'dist/src/engines/yara')), SHIPPED_RULES);
  assert.equal(packageRulesDir(join(REPO, 'src/engines/yara')), SHIPPED_RULES);
  assert.equal(engine({ rulesDir: DEFAULT_RULES_DIR }).rules.ruleCount, 1);
});

test('rules dir with a syntax error: EYARA_COMPILE naming the file and line', async () => {
  const dir = await rulesDir({
    'a.yar': 'rule good { condition: true }\n',
    'b.yar': '// second file\n\nrule bad { condition: tru }\n',
  });
  const err = expectCode(() => engine({ rulesDir: dir }), 'EYARA_COMPILE', join(dir, 'b.yar') + ':3:');
  assert.ok(!err.message.includes('a.yar'), err.message);
});

test('compile errors: duplicate rule across files, include, bad UTF-8, unclosed comment', async () => {
  const dup = await rulesDir({ '1.yar': 'rule x { condition: true }\n', '2.yar': 'rule x { condition: true }\n' });
  expectCode(() => engine({ rulesDir: dup }), 'EYARA_COMPILE', join(dup, '2.yar') + ':1:', 'duplicate');
  const inc = await rulesDir({ 'i.yar': 'include "other.yar"\n', 'other.yar': 'rule o { condition: true }\n' });
  expectCode(() => engine({ rulesDir: inc }), 'EYARA_COMPILE', join(inc, 'i.yar') + ':1:');
  const latin = await rulesDir({ 'l.yar': Buffer.from('rule l { strings: $a = "caf\xe9" condition: $a }\n', 'latin1') });
  expectCode(() => engine({ rulesDir: latin }), 'EYARA_COMPILE', join(latin, 'l.yar'), 'UTF-8');
  // Compiled alone this would hide b.yar's first rule inside a comment; it must not pass.
  const open = await rulesDir({ 'a.yar': 'rule a { condition: true }\n/* oops\n', 'b.yar': 'rule b { condition: true } /* */\n' });
  expectCode(() => engine({ rulesDir: open }), 'EYARA_COMPILE', join(open, 'a.yar'));
});

test('empty, missing, rule-less directory or files without rules: EYARA_NO_RULES', async () => {
  const empty = await rulesDir({});
  expectCode(() => engine({ rulesDir: empty }), 'EYARA_NO_RULES', empty);
  expectCode(() => engine({ rulesDir: join(empty, 'missing') }), 'EYARA_NO_RULES');
  const other = await rulesDir({ 'notes.txt': 'rule n { condition: true }\n', '.hidden.yar': 'rule h { condition: true }\n' });
  await mkdir(join(other, 'sub.yar'));
  await writeFile(join(other, 'sub.yar', 'deep.yar'), 'rule d { condition: true }\n');
  expectCode(() => engine({ rulesDir: other }), 'EYARA_NO_RULES');
  const hollow = await rulesDir({ 'empty.yar': '', 'comment.yar': '/* rule none { condition: true } */\n' });
  expectCode(() => engine({ rulesDir: hollow }), 'EYARA_NO_RULES', 'declare no rule');
});

test('several files: sorted, one rule set, later file may use an earlier rule; .yara and .YAR count', async () => {
  const dir = await rulesDir({
    'b.yara': 'rule uses_a { condition: base and filesize > 3 }\n',
    'a.YAR': 'private rule base { strings: $m = "MARKER" condition: $m }\n',
  });
  const e = engine({ rulesDir: dir });
  assert.deepEqual(e.rules.files, [join(dir, 'a.YAR'), join(dir, 'b.yara')]);
  assert.equal(e.rules.ruleCount, 2);
  assert.deepEqual(await scan(e, Buffer.from('xx MARKER xx')), { status: 'infected', names: ['YARA.uses_a'] });
  assert.deepEqual(await scan(e, Buffer.from('xx marker xx')), { status: 'clean' });
});

test('names: meta name else YARA.<identifier>, each name once', async () => {
  const dir = await rulesDir({
    'n.yar': [
      'rule one { meta: name = "Same.Name" strings: $a = "needle" condition: $a }',
      'rule two { meta: name = "Same.Name" strings: $a = "needle" condition: $a }',
      'rule three { meta: name = 3 strings: $a = "needle" condition: $a }',
      'rule four { strings: $a = "needle" condition: $a }',
      '',
    ].join('\n'),
  });
  const r = await scan(engine({ rulesDir: dir }), Buffer.from('a needle here'));
  assert.deepEqual(r, { status: 'infected', names: ['Same.Name', 'YARA.three', 'YARA.four'] });
});

test('over maxScanBytes: ESIZE_LIMIT, and the bytes are never read', async () => {
  const e = engine({ maxScanBytes: 1000 });
  let reads = 0;
  const inner = bufferSource(eicar());
  const big: ScanSource = { size: 1001, stream: () => inner.stream(), buffer: async () => (reads++, inner.buffer()) };
  const r = await e.scan({ id: '2', kind: 'part', source: big }, new AbortController().signal);
  expectError(r, 'ESIZE_LIMIT');
  assert.equal(reads, 0);
  // A source that is larger than it claims is not trusted either.
  const liar: ScanSource = { size: 10, stream: () => inner.stream(), buffer: async () => Buffer.concat([eicar(), Buffer.alloc(1000)]) };
  expectError(await e.scan({ id: '3', kind: 'part', source: liar }, new AbortController().signal), 'ESIZE_LIMIT');
  // At the limit exactly it is scanned.
  assert.equal((await scan(engine({ maxScanBytes: eicar().length }), eicar())).status, 'infected');
});

test('a source that fails to read: EIO', async () => {
  const broken: ScanSource = {
    size: 5,
    stream: () => bufferSource(Buffer.alloc(5)).stream(),
    buffer: async () => {
      throw Object.assign(new Error('gone'), { code: 'ENOENT' });
    },
  };
  expectError(await engine().scan({ id: 'raw', kind: 'raw', source: broken }, new AbortController().signal), 'EIO');
  const throwsNow: ScanSource = { ...broken, buffer: () => { throw new Error('sync'); } };
  expectError(await engine().scan({ id: '4', kind: 'part', source: throwsNow }, new AbortController().signal), 'EIO');
});

test('abort: already aborted, and during a running native scan, answers EABORTED at once', async () => {
  const e = engine({ rulesDir: await rulesDir({ 'slow.yar': SLOW_RULE }) });
  expectError(await scan(e, eicar(), AbortSignal.abort()), 'EABORTED');
  const ac = new AbortController();
  const t0 = Date.now();
  setTimeout(() => ac.abort(), 100);
  expectError(await scan(e, SLOW_INPUT, ac.signal), 'EABORTED');
  assert.ok(Date.now() - t0 < 1500, `answered after ${Date.now() - t0} ms`);
  // The retired worker is replaced: the engine still scans.
  assert.deepEqual(await scan(e, Buffer.from('axc')), { status: 'infected', names: ['YARA.slow'] });
});

test('deadline: a scan running past scanTimeoutMs answers ESCAN_TIMEOUT on time, main thread free', async () => {
  const e = engine({ rulesDir: await rulesDir({ 'slow.yar': SLOW_RULE }), scanTimeoutMs: 200 });
  let ticks = 0;
  const tick = setInterval(() => ticks++, 10);
  const t0 = Date.now();
  const r = await scan(e, SLOW_INPUT);
  const ms = Date.now() - t0;
  clearInterval(tick);
  expectError(r, 'ESCAN_TIMEOUT');
  assert.ok(ms >= 190 && ms < 1500, `answered after ${ms} ms`);
  assert.ok(ticks >= 5, `event loop ticked ${ticks} times during the scan`);
});

test('many scans at once: each gets its own answer', async () => {
  const e = engine();
  const bufs = Array.from({ length: 12 }, (_, i) => (i % 3 === 0 ? Buffer.concat([Buffer.from(`#${i} `), eicar()]) : Buffer.from(`clean ${i}`)));
  const results = await Promise.all(bufs.map((b) => scan(e, b)));
  results.forEach((r, i) => assert.equal(r.status, i % 3 === 0 ? 'infected' : 'clean', `item ${i}`));
});

test('version and label; a closed engine does not report clean', async () => {
  const dir = await rulesDir({ 'one.yar': 'rule only { condition: false }\n' });
  const e = createYaraEngine({ rulesDir: dir, maxScanBytes: 100, scanTimeoutMs: 1000 });
  assert.equal(e.label, 'yara');
  assert.match(await e.version(new AbortController().signal), /^YARA-X \(@litko\/yara-x \d+\.\d+\.\d+\), 1 rule from /);
  assert.ok((await e.version(new AbortController().signal)).endsWith(dir));
  assert.match(await engine().version(new AbortController().signal), /, \d+ rules? from .*rules$/);
  await e.close();
  expectError(await scan(e, Buffer.from('x')), 'ESCANNER');
});

test('bad options are refused up front', () => {
  assert.throws(() => createYaraEngine({ rulesDir: SHIPPED_RULES, maxScanBytes: 0, scanTimeoutMs: 1000 }), /maxScanBytes/);
  assert.throws(() => createYaraEngine({ rulesDir: SHIPPED_RULES, maxScanBytes: 10, scanTimeoutMs: NaN }), /scanTimeoutMs/);
});

test('binding missing: EYARA_UNAVAILABLE names the package and why', () => {
  expectCode(() => loadBindingFrom('@litko/yara-x-no-such-platform/yara-x.node'), 'EYARA_UNAVAILABLE', BINDING_PACKAGE, 'not installed');
});

test('countRules: comments, strings and regexes do not count; names; completeness', () => {
  const src = [
    'import "math"',
    '// rule commented { condition: true }',
    '/* rule block { } */',
    'private rule a : tag1 { meta: d = "rule } {" strings: $r = /rule \\/ {/ $h = { 4D 5A [2-4] ( 90 | 91 ) } condition: $r or $h }',
    'global rule b { condition: filesize / 2 > 1 and "x" matches /}rule{/ }',
    'rule c { condition: a }',
  ].join('\n');
  assert.deepEqual(countRules(src), { rules: 3, names: ['a', 'b', 'c'], complete: true });
  assert.equal(countRules('rule a { condition: true }\n/* open').complete, false);
  assert.equal(countRules('rule a { condition: true').complete, false);
  assert.deepEqual(countRules(''), { rules: 0, names: [], complete: true });
});

const POOL_RULE = 'rule pool_marker { strings: $a = "POOL-MARKER-7f3a" condition: $a }';
const poolInit = { source: POOL_RULE, compileOptions: { enableIncludes: false }, maxMatchesPerPattern: 100, nativeTimeoutMs: 30_000 };
const marked = (size: number, seed: number): Buffer => {
  const b = Buffer.alloc(size, seed);
  b.write('POOL-MARKER-7f3a', size >> 1, 'latin1');
  return b;
};

test('scan threads: a thread idle for idleMs ends, and the next job starts a fresh one', async () => {
  const pool = new ScanPool(poolInit, 2, 200);
  try {
    const first = await pool.run(marked(256 * 1024, 1), AbortSignal.timeout(30_000));
    assert.deepEqual(first.kind === 'done' ? first.hits.map((h) => h.rule) : first, ['pool_marker']);
    assert.equal(pool.threadCount, 1, 'kept while work may come');
    await waitUntil(() => pool.threadCount === 0, 5000);
    const again = await pool.run(marked(256 * 1024, 2), AbortSignal.timeout(30_000));
    assert.deepEqual(again.kind === 'done' ? again.hits.map((h) => h.rule) : again, ['pool_marker'], 'a new thread scans as the first did');
    const clean = await pool.run(Buffer.alloc(256 * 1024, 3), AbortSignal.timeout(30_000));
    assert.deepEqual(clean.kind === 'done' ? clean.hits : clean, [], 'what the last scan held does not leak into the next');
  } finally {
    await pool.close();
  }
});

test('scan threads: bytes in flight (buffers, and files by their size) are capped: jobs past the cap wait their turn, a job larger than the cap runs alone, every job gets its own answer', async () => {
  const cap = 1024 * 1024;
  const pool = new ScanPool(poolInit, 4, 5000, cap);
  try {
    const jobs = [0, 1, 2, 3].map((i) => pool.run(i % 2 === 0 ? marked(600 * 1024, i) : Buffer.alloc(600 * 1024, i), AbortSignal.timeout(30_000)));
    assert.equal(pool.threadCount, 1, 'two jobs of 600 KiB do not fit under 1 MiB: one thread at work');
    const big = pool.run(marked(3 * cap, 9), AbortSignal.timeout(30_000));
    const outcomes = await Promise.all([...jobs, big]);
    assert.deepEqual(outcomes.map((o) => (o.kind === 'done' ? o.hits.length : o.kind)), [1, 0, 1, 0, 1]);
    // a file counts by its size: the thread holds it whole while it scans it
    const file = fileURLToPath(import.meta.url);
    const files = [0, 1, 2].map(() => pool.run({ path: file, size: 600 * 1024 }, AbortSignal.timeout(30_000)));
    assert.equal(pool.threadCount, 1, 'two files of 600 KiB do not fit under 1 MiB either');
    const small = [0, 1, 2].map(() => pool.run({ path: file, size: 1024 }, AbortSignal.timeout(30_000)));
    for (const o of await Promise.all([...files, ...small])) assert.equal(o.kind, 'done');
  } finally {
    await pool.close();
  }
  const fresh = new ScanPool(poolInit, 4, 5000, cap);
  try {
    const together = [0, 1, 2].map(() => fresh.run({ path: fileURLToPath(import.meta.url), size: 1024 }, AbortSignal.timeout(30_000)));
    assert.equal(fresh.threadCount, 3, 'small jobs run side by side');
    for (const o of await Promise.all(together)) assert.equal(o.kind, 'done');
  } finally {
    await fresh.close();
  }
});

async function waitUntil(cond: () => boolean, ms: number): Promise<void> {
  const until = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > until) assert.fail('condition not met in time');
    await new Promise((r) => setTimeout(r, 20));
  }
}
