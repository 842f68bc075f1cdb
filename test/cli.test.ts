/** The command line: -t output and exit codes exactly as in the contract, --config, --help. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { eicar } from './helpers/eicar.js';
import { spawn, spawnSync } from 'node:child_process';
import { AVFILTER, runAvfilter } from './helpers/avfilter-proc.js';

const dir = mkdtempSync(join(tmpdir(), 'avf-cli-'));
// Courier's user must reach the configs: run as root, --config checks that the daemon's user can read them.
chmodSync(dir, 0o755);
const cfg = join(dir, 'empty.toml');
writeFileSync(cfg, `tmpdir = "${dir}/work"\n`);
const mail = (body: Buffer) => `From: a@example.test\nSubject: t\nMIME-Version: 1.0\nContent-Type: application/octet-stream\nContent-Transfer-Encoding: base64\n\n${body.toString('base64')}\n`;
const cleanPath = join(dir, 'clean.eml');
const virusPath = join(dir, 'virus.eml');
writeFileSync(cleanPath, mail(Buffer.from('nothing to see')));
writeFileSync(virusPath, mail(eicar()));

test('-t: OK / FOUND / ERROR lines in argument order and exit codes 0, 1, 2', () => {
  const ok = runAvfilter(['-f', cfg, '-t', cleanPath]);
  assert.equal(ok.stdout, `${cleanPath}: OK\n`);
  assert.equal(ok.code, 0);

  const missing = join(dir, 'missing.eml');
  const err = runAvfilter(['-f', cfg, '-t', cleanPath, missing]);
  assert.equal(err.stdout, `${cleanPath}: OK\n${missing}: No such file or directory ERROR\n`);
  assert.equal(err.code, 2);

  const all = runAvfilter(['-f', cfg, '-t', missing, virusPath, cleanPath]);
  assert.equal(all.stdout, `${missing}: No such file or directory ERROR\n${virusPath}: Eicar-Test-Signature FOUND\n${cleanPath}: OK\n`);
  assert.equal(all.code, 1, 'infected wins over errors');
});

test('-t -v says where the virus was', () => {
  const r = runAvfilter(['-f', cfg, '-t', '-v', virusPath]);
  assert.equal(r.code, 1);
  assert.match(r.stdout, /^.*virus\.eml: Eicar-Test-Signature FOUND \(.*part 1.*base64.*\)$/m);
});

test('-t - reads stdin and prints "stdin"', () => {
  assert.deepEqual(
    [runAvfilter(['-f', cfg, '-t', '-'], { input: mail(eicar()) }).stdout, runAvfilter(['-f', cfg, '-t', '-'], { input: mail(Buffer.from('hi')) }).stdout],
    ['stdin: Eicar-Test-Signature FOUND\n', 'stdin: OK\n'],
  );
});

test('-t DIR scans a Maildir\'s cur/ and new/', () => {
  const md = join(dir, 'Maildir');
  for (const s of ['cur', 'new', 'tmp']) mkdirSync(join(md, s), { recursive: true });
  writeFileSync(join(md, 'new', '1.eml'), mail(Buffer.from('a')));
  writeFileSync(join(md, 'cur', '2.eml'), mail(eicar()));
  writeFileSync(join(md, 'tmp', '3.eml'), mail(eicar()));
  const r = runAvfilter(['-f', cfg, '-t', md]);
  assert.equal(r.code, 1);
  assert.equal(r.stdout, `${join(md, 'cur', '2.eml')}: Eicar-Test-Signature FOUND\n${join(md, 'new', '1.eml')}: OK\n`);
});

test('config errors exit 2 naming file, line and key', () => {
  const bad = join(dir, 'bad.toml');
  writeFileSync(bad, '# comment\nrequest_timeout = 10\nscan_everything = true\n');
  const r = runAvfilter(['-f', bad, '-t', cleanPath]);
  assert.equal(r.code, 2);
  assert.match(r.stderr, new RegExp(`${bad}:3: unknown key "scan_everything"`));
  assert.equal(r.stdout, '');
  const m = runAvfilter(['-f', join(dir, 'nope.toml'), '--config']);
  assert.equal(m.code, 2);
  assert.match(m.stderr, /nope\.toml/);
});

test('--config prints the effective config; -v adds engine versions', () => {
  const r = runAvfilter(['-f', cfg, '--config', '-v']);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /^tmpdir = ".*\/work"/m);
  assert.match(r.stdout, /^type = "yara"/m);
  assert.match(r.stdout, /# version: YARA-X/);
});

test('--help and --version; usage errors exit 2', () => {
  const h = runAvfilter(['--help']);
  assert.equal(h.code, 0);
  for (const o of ['-f, --file', '--config', '-t, --test', '--batch-test', '--foreground', '--version']) assert.ok(h.stdout.includes(o), o);
  const v = runAvfilter(['--version']);
  assert.equal(v.code, 0);
  assert.match(v.stdout, /^\d+\.\d+\.\d+\n$/);
  assert.equal(runAvfilter(['--bogus']).code, 2);
  assert.equal(runAvfilter(['-f', cfg, '--config', '-t', cleanPath]).code, 2);
});

test('avfilter_sig: --help names the paths, from the config file even when it does not parse; usage errors exit 2', () => {
  const sig = AVFILTER.replace(/avfilter\.js$/, 'avfilter_sig.js');
  const missing = join(mkdtempSync(join(tmpdir(), 'avf-sig-')), 'none.toml');
  const h = spawnSync(process.execPath, [sig, '--help'], { encoding: 'utf8', env: { ...process.env, AVFILTER_CONFIG: missing } });
  assert.equal(h.status, 0);
  assert.match(h.stdout, /^usage: avfilter_sig \[-f FILE\] \[-p PID\] \[-t SECONDS\] \[-l\] \[reload \[config \| virus\] \| stats\]$/m);
  assert.match(h.stdout, new RegExp(`config file: ${missing}`));
  assert.match(h.stdout, /pid file: +\/run\/courier\/avfilter\.pid/);
  assert.match(h.stdout, /pipe: +\/run\/courier\/avfilter_sig\.pipe/);
  // a config with a mistake still gives its pid_file and pipe
  const cfg = join(dirname(missing), 'broken.toml');
  writeFileSync(cfg, 'pid_file = "/x/a.pid"\npipe = "/x/a.pipe"\nnot toml at all [\n');
  const b = spawnSync(process.execPath, [sig, '-f', cfg, '-h'], { encoding: 'utf8' });
  assert.equal(b.status, 0);
  assert.match(b.stdout, /pid file: +\/x\/a\.pid/);
  assert.match(b.stdout, /pipe: +\/x\/a\.pipe/);
  for (const bad of [['reload', 'all'], ['-t', '0'], ['-p', 'x'], ['--bogus'], ['stats', 'now']]) {
    const r = spawnSync(process.execPath, [sig, ...bad], { encoding: 'utf8' });
    assert.equal(r.status, 2, `${bad.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, /usage: avfilter_sig /);
  }
});

test('a reader that closes the output early (avfilter --help | head) ends the program quietly, not in an EPIPE stack trace', async () => {
  for (const bin of [AVFILTER, AVFILTER.replace(/avfilter\.js$/, 'avfilter_sig.js')]) {
    const child = spawn(process.execPath, [bin, '--help'], { stdio: ['ignore', 'pipe', 'pipe'] });
    child.stdout.destroy();
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => { stderr += d.toString(); });
    const code = await new Promise<number | null>((r) => child.on('close', (c) => r(c)));
    assert.equal(code, 0, `${bin}: ${stderr}`);
    assert.doesNotMatch(stderr, /EPIPE|Unhandled|at /, bin);
  }
});
