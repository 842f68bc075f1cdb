/**
 * The benchmark harness (bench/) checked quickly, no Courier: the message mix is the committed
 * one (same bytes for the same seed, the 60/30/10 split, attachment sizes), CPU of a process
 * tree keeps the time of a reaped grandchild, the SMTP load flags a wrong verdict (and names a
 * reply that is Courier's own as Courier's), the
 * headline's verdict rules (met / missed / inside the noise) judge intervals, not medians, and
 * `npm run bench -- --only filter --quick` runs to a report with every verdict right and its
 * headline first. No speed is asserted: figures belong to `npm run bench`.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { createServer, type Server, type Socket } from 'node:net';
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { AVFILTER_MODES } from '../bench/avfilter-modes.js';
import { courierModes } from '../bench/courier-modes.js';
import { courierReport } from '../bench/courier-report.js';
import { roundOrder } from '../bench/courier-section.js';
import { CONCURRENCIES, FIRST_PASS_SESSIONS, type CourierRun } from '../bench/courier-run.js';
import { filterDaemonTop } from '../bench/filter-section.js';
import { generateMix } from '../bench/mix.js';
import { parseConfig } from '../src/config/load.js';
import { treeCpuMs } from '../bench/proc.js';
import { COURIER_OWN_CAUSE, replyCause } from '../bench/courier-replies.js';
import { smtpLoad } from '../bench/smtp-load.js';
import { median, percentile } from '../bench/stats.js';
import { atLeast, atMost, fmtSpread, relativeRange, spread, versus } from '../bench/verdict.js';
import { eicar } from './helpers/eicar.js';

const RUN_JS = fileURLToPath(new URL('../bench/run.js', import.meta.url));

/** An SMTP server on loopback that accepts every command and answers each message's final "." with `reply()`. */
async function fakeSmtp(reply: () => string): Promise<Server> {
  const server = createServer((s: Socket) => {
    let inData = false;
    let buf = '';
    s.write('220 fake ESMTP\r\n');
    s.on('data', (d: Buffer) => {
      buf += d.toString('latin1');
      for (let nl = buf.indexOf('\r\n'); nl >= 0; nl = buf.indexOf('\r\n')) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 2);
        if (inData) {
          if (line === '.') { inData = false; s.write(`${reply()}\r\n`); }
        } else if (/^DATA/i.test(line)) { inData = true; s.write('354 go\r\n'); }
        else if (/^QUIT/i.test(line)) { s.end('221 bye\r\n'); }
        else s.write('250 ok\r\n');
      }
    });
    s.on('error', () => undefined);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return server;
}

test('the mix: same bytes for the same seed, 60/30/10, attachments of 50-200 KB, EICAR only in the eicar kind', () => {
  const a = generateMix(300);
  const b = generateMix(300);
  assert.deepEqual(a.map((m) => m.raw.toString('base64')), b.map((m) => m.raw.toString('base64')));
  const count = (k: string): number => a.filter((m) => m.kind === k).length;
  assert.deepEqual([count('small'), count('attachment'), count('eicar')], [180, 90, 30]);
  const eicarB64 = eicar().toString('base64').slice(0, 60);
  for (const m of a) {
    assert.equal(m.raw.includes(eicarB64), m.kind === 'eicar', `message ${m.index} (${m.kind})`);
    assert.equal(m.infected, m.kind === 'eicar');
    if (m.kind === 'attachment') {
      const b64 = /\r\n\r\n([A-Za-z0-9+/=\r\n]{60000,})\r\n\r\n--/.exec(m.raw.toString('latin1'))?.[1];
      assert.ok(b64, `no base64 attachment in message ${m.index}`);
      const size = Buffer.from(b64.replace(/\r\n/g, ''), 'base64').length;
      assert.ok(size >= 50 * 1024 && size <= 200 * 1024, `attachment of ${size} bytes`);
    }
  }
  assert.notDeepEqual(generateMix(300, 1).map((m) => m.kind), a.map((m) => m.kind), 'another seed gives another order');
});

