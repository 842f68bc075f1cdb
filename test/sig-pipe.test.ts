/**
 * avfilter_sig's pipe, both ends, without a daemon: the daemon's side never blocks, never
 * creates, never follows a symlink and writes only into a FIFO; the reader's side makes the
 * FIFO, sees the status line, and removes only the FIFO it made. Also how reload requests merge.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, lstatSync, mkdtempSync, readFileSync, statSync, symlinkSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { makeFifo, oneLine, openReader, openReportPipe, removeFifo, statusError, statusOf, STATUS_OK } from '../src/ops/sig-pipe.js';
import { mergeKinds } from '../src/master/reload.js';

const dir = (): string => mkdtempSync(join(tmpdir(), 'avf-pipe-'));

test('the daemon side: no path, a FIFO nobody reads, a regular file and a symlink are not written, and opening never blocks', () => {
  const d = dir();
  const p = join(d, 'pipe');
  assert.deepEqual(openReportPipe(p), { pipe: undefined });
  assert.equal(existsSync(p), false, 'nothing created');
  spawnSync('mkfifo', [p]);
  const t0 = Date.now();
  assert.deepEqual(openReportPipe(p), { pipe: undefined }, 'no reader: ENXIO, not a wait');
  assert.ok(Date.now() - t0 < 1000);
  unlinkSync(p);
  writeFileSync(p, 'keep');
  const file = openReportPipe(p);
  assert.equal(file.pipe, undefined);
  assert.match(file.refused ?? '', /is not a FIFO/);
  assert.equal(readFileSync(p, 'utf8'), 'keep');
  unlinkSync(p);
  const fifo = join(d, 'real');
  spawnSync('mkfifo', [fifo]);
  symlinkSync(fifo, p);
  const link = openReportPipe(p);
  assert.equal(link.pipe, undefined);
  assert.match(link.refused ?? '', /is a symbolic link/);
});

test('the reader side: makeFifo makes a 0620 FIFO, reads lines up to the status line, and removes only its own FIFO', async () => {
  const d = dir();
  const p = join(d, 'pipe');
  const fifo = await makeFifo(p, 0o620);
  assert.ok(lstatSync(p).isFIFO());
  assert.equal(statSync(p).mode & 0o777, 0o620);
  await assert.rejects(makeFifo(p, 0o620), { code: 'EPIPE_BUSY' });
  const reader = openReader(fifo);
  try {
    const lines: string[] = [];
    const reading = reader.read(5000, (l) => lines.push(l));
    const w = openReportPipe(p);
    assert.ok(w.pipe);
    w.pipe.line('reload: config only (SIGUSR1)');
    w.pipe.line('a line\nwith a newline and a\u0007bell');
    await w.pipe.end(statusError('x.toml:3: unknown key "y"\nsecond line'));
    assert.deepEqual(await reading, { status: 'error' });
    assert.deepEqual(lines, ['reload: config only (SIGUSR1)', 'a line with a newline and a bell', 'status: error x.toml:3: unknown key "y" second line']);
  } finally {
    reader.close();
  }
  // another file put in its place is not removed
  unlinkSync(p);
  writeFileSync(p, 'not ours');
  removeFifo(fifo);
  assert.equal(readFileSync(p, 'utf8'), 'not ours');
  unlinkSync(p);
  symlinkSync(join(d, 'elsewhere'), p);
  await assert.rejects(makeFifo(p, 0o620), { code: 'EPIPE_UNSAFE' });
});

test('the reader times out when nothing is written, and a writer whose reader left does not throw', async () => {
  const d = dir();
  const fifo = await makeFifo(join(d, 'pipe'), 0o600);
  const reader = openReader(fifo);
  const w = openReportPipe(fifo.path);
  try {
    assert.deepEqual(await reader.read(200, () => undefined), { status: 'timeout' });
  } finally {
    reader.close();
  }
  removeFifo(fifo);
  assert.equal(existsSync(fifo.path), false);
  w.pipe!.line('nobody reads this');
  await w.pipe!.end(STATUS_OK);
});

test('status lines and line cleaning', () => {
  assert.equal(statusOf('status: ok'), 'ok');
  assert.equal(statusOf('status: error something'), 'error');
  assert.equal(statusOf('status: okay'), undefined);
  assert.equal(statusOf('error: x'), undefined);
  assert.equal(oneLine('a\r\nb\u2028c'), 'a b c');
});

test('reload requests merge into the union of what they ask', () => {
  assert.equal(mergeKinds(undefined, 'virus'), 'virus');
  assert.equal(mergeKinds('virus', 'virus'), 'virus');
  assert.equal(mergeKinds('config', 'virus'), 'all');
  assert.equal(mergeKinds('virus', 'config'), 'all');
  assert.equal(mergeKinds('all', 'config'), 'all');
  assert.equal(mergeKinds('config', 'all'), 'all');
});
