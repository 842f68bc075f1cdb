/**
 * The command engine with the REAL clamscan (against a database generated at run time, the one
 * the test clamd loads) and with small shell scripts for what clamscan will not do on demand:
 * hang, leave children behind, exit with odd codes, say "clean" and name a virus at once.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, realpathSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { bufferSource, fileSource } from '../src/bytes/sources.js';
import type { Engine, EngineResult, ScanItem, ScanSource } from '../src/engines/engine.js';
import { createCommandEngine, type CommandOptions } from '../src/engines/command/index.js';
import { GENERIC_NAME } from '../src/engines/command/output.js';
import { runAvfilter } from './helpers/avfilter-proc.js';
import { startClamd, type RunningClamd } from './helpers/clamd.js';
import { eicar } from './helpers/eicar.js';

const CLAMSCAN = '/usr/bin/clamscan';
let clamd: RunningClamd;
const dir = mkdtempSync(join(tmpdir(), 'avf-cmd-'));
chmodSync(dir, 0o755);
const work = join(dir, 'work');
mkdirSync(work, { mode: 0o700 });

before(async () => {
  if (!existsSync(CLAMSCAN)) throw new Error(`${CLAMSCAN} is missing: install the Debian package clamav`);
  // the test clamd only for its generated database (and the names it reports for it)
  clamd = await startClamd();
});
after(async () => {
  await clamd?.stop();
});

const item = (source: ScanSource): ScanItem => ({ id: '1', kind: 'part', source });
const clamscan = (): string[] => [CLAMSCAN, '--no-summary', '-d', clamd.dbDir, '{}'];

function engine(o: Partial<CommandOptions> & { command: string[] }): Engine {
  return createCommandEngine({
    scanTimeoutMs: 60_000, maxProcesses: 2, maxBytes: 64 * 1024 * 1024, cleanExit: [0], infectedExit: [1],
    namePattern: '^.*?: (.+) FOUND$', tmpdir: work, ...o,
  });
}

/** Runs `body` with a fresh engine and a signal that never fires, then closes the engine. */
async function withEngine<T>(o: Partial<CommandOptions> & { command: string[] }, body: (e: Engine, sig: AbortSignal) => Promise<T>): Promise<T> {
  const e = engine(o);
  try {
    return await body(e, new AbortController().signal);
  } finally {
    await e.close();
  }
}

function scanWith(o: Partial<CommandOptions> & { command: string[] }, source: ScanSource): Promise<EngineResult> {
  return withEngine(o, (e, sig) => e.scan(item(source), sig));
}

function script(name: string, body: string): string {
  const p = join(dir, name);
  writeFileSync(p, `#!/bin/sh\n${body}\n`, { mode: 0o755 });
  return p;
}

const leftovers = (): string[] => readdirSync(work);

test('clamscan: EICAR is infected with the name clamscan prints, a clean item is clean, a file source too; no file is left', async () => {
  await withEngine({ command: clamscan() }, async (e, sig) => {
      assert.deepEqual(await e.scan(item(bufferSource(eicar())), sig), { status: 'infected', names: [clamd.names.eicar] });
      assert.deepEqual(await e.scan(item(bufferSource(Buffer.from('nothing to see here\n'))), sig), { status: 'clean' });
      const p = join(dir, 'big.bin');
      const big = Buffer.concat([Buffer.alloc(2 * 1024 * 1024, 7), eicar()]);
      writeFileSync(p, big);
      assert.deepEqual(await e.scan(item(fileSource(p, big.length)), sig), { status: 'infected', names: [clamd.names.eicar] });
  });
  assert.deepEqual(leftovers(), []);
});

test('clamscan with a database directory that does not exist: an error with exit code 2 and its first stderr line', async () => {
  const r = await scanWith({ command: [CLAMSCAN, '--no-summary', '-d', join(dir, 'no-db'), '{}'] }, bufferSource(eicar()));
  assert.equal(r.status, 'error', JSON.stringify(r));
  assert.equal((r as { code: string }).code, 'ESCANNER');
  assert.match((r as { message: string }).message, /exited 2: \S/);
});

