/**
 * Containers a mainstream tool extracts (7z, lzip, rpm2cpio, lzop) that the container stage did
 * not recognise, so an item holding EICAR in one answered OK: SquashFS images (gzip, xz, zstd,
 * lzma), WIM images (LZX, LZMS, XPRESS), xar archives (gzip, bzip2), lzip files (one member,
 * several, a tar inside, bytes after the last member), RPM packages whose payload is LZMA-alone
 * or lzip (neither has a magic the search behind other bytes trusts). Each is now read and
 * FOUND, its clean twin OK. lzop files, which nothing here reads, and a SquashFS image whose
 * compressor 7-Zip lacks (LZ4), are a limit: never OK, infected or clean.
 * Built at test time with the real tools (squashfs-tools, wimtools, libarchive-tools, lzip,
 * lzop, xz-utils, cpio), several variants each; no raw copy of EICAR is in any item.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { runAvfilter } from './helpers/avfilter-proc.js';
import { sniff } from '../src/unpack/sniff.js';
import { unpackRpm } from '../src/unpack/formats/index.js';
import { attachmentMessage } from './helpers/container-corpus.js';
import { eicar } from './helpers/eicar.js';
import { EICAR_NAME, cliSetup, leftovers, reportFor, type FileReport } from './helpers/unpack-cli.js';

interface Case { readonly id: string; readonly filename: string; readonly bytes: Buffer; readonly expect: 'read' | 'limit' }

let work = '';
before(() => { work = mkdtempSync(join(tmpdir(), 'avf-formats2-')); });
after(() => rmSync(work, { recursive: true, force: true }));

function run(cmd: string, args: string[], opts: { cwd?: string; input?: Buffer } = {}): Buffer {
  const r = spawnSync(cmd, args, { cwd: opts.cwd, input: opts.input, maxBuffer: 64 << 20 });
  assert.equal(r.status, 0, `${cmd} ${args.join(' ')}: ${r.stderr?.toString()}`);
  return r.stdout;
}

/** The file in the container: EICAR (or clean text of its length) with text before or after it. */
function body(infected: boolean, before: number): Buffer {
  const e = eicar();
  const core = infected ? e : Buffer.from('Nothing to see here, honest.\n'.repeat(3).slice(0, e.length), 'latin1');
  const text = (n: number): Buffer => Buffer.from('Quarterly figures attached.\n'.repeat(Math.ceil(n / 28) + 1).slice(0, n), 'latin1');
  return Buffer.concat([text(before), core, text(600)]);
}

let serial = 0;
/** A fresh directory holding `files` (relative path → bytes). */
function tree(files: Record<string, Buffer>): string {
  const dir = join(work, `t${serial++}`);
  for (const [name, bytes] of Object.entries(files)) {
    mkdirSync(dirname(join(dir, name)), { recursive: true });
    writeFileSync(join(dir, name), bytes);
  }
  return dir;
}

const out = (ext: string): string => join(work, `o${serial++}.${ext}`);
const README = Buffer.from('Read me first.\n'.repeat(30));

/** gzip of the bytes: for a container that keeps literals as they are (LZ4, LZO). */
const gz = (data: Buffer): Buffer => run('gzip', ['-c', '-n'], { input: data });

function squashfs(infected: boolean, comp: string, nested: boolean, before: number, wrap = (b: Buffer): Buffer => b): Buffer {
  const dir = tree({ [nested ? 'a/b/invoice.com' : 'invoice.com']: wrap(body(infected, before)), 'readme.txt': README });
  const file = out('sqfs');
  run('mksquashfs', [dir, file, '-comp', comp, '-noappend', '-quiet', '-no-progress']);
  return readFileSync(file);
}

function wim(infected: boolean, comp: string, nested: boolean, before: number): Buffer {
  const dir = tree({ [nested ? 'Windows/Temp/setup.com' : 'setup.com']: body(infected, before), 'readme.txt': README });
  const file = out('wim');
  run('wimcapture', [dir, file, `--compress=${comp}`]);
  return readFileSync(file);
}

