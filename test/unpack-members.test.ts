/**
 * Members and containers that 7-Zip's run, or a search that stopped early, left unseen while a
 * mainstream reader extracts them (helpers/evasion-shapes.ts memberShapes, several generated
 * variants each), through `avfilter -t` with the embedded engine and with a real clamd as the
 * only engine (the stage's members go to every engine):
 * - a zip or cab entry that holds data but is marked as a directory (DOS/NTFS/VFAT/HPFS
 *   attribute 0x10, unix mode 040755, a trailing slash) or a link (mode 0120777): 7-Zip made a
 *   directory or a link and wrote nothing, so the run looked clean (unzip, Python, bsdtar and
 *   cabextract extract the file): was OK;
 * - LZMA-alone streams (xz --format=lzma, 7-Zip) were not recognised, LZ4 frames (lz4 -d) not
 *   read: was OK;
 * - only the first container behind the first one was opened (cab, junk, cab, junk, payload
 *   cab; a stub, a clean cab, the payload cab), and nothing past the first 8 MiB (a cab behind
 *   a 9 MiB stub, a PDF behind 9 MiB of zeros; cabextract and qpdf read them): was OK.
 * The same shapes holding clean text are OK (no limit).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runAvfilter } from './helpers/avfilter-proc.js';
import { startClamd } from './helpers/clamd.js';
import { attachmentMessage } from './helpers/container-corpus.js';
import { content, lz4, memberShapes, type Shape } from './helpers/evasion-shapes.js';
import { unpackLz4 } from '../src/unpack/formats/lz4.js';
import { EICAR_NAME, cliSetup, leftovers, reportFor } from './helpers/unpack-cli.js';

function write(dir: string, shapes: readonly Shape[], tag: string): Map<string, string> {
  const paths = new Map<string, string>();
  for (const s of shapes) {
    const p = join(dir, `${tag}-${s.id}.eml`);
    writeFileSync(p, attachmentMessage(s.filename, s.bytes, s.contentType));
    paths.set(s.id, p);
  }
  return paths;
}

function embedded(shapes: readonly Shape[], tag: string) {
  const s = cliSetup();
  try {
    const paths = write(s.files, shapes, tag);
    const r = runAvfilter(['-f', s.config, '-t', ...paths.values()], { env: { TMPDIR: s.childTmp } });
    return { reports: new Map(shapes.map((x) => [x.id, reportFor(r.stdout, paths.get(x.id)!)])), stderr: r.stderr, left: [...leftovers(s.work), ...leftovers(s.childTmp)] };
  } finally {
    s.cleanup();
  }
}

const line = (rep: ReturnType<typeof reportFor> | undefined): string => rep?.lines.join(' | ') || 'no line';
const infected = memberShapes(true);
const clean = memberShapes(false);

test(`${infected.length} shapes (members marked as directories or links, LZMA-alone, LZ4, containers after containers and past 8 MiB) through the embedded engine: each FOUND (was OK)`, () => {
  const r = embedded(infected, 'inf');
  const failures: string[] = [];
  for (const s of infected) {
    const rep = r.reports.get(s.id)!;
    if (!rep.names.includes(EICAR_NAME)) failures.push(`${s.id}: expected ${EICAR_NAME} FOUND, got ${line(rep)}`);
  }
  assert.deepEqual(failures, [], r.stderr);
  assert.deepEqual(r.left, [], 'no temp file left behind');
});

test('the same shapes holding clean text: OK, no limit', () => {
  const r = embedded(clean, 'clean');
  const failures: string[] = [];
  for (const s of clean) {
    const rep = r.reports.get(s.id)!;
    if (rep.verdict !== 'clean') failures.push(`${s.id}: expected clean, got ${line(rep)}`);
  }
  assert.deepEqual(failures, [], r.stderr);
});

test('clamd as the only engine finds every shape too, since the members go to it', async () => {
  const c = await startClamd();
  const s = cliSetup();
  try {
    const paths = write(s.files, infected, 'clamd');
    const cfg = join(s.dir, 'clamd.toml');
    writeFileSync(cfg, `tmpdir = "${s.work}"\n\n[[engine]]\ntype = "clamd"\nservers = ["unix:${c.socketPath}"]\n`);
    const r = runAvfilter(['-f', cfg, '-t', ...paths.values()]);
    const failures = infected.filter((x) => !reportFor(r.stdout, paths.get(x.id)!).names.includes(c.names.eicar)).map((x) => `${x.id}: ${line(reportFor(r.stdout, paths.get(x.id)!))}`);
    assert.deepEqual(failures, [], r.stderr);
  } finally {
    s.cleanup();
    await c.stop();
  }
});

/** Files under `dir` holding the payload. */
function holding(dir: string): boolean {
  const p = content(true);
  const walk = (d: string): boolean => readdirSync(d, { withFileTypes: true }).some((e) => {
    const f = join(d, e.name);
    if (e.isDirectory()) return walk(f);
    return e.isFile() && readFileSync(f).includes(p);
  });
  return walk(dir);
}