test('the item is a 0600 file in a 0700 directory under tmpdir, passed as {} (also inside an argument)', async () => {
  const s = script('stat.sh', 'f="${1#--file=}"; stat -c "%a %n" "$(dirname "$f")" "$f" >&2; exit 3');
  const r = await scanWith({ command: [s, '--file={}'] }, bufferSource(Buffer.from('x')));
  assert.equal(r.status, 'error');
  const m = /exited 3: 700 (\S+)/.exec((r as { message: string }).message);
  assert.ok(m, JSON.stringify(r));
  assert.ok(m[1]!.startsWith(`${work}/`), m[1]);
  const s2 = script('stat2.sh', 'stat -c "%a" "$1" >&2; exit 3');
  assert.match((await scanWith({ command: [s2, '{}'] }, bufferSource(Buffer.from('x'))) as { message: string }).message, /exited 3: 600$/);
  assert.deepEqual(leftovers(), []);
});

test('scan_timeout kills the whole process group (a child the scanner started too) and removes the file', async () => {
  const pidFile = join(dir, 'child.pid');
  const s = script('hang.sh', `sleep 60 & echo $! > ${pidFile}; wait`);
  const t0 = Date.now();
  const r = await scanWith({ command: [s, '{}'], scanTimeoutMs: 500 }, bufferSource(Buffer.from('x')));
  assert.equal((r as { code: string }).code, 'ESCAN_TIMEOUT', JSON.stringify(r));
  assert.ok(Date.now() - t0 < 5000);
  const child = Number(readFileSync(pidFile, 'utf8'));
  // gone, or a zombie waiting for whoever inherited it to reap it: not running either way
  const alive = (): boolean => {
    try {
      return !/^\d+ \(.*\) [ZX] /.test(readFileSync(`/proc/${child}/stat`, 'utf8'));
    } catch {
      return false;
    }
  };
  const until = Date.now() + 2000;
  while (alive() && Date.now() < until) await new Promise((r) => setTimeout(r, 20));
  assert.equal(alive(), false, 'the scanner\'s child was killed with it');
  assert.deepEqual(leftovers(), []);
});

test('exit codes: outside clean_exit/infected_exit is an error; infected without a name is the generic name; clean with a name is an error', async () => {
  const odd = await scanWith({ command: [script('odd.sh', 'echo "disk on fire" >&2; exit 42'), '{}'] }, bufferSource(Buffer.from('x')));
  assert.deepEqual(odd, { status: 'error', code: 'ESCANNER', message: `${join(dir, 'odd.sh')} exited 42: disk on fire` });
  assert.deepEqual(await scanWith({ command: [script('inf.sh', 'exit 1'), '{}'] }, bufferSource(Buffer.from('x'))), { status: 'infected', names: [GENERIC_NAME] });
  const both = await scanWith({ command: [script('both.sh', 'echo "$1: Evil.Thing FOUND"; exit 0'), '{}'] }, bufferSource(Buffer.from('x')));
  assert.equal((both as { code: string }).code, 'EPROTOCOL', JSON.stringify(both));
  const killed = await scanWith({ command: [script('segv.sh', 'kill -SEGV $$'), '{}'] }, bufferSource(Buffer.from('x')));
  assert.match((killed as { message: string }).message, /killed by SIGSEGV/);
  const custom = await scanWith({
    command: [script('custom.sh', 'echo "VIRUS Custom.Name in $1"; exit 5'), '{}'], cleanExit: [3], infectedExit: [5], namePattern: '^VIRUS (\\S+) in ',
  }, bufferSource(Buffer.from('x')));
  assert.deepEqual(custom, { status: 'infected', names: ['Custom.Name'] });
  const gone = script('gone.sh', 'exit 0');
  const e = engine({ command: [gone, '{}'] });
  try {
    chmodSync(gone, 0o644); // made unrunnable after the engine was built
    const r = await e.scan(item(bufferSource(Buffer.from('x'))), new AbortController().signal);
    assert.match((r as { message: string }).message, /cannot run .*EACCES/, JSON.stringify(r));
  } finally {
    await e.close();
  }
  assert.deepEqual(leftovers(), []);
});

test('max_size: a larger item is ESIZE_LIMIT and the scanner is not run', async () => {
  const marker = join(dir, 'ran');
  const r = await scanWith({ command: [script('mark.sh', `touch ${marker}`), '{}'], maxBytes: 1024 }, bufferSource(Buffer.alloc(1025)));
  assert.equal((r as { code: string }).code, 'ESIZE_LIMIT');
  assert.equal(existsSync(marker), false);
});

