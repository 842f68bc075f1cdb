/**
 * The benchmark harness (bench/) checked quickly, no Courier: the message mix is the committed
 * one (same bytes for the same seed, the 60/30/10 split, attachment sizes), CPU of a process
 * tree keeps the time of a reaped grandchild, the SMTP load flags a wrong verdict, and
 * `npm run bench -- --only filter --quick` runs to a report with every verdict right. No speed
 * is asserted: figures belong to `npm run bench`.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { createServer, type Socket } from 'node:net';
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { generateMix } from '../bench/mix.js';
import { treeCpuMs } from '../bench/proc.js';
import { smtpLoad } from '../bench/smtp-load.js';
import { median, percentile } from '../bench/stats.js';
import { eicar } from './helpers/eicar.js';

const RUN_JS = fileURLToPath(new URL('../bench/run.js', import.meta.url));

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

test('median and nearest-rank percentile', () => {
  assert.equal(median([5, 1, 3]), 3);
  assert.equal(median([4, 1, 3, 2]), 2.5);
  assert.equal(percentile([1, 2, 3, 4, 5, 6, 7, 8, 9, 10], 95), 10);
  assert.equal(percentile([1, 2, 3, 4, 5, 6, 7, 8, 9, 10], 50), 5);
  assert.ok(Number.isNaN(percentile([], 50)));
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
          if (line === '.') { inData = false; s.write('250 Ok\r\n'); }
        } else if (/^DATA/i.test(line)) { inData = true; s.write('354 go\r\n'); }
        else if (/^QUIT/i.test(line)) { s.end('221 bye\r\n'); }
        else s.write('250 ok\r\n');
      }
    });
    s.on('error', () => undefined);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
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
    assert.match(md, /\| 4 \| avfilter \(clamd engine\) \| \d+\.\d \| \d\.\d\d \|/);
    assert.match(md, /\| 4 \| clamd alone \(zINSTREAM\) \| \d+\.\d \| 1\.00 \|/);
    assert.match(md, /0 \(warm-up\)/);
    assert.match(r.stdout, /filter alone:/);
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
});