test('the generators are right: a mainstream reader extracts the payload of each kind (unzip or Python, cabextract or bsdtar, xz, lz4)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'avf-members-'));
  const failures: string[] = [];
  const have = (tool: string): boolean => spawnSync('sh', ['-c', `command -v ${tool}`]).status === 0;
  try {
    for (const s of infected) {
      const file = join(dir, `${s.id}.bin`);
      writeFileSync(file, s.bytes);
      const x = join(dir, s.id);
      let ok: boolean | undefined;
      if (s.id.startsWith('zip-member-')) {
        const py = spawnSync('python3', ['-c', 'import zipfile,sys\nz=zipfile.ZipFile(sys.argv[1])\nfor i in z.infolist(): sys.stdout.buffer.write(z.read(i))', file], { maxBuffer: 1 << 24 });
        ok = py.stdout.includes(content(true));
      } else if (s.id.startsWith('cab-') && (have('cabextract') || have('bsdtar'))) {
        spawnSync('mkdir', ['-p', x]);
        if (have('cabextract')) spawnSync('cabextract', ['-q', '-d', x, file]);
        else spawnSync('bsdtar', ['-xf', file, '-C', x]);
        ok = holding(x);
      } else if (s.id.startsWith('lzma-')) {
        const r = spawnSync('xz', ['-dc', '--format=lzma', file], { maxBuffer: 1 << 26 });
        ok = r.stdout.includes(content(true)) || (s.id.endsWith('-tar') && r.status === 0);
      } else if (s.id.startsWith('lz4-')) {
        const r = spawnSync('lz4', ['-dc', file], { maxBuffer: 1 << 26 });
        ok = r.stdout.includes(content(true)) || (s.id.endsWith('-tar') && r.status === 0);
      }
      if (ok === false) failures.push(`${s.id}: the reader does not give the payload back`);
      if (/^(lz4|lzma)-/.test(s.id) && s.bytes.includes(content(true).subarray(0, content(true).indexOf(0x0a)))) failures.push(`${s.id}: the stream holds the payload as a literal`);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  assert.deepEqual(failures, []);
});

test('the LZ4 reader stops at the unpack limits: a bomb is `size`, a frame cut short `corrupt` with what decoded kept, bytes after the last frame `trailing`', () => {
  const zeros = Buffer.alloc(8 << 20);
  const bomb = lz4(zeros, ['-9']);
  const limits = { maxOutputBytes: 1 << 20, maxMembers: 10, deadline: Date.now() + 30_000 };
  assert.equal(unpackLz4(bomb, limits).outcome, 'size');
  const whole = unpackLz4(bomb, { ...limits, maxOutputBytes: 16 << 20 });
  assert.equal(whole.outcome, 'ok');
  assert.ok(whole.members[0]!.bytes.equals(zeros));
  const text = Buffer.from('a line of text that repeats, with a number: 12345\n'.repeat(20_000));
  const frame = lz4(text, ['-B4']);
  const cut = unpackLz4(frame.subarray(0, frame.length >> 1), { ...limits, maxOutputBytes: 16 << 20 });
  assert.equal(cut.outcome, 'corrupt');
  assert.ok(cut.members[0]!.bytes.length > 0 && text.subarray(0, cut.members[0]!.bytes.length).equals(cut.members[0]!.bytes));
  const after = unpackLz4(Buffer.concat([frame, Buffer.from('junk after it')]), { ...limits, maxOutputBytes: 16 << 20 });
  assert.equal(after.outcome, 'ok');
  assert.equal(after.trailing, true);
});