function xar(infected: boolean, comp: string, nested: boolean, before: number): Buffer {
  const name = nested ? 'pkg/Payload/run.com' : 'run.com';
  const dir = tree({ [name]: body(infected, before), 'readme.txt': README });
  const file = out('xar');
  run('bsdtar', ['-c', '--format', 'xar', '--options', `xar:compression=${comp}`, '-f', file, 'readme.txt', name], { cwd: dir });
  return readFileSync(file);
}

const lzip = (data: Buffer, level: string): Buffer => run('lzip', ['-c', level], { input: data });

function tarOf(files: Record<string, Buffer>): Buffer {
  const dir = tree(files);
  return run('tar', ['-c', '-f', '-', ...Object.keys(files)], { cwd: dir });
}

function cpioOf(files: Record<string, Buffer>): Buffer {
  const dir = tree(files);
  return run('cpio', ['--quiet', '-o', '-H', 'newc'], { cwd: dir, input: Buffer.from(Object.keys(files).join('\n') + '\n') });
}

/**
 * An RPM package as rpmbuild lays it out: the 96-byte lead, a signature header padded to 8
 * bytes, the main header (one PAYLOADCOMPRESSOR string entry), then the compressed cpio.
 */
function rpm(payload: Buffer, compressor: string, sigEntries: number): Buffer {
  const lead = Buffer.alloc(96);
  Buffer.from([0xed, 0xab, 0xee, 0xdb, 3, 0, 0, 0, 0, 1]).copy(lead);
  lead.write('invoice-1.0-1', 10, 'latin1');
  lead.writeUInt16BE(1, 76); // os
  lead.writeUInt16BE(5, 78); // signature type: a header
  const header = (entries: Array<[number, Buffer]>): Buffer => {
    const index = Buffer.alloc(16 * entries.length);
    let at = 0;
    entries.forEach(([tag, data], i) => {
      index.writeUInt32BE(tag, i * 16);
      index.writeUInt32BE(7, i * 16 + 4); // BIN; STRING for the compressor below
      index.writeUInt32BE(at, i * 16 + 8);
      index.writeUInt32BE(data.length, i * 16 + 12);
      at += data.length;
    });
    const fixed = Buffer.alloc(16);
    Buffer.from([0x8e, 0xad, 0xe8, 0x01]).copy(fixed);
    fixed.writeUInt32BE(entries.length, 8);
    fixed.writeUInt32BE(at, 12);
    return Buffer.concat([fixed, index, ...entries.map(([, d]) => d)]);
  };
  const sig = header(Array.from({ length: sigEntries }, (_, i) => [1000 + i, Buffer.alloc(5 + i * 3, 0x41)] as [number, Buffer]));
  const pad = Buffer.alloc((8 - (sig.length % 8)) % 8);
  const main = header([[1125, Buffer.from(`${compressor}\0`, 'latin1')]]);
  return Buffer.concat([lead, sig, pad, main, payload]);
}

function rpmCase(infected: boolean, compressor: 'lzma' | 'lzip' | 'xz' | 'gzip', sigEntries: number, before: number): Buffer {
  const cpio = cpioOf({ './usr/bin/invoice.com': body(infected, before), './usr/share/doc/readme.txt': README });
  const payload = compressor === 'lzip' ? lzip(cpio, '-6')
    : compressor === 'gzip' ? gz(cpio)
      : run('xz', ['-c', `--format=${compressor === 'lzma' ? 'lzma' : 'xz'}`], { input: cpio });
  return rpm(payload, compressor, sigEntries);
}

