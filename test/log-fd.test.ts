/**
 * Workers write their log lines to the daemon's stderr themselves (src/ops/fd-log.ts): several
 * processes share that pipe, so no line may be cut by another's write; a line longer than a pipe
 * can take whole is cut and marked; a reader that went away costs lines, never the process.
 * Writers here are separate processes (as the workers are), all writing to one FIFO.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { closeSync, constants, mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { FdLog, PIPE_BUF } from '../src/ops/fd-log.js';

const FD_LOG = fileURLToPath(new URL('../src/ops/fd-log.js', import.meta.url));

/** A process writing `n` lines of `tag` (and one of 6,000 bytes) through FdLog to its fd 3. */
function writer(tag: string, n: number, fifo: string) {
  const script = `
    const { FdLog } = await import(${JSON.stringify(FD_LOG)});
    const log = new FdLog(3);
    for (let i = 0; i < ${n}; i++) {
      log.sink('avfilter: w=${tag} i=' + i + ' pad=' + 'x'.repeat(i % 300) + ' end=${tag}' + i + '\\n');
      if (i === 100) log.sink('avfilter: w=${tag} long=' + 'y'.repeat(6000) + '\\n');
    }
    await log.drain(10000);
  `;
  const fd = openSync(fifo, 'w');
  const child = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'ignore', 'inherit', fd] });
  closeSync(fd);
  return new Promise<number | null>((resolve) => child.on('exit', resolve));
}

test('lines from several writer processes on one pipe arrive whole; a line longer than PIPE_BUF is cut and marked', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'avf-fdlog-'));
  try {
    const fifo = join(dir, 'log.fifo');
    const out = join(dir, 'out');
    assert.equal(spawnSync('mkfifo', [fifo]).status, 0);
    // the reader: everything the writers send, in arrival order
    const reader = spawn('sh', ['-c', `cat "${fifo}" > "${out}"`]);
    const done = new Promise((r) => reader.on('exit', r));
    const codes = await Promise.all(['a', 'b', 'c'].map((t) => writer(t, 3000, fifo)));
    assert.deepEqual(codes, [0, 0, 0]);
    await done;
    const lines = readFileSync(out, 'utf8').split('\n').filter((l) => l !== '');
    const whole = /^avfilter: w=([abc]) i=(\d+) pad=x* end=\1\2$/;
    const long = /^avfilter: w=([abc]) long=y+ \[cut\]$/;
    const seen = new Map<string, number>();
    for (const l of lines) {
      const m = whole.exec(l) ?? long.exec(l);
      assert.ok(m, `a line cut or mixed with another: ${JSON.stringify(l.slice(0, 120))}`);
      if (long.test(l)) assert.equal(Buffer.byteLength(l) + 1, PIPE_BUF, 'cut to PIPE_BUF with its newline');
      seen.set(m[1]!, (seen.get(m[1]!) ?? 0) + 1);
    }
    assert.deepEqual([...seen.entries()].sort(), [['a', 3001], ['b', 3001], ['c', 3001]]);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a reader that went away: lines are counted lost, the writer goes on', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'avf-fdlog-'));
  try {
    const fifo = join(dir, 'log.fifo');
    assert.equal(spawnSync('mkfifo', [fifo]).status, 0);
    const reader = spawn('sh', ['-c', `exec 0<"${fifo}"; exit 0`]);
    const fd = openSync(fifo, 'w');
    await new Promise((r) => reader.on('exit', r));
    const log = new FdLog(fd);
    for (let i = 0; i < 50; i++) log.sink(`avfilter: i=${i}\n`, 'info');
    await log.drain(5000);
    assert.equal(log.lost, 50);
    closeSync(fd);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

/** The file status flags of `fd` in process `pid` (octal in /proc/PID/fdinfo). */
function fdFlags(pid: number | 'self', fd: number): number {
  const m = /^flags:\s+([0-7]+)$/m.exec(readFileSync(`/proc/${pid}/fdinfo/${fd}`, 'utf8'));
  return parseInt(m![1]!, 8);
}

test('a full pipe never holds the event loop; the lines wait and arrive whole and in order; the shared descriptor stays blocking', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'avf-fdlog-'));
  let cleanup = (): void => undefined;
  try {
    const fifo = join(dir, 'log.fifo');
    const out = join(dir, 'out');
    assert.equal(spawnSync('mkfifo', [fifo]).status, 0);
    const reader = spawn('sh', ['-c', `exec cat "${fifo}" > "${out}"`]);
    const done = new Promise((r) => reader.on('exit', r));
    const fd = openSync(fifo, 'w');
    const before = fdFlags('self', fd);
    assert.equal(before & constants.O_NONBLOCK, 0, 'the shared descriptor is blocking');
    reader.kill('SIGSTOP');
    // 2,000 lines of ~200 bytes: six times what a pipe holds, written while nobody reads
    const script = `
      const { FdLog } = await import(${JSON.stringify(FD_LOG)});
      const log = new FdLog(3);
      for (let i = 0; i < 2000; i++) log.sink('avfilter: i=' + i + ' pad=' + 'x'.repeat(180) + ' end=' + i + '\\n');
      setTimeout(() => process.stdout.write('alive\\n'), 100);
      await log.drain(60000);
      process.stdout.write('drained lost=' + log.lost + '\\n');
    `;
    const child = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'inherit', fd] });
    // a writer stuck on the pipe must not keep the test alive: both go when the test ends
    cleanup = () => {
      child.kill('SIGKILL');
      reader.kill('SIGCONT');
      reader.kill('SIGKILL');
    };
    let said = '';
    child.stdout!.on('data', (c: Buffer) => { said += c.toString(); });
    const exited = new Promise<number | null>((r) => child.on('exit', r));
    const deadline = Date.now() + 10_000;
    while (!said.includes('alive') && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    assert.ok(said.includes('alive'), 'the writer\'s timer fired while the pipe was full');
    assert.ok(!said.includes('drained'), 'the lines wait for the reader');
    assert.equal(fdFlags(child.pid!, 3) & constants.O_NONBLOCK, 0, 'the writer left the shared descriptor blocking');
    reader.kill('SIGCONT');
    assert.equal(await exited, 0);
    closeSync(fd);
    await done;
    assert.match(said, /drained lost=0/);
    const lines = readFileSync(out, 'utf8').split('\n').filter((l) => l !== '');
    assert.equal(lines.length, 2000);
    lines.forEach((l, i) => assert.match(l, new RegExp(`^avfilter: i=${i} pad=x{180} end=${i}$`)));
  } finally {
    cleanup();
    rmSync(dir, { recursive: true, force: true });
  }
});