test('max_processes bounds the scanners running at once', async () => {
  const log = join(dir, 'conc.log');
  writeFileSync(log, '');
  const s = script('conc.sh', `echo start >> ${log}; sleep 0.3; echo end >> ${log}; exit 0`);
  await withEngine({ command: [s, '{}'], maxProcesses: 2 }, async (e, sig) => {
      const rs = await Promise.all(Array.from({ length: 6 }, () => e.scan(item(bufferSource(Buffer.from('x'))), sig)));
      assert.ok(rs.every((r) => r.status === 'clean'), JSON.stringify(rs));
  });
  let running = 0;
  let most = 0;
  for (const l of readFileSync(log, 'utf8').trim().split('\n')) {
    running += l === 'start' ? 1 : -1;
    most = Math.max(most, running);
  }
  assert.equal(most, 2);
});

test('a command without {} is refused when the engine is built (it would scan nothing and say clean), and so is a missing program', () => {
  assert.throws(() => engine({ command: [CLAMSCAN, '--no-summary'] }), /no "\{\}" argument/);
  assert.throws(() => engine({ command: [join(dir, 'no-such-scanner'), '{}'] }), /no-such-scanner is not an executable file/);
  assert.throws(() => engine({ command: ['no-such-scanner-anywhere', '{}'] }), /no-such-scanner-anywhere is not found in PATH/);
});

test('version(): the first line of version_command, else the program found in PATH', async () => {
  const expected = execFileSync(CLAMSCAN, ['--version'], { encoding: 'utf8' }).split('\n')[0]!;
  assert.equal(await withEngine({ command: ['clamscan', '{}'], versionCommand: ['clamscan', '--version'] }, (e) => e.version(AbortSignal.timeout(10_000))), expected);
  const bare = await withEngine({ command: ['clamscan', '{}'] }, (e) => e.version(AbortSignal.timeout(10_000)));
  const m = /^(\/\S+) \(no version_command\)$/.exec(bare);
  assert.ok(m, bare);
  assert.equal(realpathSync(m[1]!), realpathSync(CLAMSCAN));
  const v = await withEngine({ command: ['clamscan', '{}'], versionCommand: [script('v.sh', 'exit 4')] }, (e) => e.version(AbortSignal.timeout(10_000)));
  assert.match(v, /^clamscan \(version unknown: .*v\.sh exited 4\)$/);
});

// ---- through the command line ----

function config(extra: string): string {
  const d = mkdtempSync(join(dir, 'cfg-'));
  chmodSync(d, 0o755);
  const cfg = join(d, 'avfilter.toml');
  writeFileSync(cfg, `tmpdir = "${d}/work"\n[[engine]]\ntype = "command"\n${extra}\n`);
  return cfg;
}

test('avfilter -t with a command engine (clamscan): FOUND with clamscan\'s name, OK; --config -v shows version_command\'s first line', () => {
  const mail = (body: Buffer) => `From: a@example.test\nSubject: t\nMIME-Version: 1.0\nContent-Type: application/octet-stream\nContent-Transfer-Encoding: base64\n\n${body.toString('base64')}\n`;
  const virus = join(dir, 'virus.eml');
  const clean = join(dir, 'clean.eml');
  writeFileSync(virus, mail(eicar()));
  writeFileSync(clean, mail(Buffer.from('hello')));
  const cfg = config(`command = ${JSON.stringify(clamscan())}\nversion_command = ["${CLAMSCAN}", "--version"]`);
  const r = runAvfilter(['-f', cfg, '-t', virus, clean]);
  assert.equal(r.stdout, `${virus}: ${clamd.names.eicar} FOUND\n${clean}: OK\n`, r.stderr);
  assert.equal(r.code, 1);
  const v = runAvfilter(['-f', cfg, '--config', '-v']);
  assert.equal(v.code, 0, v.stderr);
  const expected = execFileSync(CLAMSCAN, ['--version'], { encoding: 'utf8' }).split('\n')[0]!;
  assert.ok(v.stdout.includes(`# version: ${expected}\n`), v.stdout);
  assert.ok(v.stdout.includes(`# signatures: command ${CLAMSCAN}: ${expected}\n`), v.stdout);
  const bad = runAvfilter(['-f', config('command = ["clamscan"]'), '--config']);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /engine\[0\] \(type = "command"\): command engine: command \["clamscan"\] has no "\{\}" argument/);
});