function cases(infected: boolean): Case[] {
  const tag = infected ? 'inf' : 'clean';
  const c: Case[] = [];
  const add = (id: string, filename: string, bytes: Buffer, expect: Case['expect'] = 'read'): void => { c.push({ id: `${tag}-${id}`, filename, bytes, expect }); };
  for (const [comp, nested, before] of [['gzip', false, 0], ['xz', true, 300], ['zstd', false, 5000], ['lzma', true, 40]] as const) {
    add(`squashfs-${comp}-${nested ? 'nested' : 'flat'}`, 'image.sqfs', squashfs(infected, comp, nested, before));
  }
  for (const [comp, nested, before] of [['LZX', false, 0], ['LZMS', true, 700], ['XPRESS', false, 100]] as const) {
    add(`wim-${comp}`, nested ? 'install.wim' : 'image.bin', wim(infected, comp, nested, before));
  }
  for (const [comp, nested, before] of [['gzip', false, 0], ['bzip2', true, 900], ['gzip', true, 2000]] as const) {
    add(`xar-${comp}-${nested ? 'nested' : 'flat'}`, 'package.pkg', xar(infected, comp, nested, before));
  }
  const text = Buffer.from('A clean first member.\n'.repeat(40));
  add('lzip-one', 'invoice.lz', lzip(body(infected, 0), '-9'));
  add('lzip-fast', 'data.bin', lzip(body(infected, 1500), '-0'));
  add('lzip-second-member', 'notes.lz', Buffer.concat([lzip(text, '-6'), lzip(body(infected, 80), '-6')]));
  add('lzip-tar', 'backup.tar.lz', lzip(tarOf({ 'readme.txt': README, 'docs/invoice.com': body(infected, 10) }), '-6'));
  add('lzip-trailing-bytes', 'invoice.lz', Buffer.concat([lzip(body(infected, 200), '-6'), Buffer.from('trailing junk\n')]));
  add('rpm-lzma', 'invoice.rpm', rpmCase(infected, 'lzma', 2, 0));
  add('rpm-lzma-odd-signature', 'update.rpm', rpmCase(infected, 'lzma', 3, 333));
  add('rpm-lzip', 'invoice.rpm', rpmCase(infected, 'lzip', 1, 50));
  add('rpm-xz', 'invoice.rpm', rpmCase(infected, 'xz', 2, 0));
  add('rpm-gzip', 'invoice.rpm', rpmCase(infected, 'gzip', 4, 10));
  // nothing here reads these: a limit, whatever they hold (LZO and LZ4 keep literals as they
  // are, so what they hold is gzipped: the item has no raw EICAR a scan could meet by chance)
  add('lzop-1', 'invoice.lzo', run('lzop', ['-c', '-1'], { input: gz(Buffer.concat([body(infected, 0), text])) }), 'limit');
  add('lzop-9', 'backup.tar.lzo', run('lzop', ['-c', '-9'], { input: tarOf({ 'invoice.com.gz': gz(body(infected, 64)) }) }), 'limit');
  add('squashfs-lz4', 'image.sqfs', squashfs(infected, 'lz4', false, 3000, gz), 'limit');
  return c;
}

function scan(cs: readonly Case[]): { reports: Map<string, FileReport>; stderr: string; left: string[] } {
  const s = cliSetup();
  try {
    const paths = new Map(cs.map((x) => [x.id, join(s.files, `${x.id}.eml`)]));
    for (const x of cs) writeFileSync(paths.get(x.id)!, attachmentMessage(x.filename, x.bytes));
    const r = runAvfilter(['-f', s.config, '-t', ...paths.values()], { env: { TMPDIR: s.childTmp } });
    return { reports: new Map(cs.map((x) => [x.id, reportFor(r.stdout, paths.get(x.id)!)])), stderr: r.stderr, left: [...leftovers(s.work), ...leftovers(s.childTmp)] };
  } finally {
    s.cleanup();
  }
}

const line = (rep: FileReport | undefined): string => rep?.lines.join(' | ') || 'no line';

test('SquashFS, WIM, xar, lzip and RPM (LZMA-alone, lzip payloads) holding EICAR: FOUND (was OK); lzop and SquashFS-LZ4: a limit (was OK)', () => {
  const cs = cases(true);
  for (const x of cs) assert.ok(!x.bytes.includes(eicar()), `${x.id}: no raw copy of EICAR in the item`);
  const r = scan(cs);
  const failures: string[] = [];
  for (const x of cs) {
    const rep = r.reports.get(x.id)!;
    if (x.expect === 'read' && !rep.names.includes(EICAR_NAME)) failures.push(`${x.id}: expected ${EICAR_NAME} FOUND, got ${line(rep)}`);
    if (x.expect === 'limit' && rep.verdict !== 'error') failures.push(`${x.id}: expected a limit, got ${line(rep)}`);
  }
  assert.deepEqual(failures, [], r.stderr);
  assert.deepEqual(r.left, [], 'no temp file left behind');
});