test('Courier section: the order of the modes is a Williams design: over as many rounds as modes each runs at every place, and each runs right after every other equally often', () => {
  const places = (modes: string[]): void => {
    for (let place = 0; place < modes.length; place++) {
      const at = Array.from({ length: modes.length }, (_, r) => roundOrder(modes, r + 1)[place]);
      assert.deepEqual([...at].sort(), [...modes].sort(), `${modes.length} modes, place ${place}: ${at.join(' ')}`);
    }
  };
  // every (before, after) pair of neighbours over `rounds` measured rounds, counted
  const followers = (modes: string[], rounds: number): Map<string, number> => {
    const seen = new Map<string, number>();
    for (let r = 1; r <= rounds; r++) {
      const o = roundOrder(modes, r);
      for (let i = 1; i < o.length; i++) seen.set(`${o[i - 1]}>${o[i]}`, (seen.get(`${o[i - 1]}>${o[i]}`) ?? 0) + 1);
    }
    return seen;
  };
  for (let n = 2; n <= 7; n++) {
    const modes = Array.from({ length: n }, (_, i) => `m${i}`);
    assert.deepEqual(roundOrder(modes, 0), modes, 'the warm-up runs in the given order');
    places(modes);
    const rows = n % 2 === 0 ? n : 2 * n;
    const seen = followers(modes, rows);
    assert.equal(seen.size, n * (n - 1), `${n} modes: every ordered pair of modes are neighbours in ${rows} rounds`);
    for (const [pair, count] of seen) assert.equal(count, rows === n ? 1 : 2, `${n} modes: ${pair}`);
    for (let r = 0; r < 3 * rows; r++) assert.deepEqual([...roundOrder(modes, r)].sort(), [...modes].sort(), 'every mode once a round');
  }
  // what turning the list by one did: "clamd" ran right after "before" in 4 of 5 rounds
  const five = ['alone', 'before', 'clamd', 'parts', 'peer'];
  const after = followers(five, 5);
  assert.ok((after.get('before>clamd') ?? 0) <= 2, `before>clamd in ${after.get('before>clamd')} of 5 rounds`);
  assert.deepEqual(roundOrder([], 3), []);
});

test('median and nearest-rank percentile', () => {
  assert.equal(median([5, 1, 3]), 3);
  assert.equal(median([4, 1, 3, 2]), 2.5);
  assert.equal(percentile([1, 2, 3, 4, 5, 6, 7, 8, 9, 10], 95), 10);
  assert.equal(percentile([1, 2, 3, 4, 5, 6, 7, 8, 9, 10], 50), 5);
  assert.ok(Number.isNaN(percentile([], 50)));
});

