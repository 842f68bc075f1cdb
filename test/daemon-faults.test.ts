/**
 * The daemon under engine faults a real clamd will not produce on demand (a scanner that never
 * answers): request deadline, the concurrency bound, SIGTERM with requests in flight, and
 * reload on SIGHUP keeping the old config when the new one is bad.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { eicar } from './helpers/eicar.js';
import { waitLog } from './helpers/daemon-env.js';
import { startFakeClamd } from './helpers/fake-clamd.js';
import { startDaemon, talk, waitFor, exists } from './helpers/avfilter-proc.js';

const CONTROL = 'ss@example.test\nfdns; x ([127.0.0.1])\nM00AB.CD.EF\nra@example.test\nR\nN\n';
/** Single part: for clamd (which parses mail) one item, the raw message. */
const singlePart = (body: Buffer) => `Received: x\nSubject: t\nContent-Transfer-Encoding: base64\n\n${body.toString('base64')}\n`;

function setup(config: string) {
  const dir = mkdtempSync(join(tmpdir(), 'avf-faults-'));
  for (const d of ['allfilters', 'filters', 'spool']) mkdirSync(join(dir, d));
  const cfg = join(dir, 'avfilter.toml');
  const write = (extra: string) => writeFileSync(cfg, [
    `socket_dir_all = "${dir}/allfilters"`, `socket_dir_optional = "${dir}/filters"`,
    `pid_file = "${dir}/avfilter.pid"`, `tmpdir = "${dir}/work"`, `spool_dirs = ["${dir}/spool"]`, extra, '',
  ].join('\n'));
  write(config);
  let n = 0;
  const request = (data: string) => {
    n++;
    writeFileSync(join(dir, 'spool', `D${n}`), data);
    writeFileSync(join(dir, 'spool', `C${n}`), CONTROL);
    return `${join(dir, 'spool', `D${n}`)}\n${join(dir, 'spool', `C${n}`)}\n\n`;
  };
  return { dir, cfg, write, sock: join(dir, 'allfilters', 'avfilter'), request };
}

test('a scanner that never answers: 451 at request_timeout, never a hang', async () => {
  const fake = await startFakeClamd('hang', { transport: 'unix' });
  const s = setup(`request_timeout = 1\n[[engine]]\ntype = "clamd"\nservers = ["${fake.server}"]\nscan_timeout = 600`);
  const d = startDaemon(['-f', s.cfg, '--foreground']);
  try {
    await waitFor(() => exists(s.sock), 15_000, `socket\n${d.stderr()}`);
    const t0 = Date.now();
    const r = await talk(s.sock, s.request(singlePart(Buffer.from('hello'))));
    assert.match(r.reply, /^451 /);
    assert.ok(Date.now() - t0 < 5000, `answered after ${Date.now() - t0} ms`);
    // one line for the message, with its queue id and sender: the deadline knows the envelope
    await waitLog(d, /id=00AB\.CD\.EF from=<s@example\.test> .*verdict=tempfail .*reply=451 code=ETIMEOUT/);
  } finally {
    d.child.kill('SIGTERM');
    await d.exited;
    await fake.stop();
  }
});

test('max_connections bounds the scans; SIGTERM answers every request 451 and exits 0', async () => {
  const fake = await startFakeClamd('hang', { transport: 'unix' });
  const s = setup(`max_connections = 2\nshutdown_timeout = 1\n[[engine]]\ntype = "clamd"\nservers = ["${fake.server}"]\nscan_timeout = 600`);
  const d = startDaemon(['-f', s.cfg, '--foreground']);
  try {
    await waitFor(() => exists(s.sock), 15_000, `socket\n${d.stderr()}`);
    const replies = Array.from({ length: 4 }, () => talk(s.sock, s.request(singlePart(Buffer.from('x')))));
    await waitFor(() => fake.instreams >= 2, 10_000, 'two messages scanning');
    await new Promise((r) => setTimeout(r, 1000));
    // each message is one item for clamd (its one part: raw_message = "parts" leaves the raw
    // message of a message read one way to it)
    assert.equal(fake.instreams, 2, 'two messages at a time, the others wait');
    d.child.kill('SIGTERM');
    for (const r of await Promise.all(replies)) assert.match(r.reply, /^451 .*shutting down/);
    assert.equal(await d.exited, 0);
    assert.equal(exists(s.sock), false);
    // every worker says how many it answered so
    const unfinished = [...d.stderr().matchAll(/event=drained worker=\d+ unfinished=(\d+)/g)].reduce((n, m) => n + Number(m[1]), 0);
    assert.equal(unfinished, 4, d.stderr());
    assert.match(d.stderr(), /event=stopped reason=SIGTERM/);
  } finally {
    d.child.kill('SIGKILL');
    await fake.stop();
  }
});

test('SIGHUP reloads the config; a bad config is reported and the old one kept', async () => {
  const s = setup('[action]\ninfected = "reject"');
  const d = startDaemon(['-f', s.cfg, '--foreground']);
  try {
    await waitFor(() => exists(s.sock), 15_000, `socket\n${d.stderr()}`);
    const virus = singlePart(eicar());
    assert.match((await talk(s.sock, s.request(virus))).reply, /^550 /);
    s.write('[action]\ninfected = "tempfail"');
    d.child.kill('SIGHUP');
    await waitFor(() => /event=reloaded/.test(d.stderr()), 10_000, 'reload');
    assert.match((await talk(s.sock, s.request(virus))).reply, /^451 .*virus found/);
    s.write('[action]\ninfected = "explode"');
    d.child.kill('SIGHUP');
    await waitFor(() => /event=reload-failed/.test(d.stderr()), 10_000, 'failed reload');
    await waitLog(d, /event=reload-failed .*action\.infected/);
    assert.match((await talk(s.sock, s.request(virus))).reply, /^451 .*virus found/, 'old config kept');
  } finally {
    d.child.kill('SIGTERM');
  }
  assert.equal(await d.exited, 0);
});