test('their clean twins: OK where read, a limit (never OK) where not', () => {
  const cs = cases(false);
  const r = scan(cs);
  const failures: string[] = [];
  for (const x of cs) {
    const rep = r.reports.get(x.id)!;
    const want = x.expect === 'read' ? 'clean' : 'error';
    if (rep.verdict !== want) failures.push(`${x.id}: expected ${want}, got ${line(rep)}`);
  }
  assert.deepEqual(failures, [], r.stderr);
});

test('the new magics: each generated file is recognised; near misses are not', () => {
  const of = (b: Buffer): string | undefined => sniff(b.subarray(0, 0x9007), b.length);
  assert.equal(of(squashfs(true, 'xz', false, 0)), 'squashfs');
  assert.equal(of(wim(true, 'LZX', false, 0)), 'wim');
  assert.equal(of(xar(true, 'gzip', false, 0)), 'xar');
  assert.equal(of(lzip(body(true, 0), '-6')), 'lzip');
  assert.equal(of(run('lzop', ['-c'], { input: README })), 'lzop');
  assert.equal(of(rpmCase(false, 'lzma', 1, 0)), 'rpm');
  const patched = (b: Buffer, at: number, ...bytes: number[]): Buffer => { const c = Buffer.from(b); Buffer.from(bytes).copy(c, at); return c; };
  assert.equal(of(patched(squashfs(true, 'xz', false, 0), 28, 9, 0)), undefined, 'squashfs major 9');
  assert.equal(of(patched(wim(true, 'LZX', false, 0), 8, 100, 0)), undefined, 'WIM header of 100 bytes');
  assert.equal(of(patched(xar(true, 'gzip', false, 0), 6, 0, 2)), undefined, 'xar version 2');
  assert.equal(of(patched(lzip(README, '-6'), 4, 0)), undefined, 'lzip version 0');
  assert.equal(of(patched(lzip(README, '-6'), 5, 11)), undefined, 'lzip dictionary 2^11');
  assert.equal(of(Buffer.concat([Buffer.from('LZIP is a compressor.\n'), README])), undefined, 'text about lzip');
  assert.equal(of(patched(rpmCase(false, 'lzma', 1, 0), 96, 0)), undefined, 'an RPM lead without a header');
});

test('an RPM whose headers run past the end is damage (a limit), never an empty package', () => {
  const limits = { maxOutputBytes: 1 << 20, maxMembers: 10, deadline: Date.now() + 10_000 };
  const whole = rpmCase(true, 'lzma', 2, 0);
  const ok = unpackRpm(whole, limits);
  assert.equal(ok.outcome, 'ok');
  assert.equal(sniff(ok.members[0]!.bytes, ok.members[0]!.bytes.length), 'lzma', 'the payload is handed on as it is');
  // the lead is 96 bytes, the headers end at 197
  for (const cut of [100, 111, 150, 170, 196]) assert.equal(unpackRpm(whole.subarray(0, cut), limits).outcome, 'corrupt', `cut at ${cut}`);
  assert.equal(unpackRpm(whole, { ...limits, maxOutputBytes: 10 }).outcome, 'size');
});

test('an lzip file cut short inside its LZMA data is never OK', () => {
  // the header is 6 bytes, the trailer 20: a cut in the trailer alone leaves the data whole
  const cs: Case[] = [0.3, 0.6, 0.9].flatMap((f) => [true, false].map((infected) => {
    const whole = lzip(body(infected, 4000), '-6');
    return { id: `${infected ? 'inf' : 'clean'}-lzip-cut-${f}`, filename: 'invoice.lz', bytes: whole.subarray(0, 6 + Math.floor((whole.length - 26) * f)), expect: 'limit' as const };
  }));
  const r = scan(cs);
  const failures = cs.filter((x) => r.reports.get(x.id)!.verdict === 'clean').map((x) => `${x.id}: ${line(r.reports.get(x.id))}`);
  assert.deepEqual(failures, [], r.stderr);
});