test('verdicts: a target is met or missed only when every round (and the noise band) is on one side', () => {
  // every round below 0.5: met; every round above: missed; rounds on both sides: inside the noise
  assert.equal(atMost([0.41, 0.45, 0.48], 0.5).verdict, 'met');
  assert.equal(atMost([0.52, 0.61, 0.55], 0.5).verdict, 'missed');
  assert.equal(atMost([0.45, 0.47, 0.56], 0.5).verdict, 'inside the noise', 'the median meets it, one round does not');
  // an outside noise estimate widens the band around the median: 1.15 with ±0.1 straddles 1.10
  assert.equal(atLeast([1.14, 1.15, 1.16], 1.1).verdict, 'met');
  assert.equal(atLeast([1.14, 1.15, 1.16], 1.1, 0.1).verdict, 'inside the noise');
  assert.equal(atLeast([0.8, 0.83, 0.85], 1.1, 0.1).verdict, 'missed');
  const j = atLeast([1.14, 1.15, 1.16], 1.1, 0.1);
  assert.ok(Math.abs(j.lo - 1.05) < 1e-9 && Math.abs(j.hi - 1.25) < 1e-9, `interval ${j.lo}..${j.hi}`);
  // one round: a verdict, saying it has no spread; no round: no data; NaN rounds are ignored
  assert.match(atMost([0.4], 0.5).text, /^met \(1 round/);
  assert.equal(atMost([], 0.5).verdict, 'no data');
  assert.equal(atMost([NaN, 0.4, 0.45], 0.5).rounds.n, 2);
  assert.equal(versus([1.05, 1.08], 1, 0.2), 'inside the noise');
  assert.equal(versus([0.55, 0.6], 1, 0.1), 'lower');
  assert.equal(versus([0.6], 1), 'one round', 'one value and no noise estimate: nothing to judge by');
  assert.ok(Math.abs(relativeRange([100, 120, 110]) - 20 / 110) < 1e-9);
  assert.ok(Number.isNaN(relativeRange([100])));
  assert.equal(fmtSpread(spread([0.7, 0.5, 0.6])), '0.60 (0.50–0.70)');
  assert.equal(fmtSpread(spread([-4, 3.4, -0.3]), 1), '-0.3 (-4.0 to 3.4)');
});

test('CPU of a process tree includes a grandchild that exited and was reaped', async () => {
  // parent: starts a child that burns ~300 ms of CPU and exits, then waits to be told to end
  const burn = 'const t=process.cpuUsage();let x=0;while(process.cpuUsage(t).user<300000)x++;';
  const parentJs = `const c=require('child_process').spawn(process.execPath,['-e',${JSON.stringify(burn)}]);c.on('exit',()=>console.log('done'));setInterval(()=>{},1000);`;
  const parent = spawn(process.execPath, ['-e', parentJs], { stdio: ['ignore', 'pipe', 'inherit'] });
  try {
    const before = treeCpuMs([parent.pid!]);
    await new Promise<void>((resolve) => parent.stdout!.on('data', (d: Buffer) => d.toString().includes('done') && resolve()));
    await new Promise((r) => setTimeout(r, 100));
    const after = treeCpuMs([parent.pid!]);
    assert.ok(after - before >= 250, `the tree's CPU grew by ${after - before} ms only`);
  } finally {
    parent.kill('SIGKILL');
  }
});

test('the SMTP load flags a 250 for an infected message as a wrong verdict and times DATA→reply', async () => {
  // a server that accepts everything, as Courier with a broken filter would
  const server = await fakeSmtp(() => '250 Ok');
  try {
    const port = (server.address() as { port: number }).port;
    const messages = generateMix(10);
    const r = await smtpLoad({ port, to: 'a@b.test', messages, concurrency: 3, rejectInfected: true, replyTimeoutMs: 10_000 });
    assert.deepEqual(r.outcomes.map((o) => o.wrong), messages.map((m) => m.infected));
    assert.ok(r.outcomes.every((o) => o.code === 250 && o.latencyMs !== undefined && o.latencyMs >= 0));
    const ok = await smtpLoad({ port, to: 'a@b.test', messages, concurrency: 3, rejectInfected: false, replyTimeoutMs: 10_000 });
    assert.deepEqual(ok.outcomes.filter((o) => o.wrong || o.error), []);
  } finally {
    server.close();
  }
});

test('`bench --only filter --quick` writes a report where every verdict was right (real clamd, avfilter --foreground)', () => {
  const out = mkdtempSync(join(tmpdir(), 'avf-bench-smoke-'));
  try {
    const r = spawnSync(process.execPath, [RUN_JS, '--only', 'filter', '--quick', '--messages', '12', '--out', out], { encoding: 'utf8', timeout: 120_000 });
    assert.equal(r.status, 0, `exit ${r.status}\n${r.stdout}\n${r.stderr}`);
    const files = readdirSync(out).filter((f) => f.endsWith('.md'));
    assert.equal(files.length, 1);
    const md = readFileSync(join(out, files[0]!), 'utf8');
    assert.doesNotMatch(md, /PROBLEM|INVALID/);
    // the headline comes before the machine and the section's tables, with the routing comparison
    assert.ok(md.indexOf('## Headline') >= 0 && md.indexOf('## Headline') < md.indexOf('## Machine'), 'headline first');
    assert.ok(md.indexOf('### Filter alone: clamd routing') < md.indexOf('## Filter alone (no Courier)'));
    // every avfilter mode with the clamd engine: its CPU per message in the routing table and its throughput
    const esc = (x: string): string => x.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
    // (an optional mode runs only when --modes names it; one that writes into the data files
    // runs in the Courier section only)
    const clamdModes = AVFILTER_MODES.filter((m) => m.engine === 'clamd' && m.optional !== true && m.rewrites !== true);
    assert.ok(AVFILTER_MODES.some((m) => m.id === 'clamd-headers' && m.rewrites === true), 'the [headers] mode is there (for the Courier section)');
    assert.ok(clamdModes.some((m) => m.role === 'default'), 'the default clamd mode runs');
    for (const v of ['mail', 'data', 'text', 'parts']) assert.ok(clamdModes.some((m) => m.routing.startsWith(`raw_message = "${v}"`)), `raw as ${v} is compared`);
    for (const m of clamdModes) {
      assert.match(md, new RegExp(`\\| ${esc(m.label)} \\| ${esc(m.routing)} \\| \\d+\\.\\d\\d \\| \\d+\\.\\d\\d \\|`));
      assert.match(md, new RegExp(`\\| 4 \\| ${esc(m.label)} \\| \\d+\\.\\d \\| \\d\\.\\d\\d \\|`));
    }
    assert.match(md, /\| 4 \| clamd alone \(zINSTREAM\) \| \d+\.\d \| 1\.00 \|/);
    assert.match(md, /0 \(warm-up\)/);
    // the default mode and clamd alone at Courier's pace, each against itself back to back
    const paced = md.slice(md.indexOf("### At Courier's pace"));
    assert.ok(md.includes("### At Courier's pace"), 'the paced runs are reported');
    const def = clamdModes.find((m) => m.role === 'default')!;
    assert.match(paced, new RegExp(`\\| ${esc(def.label)} \\| avfilter \\| \\d+\\.\\d\\d \\| \\d+\\.\\d\\d \\| \\d+\\.\\d\\d \\|`));
    assert.match(paced, /\| clamd alone \(zINSTREAM\) \| clamd \| \d+\.\d\d \| \d+\.\d\d \| \d+\.\d\d \|/);
    assert.match(md, /\| 1 \(paced\) \| /);
    assert.match(r.stdout, /^HEADLINE\n/);
    assert.match(r.stdout, /filter alone \(medians\):/);
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
});

test('the filter section\'s daemons never replace an idle worker (a mode that waited 15 s between its runs was measured on a cold worker)', () => {
  const defaults = parseConfig('', 'defaults.toml');
  assert.ok(defaults.worker_idle_memory_limit > 0, 'idle workers are replaced by default');
  for (const sock of [undefined, '/tmp/m.sock']) {
    const c = parseConfig(filterDaemonTop(sock).join('\n'), 'bench.toml');
    assert.equal(c.worker_idle_memory_limit, 0);
  }
});

test("Courier's own 432 (no answer from submit) is named as Courier's in the problem line and in the headline's count of left-out runs; a filter's 432 is not", async () => {
  // a server that answers the final "." the way Courier's SMTP server can: by submit's failure or a filter's
  const replies = ['432 Service temporarily unavailable.', '432 Mail filters temporarily unavailable.', '250 Ok'];
  let n = 0;
  const server = await fakeSmtp(() => replies[n++ % replies.length]!);
  let errors: string[];
  try {
    const port = (server.address() as { port: number }).port;
    const clean = generateMix(40).filter((m) => !m.infected).slice(0, 3);
    const r = await smtpLoad({ port, to: 'a@b.test', messages: clean, concurrency: 1, rejectInfected: true, replyTimeoutMs: 10_000 });
    errors = r.outcomes.map((o) => o.error ?? '');
  } finally {
    server.close();
  }
  assert.ok(errors[0]!.includes(COURIER_OWN_CAUSE), errors[0]);
  assert.ok(errors[1]!.length > 0 && !errors[1]!.includes(COURIER_OWN_CAUSE), errors[1]);
  assert.equal(errors[2], '');
  assert.equal(replyCause(451, 'Service temporarily unavailable.'), undefined);

  // the headline: a measured run left out only for Courier's own reply, and one for another reason
  const modes = courierModes([AVFILTER_MODES.find((m) => m.role === 'default')!]);
  const run = (mode: string, round: number, problems: string[]): CourierRun => ({
    mode, sessions: 4, round, messages: 10, msgPerS: 50, p50: 5, p95: 9,
    kind: { small: { p50: 5, p95: 9 }, attachment: { p50: 5, p95: 9 }, eicar: { p50: 5, p95: 9 } },
    cpu: { filter: 2, clamd: 1, courier: 10 }, errors: 0, timeouts: 0, wrong: problems.length, problems,
  });
  const ctx = { quick: true, rounds: 2, messages: 10, warm: 0, clamd: async () => { throw new Error('not used'); }, asset: () => 'chart.svg', modes: undefined, courierLock: undefined, log: () => undefined };
  const headline = (problems: string[][]): string => {
    const runs = [1, 2].flatMap((round) => modes.map((m, i) => run(m.id, round, round === 2 ? problems[i] ?? [] : [])));
    return courierReport(ctx, modes, runs, generateMix(10), [], []).headline!.summary[0]!;
  };
  assert.match(headline([[], [errors[0]!]]), /1 invalid run\(s\) left out \(each only for Courier's own 432/);
  assert.match(headline([[], [errors[0]!], [errors[1]!]]), /2 invalid run\(s\) left out \(1 of them only for Courier's own 432/);
  assert.doesNotMatch(headline([[], [errors[1]!]]), /Courier's own/);
  // a run with Courier's 432 and a filter's failure is not left out for Courier's reply only
  assert.doesNotMatch(headline([[], [errors[0]!, errors[1]!]]), /Courier's own/);
});

test('Courier report: the first pass and the warm-up after a start are reported on their own, never in the headline or the measured tables', () => {
  const modes = courierModes([AVFILTER_MODES.find((m) => m.role === 'default')!]);
  const av = modes[1]!.id;
  const mix = generateMix(10);
  const run = (mode: string, sessions: number, round: number, filter: number, first?: boolean, warm?: number): CourierRun => ({
    mode, sessions, round, messages: 10, msgPerS: 50, p50: 5, p95: 9,
    kind: { small: { p50: 5, p95: 9 }, attachment: { p50: 5, p95: 9 }, eicar: { p50: 5, p95: 9 } },
    cpu: { filter, clamd: 1, courier: 10 }, errors: 0, timeouts: 0, wrong: 0, problems: [], ...(first ? { first } : {}), ...(warm ? { warm } : {}),
  });
  const runs: CourierRun[] = [];
  for (let round = 0; round <= 2; round++) {
    for (const m of modes) {
      const [cold, warming, warm] = m.kind === 'peer' ? [4, [4, 4], 4] : m.kind === 'alone' ? [0, [], 0] : [8, [6, 4], 2];
      runs.push(run(m.id, FIRST_PASS_SESSIONS, round, cold, true));
      warming.forEach((w, i) => runs.push(run(m.id, FIRST_PASS_SESSIONS, round, w, false, i + 1)));
      for (const s of CONCURRENCIES) runs.push(run(m.id, s, round, warm));
    }
  }
  const ctx = { quick: true, rounds: 2, messages: 10, warm: 20, clamd: async () => { throw new Error('not used'); }, asset: () => 'chart.svg', modes: undefined, courierLock: undefined, log: () => undefined };
  const report = courierReport(ctx, modes, runs, mix, [], []);
  // the headline's own-CPU ratio is the warm one (2 ÷ 4), not the first pass's (8 ÷ 4) or the warm-up's (5 ÷ 4)
  const own = report.headline!.markdown.split('\n').find((l) => l.startsWith("| own CPU/msg ÷ Perl filter's |"));
  assert.match(own ?? '', /\| 0\.50 \| ≤ 0\.50 \| \*\*met\*\* \|/, own);
  const coldTable = report.markdown.slice(report.markdown.indexOf('### The first pass after each start (cold)'));
  assert.ok(coldTable.length > 0 && report.markdown.includes('### The first pass after each start (cold)'));
  const avRow = coldTable.split('\n').find((l) => l.startsWith(`| ${modes[1]!.label} |`));
  // first pass 8 (÷ peer's 4: 2.00), warm-up (6 + 4) / 2 = 5 (÷ peer's 4: 1.25), later 2
  assert.match(avRow ?? '', /\| 8\.00 \| 1\.00 \| 2\.00 \| 5\.00 \| 1\.25 \| 2\.00 \|/, avRow);
  assert.ok(report.markdown.includes(`| ${FIRST_PASS_SESSIONS} (first pass) | ${modes[1]!.label} | 1 |`), 'the raw table marks the first passes');
  assert.ok(report.markdown.includes(`| ${FIRST_PASS_SESSIONS} (warm-up 2) | ${modes[1]!.label} | 1 |`), 'the raw table marks the warm-up passes');
  assert.match(report.markdown, /then 20 messages more as its warm-up/);
  // the measured 4-session figure is the measured run's alone (2), not mixed with the warm-up's
  assert.match(report.markdown, new RegExp(`\\| 4 \\| ${modes[1]!.label.replace(/[()]/g, '\\$&')} \\| 2\\.00 \\|`));
  assert.equal(runs.filter((r) => r.mode === av && r.first === true).length, 3);
});
