/**
 * Debug runs and -t's reports on stderr: `avfilter --foreground --debug` puts its socket in the
 * current directory, writes no pid file and traces a message through every stage; -t shows
 * progress only on a terminal and ends with a summary line on stderr, stdout unchanged.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AVFILTER, runAvfilter, talk, waitFor } from './helpers/avfilter-proc.js';
import { CONTROL } from './helpers/daemon-env.js';
import { eicar } from './helpers/eicar.js';

const ROOT_ARGS = process.getuid?.() === 0 ? ['--allow-root'] : [];

test('--foreground --debug: socket ./avfilter in the current directory, no pid file, trace lines for each stage of one message', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'avf-debug-'));
  const spool = join(dir, 'spool');
  mkdirSync(spool);
  const pidFile = join(dir, 'avfilter.pid');
  const cfg = join(dir, 'avfilter.toml');
  writeFileSync(cfg, `pid_file = "${pidFile}"\ntmpdir = "${dir}/work"\nspool_dirs = ["${spool}"]\nsocket_dir_all = "${dir}/nowhere"\n[[engine]]\ntype = "yara"\n`);
  const child = spawn(process.execPath, [AVFILTER, '-f', cfg, '--foreground', '--debug', ...ROOT_ARGS], { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  child.stderr!.on('data', (d: Buffer) => { err += d.toString(); });
  const exited = new Promise((r) => child.on('exit', r));
  try {
    const sock = join(dir, 'avfilter');
    await waitFor(() => existsSync(sock), 30_000, `./avfilter\n${err}`);
    assert.ok(!existsSync(join(dir, 'nowhere')), 'socket_dir_all is not used');
    assert.ok(!existsSync(pidFile), 'no pid file');
    // the master's lines are written by its log thread, a moment after the socket is in place
    const announced = new RegExp(`event=debug-run socket=${sock} pid_file=none log_level=debug`);
    await waitFor(() => announced.test(err), 10_000, `debug-run line\n${err}`);
    const data = join(spool, 'D1');
    writeFileSync(data, `Subject: t\n\n${eicar()}\n`);
    writeFileSync(join(spool, 'C1'), CONTROL);
    const { reply } = await talk(sock, `${data}\n${join(spool, 'C1')}\n\n`);
    assert.match(reply, /^200 /);
    await waitFor(() => /stage=reply/.test(err), 10_000, `reply trace\n${err}`);
    const trace = err.split('\n').filter((l) => l.includes('event=trace'));
    const stages = trace.map((l) => /stage=(\w+)/.exec(l)![1]);
    assert.deepEqual([...new Set(stages)], ['read', 'mime', 'unpack', 'engine', 'policy', 'reply']);
    for (const l of trace) {
      assert.match(l, /^avfilter: level=debug event=trace /);
      assert.ok(l.includes(`data=${data} `), l);
      assert.match(l, / ms=\d+/);
    }
    assert.match(trace.find((l) => l.includes('stage=engine'))!, /engine=yara item=\S+ bytes=\d+ status=infected scan_ms=\d+ names=Eicar-Test-Signature/);
    assert.match(trace.find((l) => l.includes('stage=policy'))!, /verdict=infected action=drop reply=200/);
  } finally {
    child.kill('SIGTERM');
    await exited;
    rmSync(dir, { recursive: true, force: true });
  }
});

test('without debug the daemon writes no trace line (log_level info)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'avf-nodebug-'));
  try {
    const cfg = join(dir, 'avfilter.toml');
    writeFileSync(cfg, `tmpdir = "${dir}/work"\nspool_dirs = ["${dir}"]\n[[engine]]\ntype = "yara"\n`);
    const data = join(dir, 'D1');
    writeFileSync(data, 'Subject: t\n\nhello\n');
    writeFileSync(join(dir, 'C1'), CONTROL);
    const r = runAvfilter(['-f', cfg, '--batch-test'], { input: `${data}\n${join(dir, 'C1')}\n\n` });
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^200 /m);
    assert.match(r.stderr, /verdict=clean/);
    assert.doesNotMatch(r.stderr, /event=trace/);
    writeFileSync(cfg, `tmpdir = "${dir}/work"\nspool_dirs = ["${dir}"]\nlog_level = "debug"\n[[engine]]\ntype = "yara"\n`);
    const d = runAvfilter(['-f', cfg, '--batch-test'], { input: `${data}\n${join(dir, 'C1')}\n\n` });
    assert.match(d.stderr, /event=trace .*stage=engine/, 'log_level = "debug" traces --batch-test too');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('--debug without --foreground is refused with a usage message', () => {
  const r = runAvfilter(['--debug']);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /--debug goes with --foreground/);
});

test('-t: stdout keeps the contract lines, stderr ends with a summary (files, OK, FOUND, ERROR, MB/s)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'avf-tsum-'));
  try {
    const cfg = join(dir, 'avfilter.toml');
    writeFileSync(cfg, `tmpdir = "${dir}/work"\n[[engine]]\ntype = "yara"\n`);
    writeFileSync(join(dir, 'ok.eml'), `Subject: t\n\n${'x'.repeat(2_000_000)}\n`);
    writeFileSync(join(dir, 'bad.eml'), `Subject: t\n\n${eicar()}\n`);
    const r = runAvfilter(['-f', cfg, '-t', join(dir, 'ok.eml'), join(dir, 'bad.eml'), join(dir, 'missing.eml')]);
    assert.equal(r.code, 1);
    assert.equal(r.stdout, `${dir}/ok.eml: OK\n${dir}/bad.eml: Eicar-Test-Signature FOUND\n${dir}/missing.eml: No such file or directory ERROR\n`);
    assert.match(r.stderr, /^avfilter: 3 files: 1 OK, 1 FOUND, 1 ERROR; 2\.0 MB in \d+\.\d\d s \(\d+\.\d MB\/s\)\n$/);
    assert.doesNotMatch(r.stderr, /\r/, 'no progress when stderr is not a terminal');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('-t on a terminal: progress (files done / total, MB) on stderr, then the summary', () => {
  const dir = mkdtempSync(join(tmpdir(), 'avf-tprog-'));
  try {
    const cfg = join(dir, 'avfilter.toml');
    writeFileSync(cfg, `tmpdir = "${dir}/work"\n[[engine]]\ntype = "yara"\n`);
    for (const n of [1, 2]) writeFileSync(join(dir, `m${n}.eml`), `Subject: ${n}\n\n${'y'.repeat(1_000_000)}\n`);
    // script(1) gives the command a terminal; stdout goes to a file so only stderr is on it
    const out = join(dir, 'stdout');
    const cmd = `${process.execPath} ${AVFILTER} -f ${cfg} -t ${dir}/m1.eml ${dir}/m2.eml > ${out}`;
    const r = spawnSync('script', ['-qec', cmd, '/dev/null'], { encoding: 'utf8', timeout: 60_000 });
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /\r\[0\/2 files, 0\.0 MB\] \S+m1\.eml/);
    assert.match(r.stdout, /\r\[1\/2 files, 1\.0 MB\] \S+m2\.eml/);
    assert.match(r.stdout, /avfilter: 2 files: 2 OK, 0 FOUND, 0 ERROR; 2\.0 MB in /);
    const stdout = spawnSync('cat', [out], { encoding: 'utf8' }).stdout;
    assert.equal(stdout, `${dir}/m1.eml: OK\n${dir}/m2.eml: OK\n`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
