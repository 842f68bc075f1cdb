/**
 * The container stage end to end through the CLI: every archive of the generated corpus
 * (helpers/container-corpus.ts), attached in base64 to a message, scanned by `avfilter -t` with
 * the embedded engine alone. The payload inside is FOUND, -v names the member inside the
 * container; the same archives with clean text in place of the payload are OK; encrypted
 * archives are `Encrypted.<Format> FOUND` whatever action.encrypted says. The generators are
 * checked first, against 7-Zip and Python's own readers, so a failure below is avfilter's.
 * Prints the table: kind, format, tool, verdict.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runAvfilter } from './helpers/avfilter-proc.js';
import { ARCHIVE_KINDS, PASSWORD, PYTHON, PAYLOAD_MEMBER, allArchives, attachmentMessage, makeArchive, payloadBytes, pdfWithAttachment, type ArchiveKind } from './helpers/container-corpus.js';
import { eicar } from './helpers/eicar.js';
import { EICAR_NAME, cliSetup, leftovers, reportFor } from './helpers/unpack-cli.js';

const table = new Map<string, { format: string; tool: string; infected?: string; clean?: string; verbose?: string }>();

/** What 7-Zip's listing says of the payload member's method, by kind (the generator did what it claims). */
const METHOD: Readonly<Record<string, RegExp>> = {
  'zip-stored': /^Store$/, 'zip-deflate': /^Deflate$/, 'zip-bzip2': /^BZip2$/, 'zip-lzma': /^LZMA/, 'zip-zip64': /^Deflate$/,
  'zip-deflate64': /^Deflate64$/, '7z': /^LZMA2/, 'cab': /^MSZip/i,
  'enc-zip-zipcrypto': /ZipCrypto/, 'enc-zip-aes': /AES-256/, 'enc-7z': /7zAES/, 'enc-7z-headers': /7zAES/,
};

/** Magic numbers by kind (first bytes, or at an offset). */
const MAGIC: Readonly<Record<string, [number, string]>> = {
  'tar-ustar': [257, '7573746172003030'], 'tar-gnu': [257, '7573746172202000'], 'tar-pax': [257, '7573746172003030'],
  'tar-gz': [0, '1f8b'], 'gz': [0, '1f8b'], 'gz-multi': [0, '1f8b'], 'bz2-multi': [0, '425a68'], 'xz-multi': [0, 'fd377a585a00'], 'tar-bz2': [0, '425a68'], 'bz2': [0, '425a68'],
  'tar-xz': [0, 'fd377a585a00'], 'xz': [0, 'fd377a585a00'],
  'cpio-bin': [0, 'c771'], 'cpio-odc': [0, '303730373037'], 'cpio-newc': [0, '303730373031'],
  'zstd': [0, '28b52ffd'], 'compress-Z': [0, '1f9d'], 'iso': [0x8001, '4344303031'], 'lzh': [2, '2d6c68'], 'arj': [0, '60ea'],
  '7z': [0, '377abcaf271c'], 'nested-zip-targz-7z': [0, '377abcaf271c'], 'enc-7z': [0, '377abcaf271c'], 'enc-7z-headers': [0, '377abcaf271c'],
};

function sevenZip(args: string[], input: Buffer, name: string): { status: number | null; stdout: Buffer; stderr: string } {
  const dir = mkdtempSync(join(tmpdir(), 'avf-7zcheck-'));
  try {
    const file = join(dir, name);
    writeFileSync(file, input);
    const r = spawnSync('7z', [...args, file], { maxBuffer: 1 << 28 });
    return { status: r.status, stdout: r.stdout, stderr: r.stderr.toString() };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function methodOf(listing: string, member: string): string | undefined {
  const block = listing.split('\n\n').find((b) => b.includes(`Path = ${member}\n`) || b.endsWith(`Path = ${member}`));
  return /^Method = (.*)$/m.exec(block ?? '')?.[1];
}

test('the generated archives are what they claim (7-Zip and Python read them; methods and magic as named)', () => {
  const archives = allArchives();
  const failures: string[] = [];
  for (const k of ARCHIVE_KINDS) {
    const bytes = archives.get(k.kind)!;
    const name = `x.${k.filename.split('.').slice(1).join('.')}`;
    const pw = k.encryptedName ? [`-p${PASSWORD}`] : [];
    const t = sevenZip(['t', ...pw], bytes, name);
    if (t.status !== 0) failures.push(`${k.kind}: 7z t exited ${t.status}: ${t.stderr.slice(0, 300)}`);
    if (k.encryptedName) {
      const bad = sevenZip(['t', '-pwrong-password'], bytes, name);
      if (bad.status === 0) failures.push(`${k.kind}: 7z t accepts a wrong password: not encrypted`);
    }
    if (k.kind.startsWith('zip-')) {
      const dir = mkdtempSync(join(tmpdir(), 'avf-zipcheck-'));
      try {
        writeFileSync(join(dir, 'x.zip'), bytes);
        const z = spawnSync(PYTHON, ['-m', 'zipfile', '-t', join(dir, 'x.zip')], { encoding: 'utf8' });
        // Python's zipfile cannot decompress deflate64; it still reads the directory
        if (z.status !== 0 && k.kind !== 'zip-deflate64') failures.push(`${k.kind}: python3 -m zipfile -t exited ${z.status}: ${z.stderr.slice(0, 300)}`);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    }
    const want = METHOD[k.kind];
    if (want) {
      const l = sevenZip(['l', '-slt', ...pw], bytes, name);
      const m = methodOf(l.stdout.toString(), PAYLOAD_MEMBER);
      if (!m || !want.test(m)) failures.push(`${k.kind}: method ${m ?? 'not listed'}, expected ${want}`);
    }
    const magic = MAGIC[k.kind];
    if (magic && bytes.subarray(magic[0], magic[0] + magic[1].length / 2).toString('hex') !== magic[1]) failures.push(`${k.kind}: no ${magic[1]} at ${magic[0]}`);
    if (k.kind === 'zip-zip64' && !bytes.subarray(30 + PAYLOAD_MEMBER.length - 2).includes(Buffer.from([0x01, 0x00]))) failures.push('zip-zip64: no zip64 extra field');
    // the payload comes out whole (the nested kind is checked level by level below)
    if (!k.encryptedName && k.kind !== 'nested-zip-targz-7z') {
      const x = sevenZip(['e', '-so', ...pw], bytes, name);
      const out = x.stdout;
      if (!out.includes(payloadBytes())) failures.push(`${k.kind}: 7z e -so does not give the payload back`);
    }
  }
  // nested: 7z > tar.gz > zip > payload, three archive levels
  const nested = sevenZip(['e', '-so'], archives.get('nested-zip-targz-7z')!, 'n.7z').stdout;
  const tar = sevenZip(['e', '-so'], nested, 'n.tar.gz').stdout;
  const zip = sevenZip(['e', '-so'], tar, 'n.tar').stdout;
  const inner = sevenZip(['e', '-so', '-i!' + PAYLOAD_MEMBER], zip, 'n.zip').stdout;
  if (!inner.equals(payloadBytes())) failures.push('nested-zip-targz-7z: the payload is not at the third level');
  // a compressed kind must hide the payload from a scanner that does not unpack (else it proves nothing)
  for (const kind of ['zip-deflate', 'zip-bzip2', 'zip-lzma', 'zip-deflate64', 'tar-gz', 'tar-bz2', 'tar-xz', 'gz', 'bz2', 'xz', 'gz-multi', 'bz2-multi', 'xz-multi', '7z', 'cab', 'zstd', 'compress-Z', 'lzh', 'nested-zip-targz-7z']) {
    if (archives.get(kind)!.includes(eicar())) failures.push(`${kind}: the payload is readable as it is in the archive`);
  }
  assert.deepEqual(failures, []);
});

interface Run { paths: Map<string, string>; stdout: string; code: number | null; stderr: string }

function scanAll(kinds: readonly ArchiveKind[], opts: { infected: boolean; verbose?: boolean; extra?: string }): Run & { left: string[] } {
  const s = cliSetup(opts.extra);
  try {
    const archives = allArchives({ infected: opts.infected });
    const paths = new Map<string, string>();
    for (const k of kinds) {
      const p = join(s.files, `${k.kind}.eml`);
      writeFileSync(p, attachmentMessage(k.filename, archives.get(k.kind)!));
      paths.set(k.kind, p);
    }
    const r = runAvfilter(['-f', s.config, '-t', ...(opts.verbose ? ['-v'] : []), ...paths.values()], { env: { TMPDIR: s.childTmp } });
    return { paths, stdout: r.stdout, code: r.code, stderr: r.stderr, left: [...leftovers(s.work), ...leftovers(s.childTmp)] };
  } finally {
    s.cleanup();
  }
}

const row = (k: ArchiveKind) => {
  let r = table.get(k.kind);
  if (!r) table.set(k.kind, (r = { format: k.format, tool: k.tool }));
  return r;
};

test('avfilter -t, embedded engine: the payload inside every archive is FOUND; encrypted ones are Encrypted.<Format> FOUND', () => {
  const r = scanAll(ARCHIVE_KINDS, { infected: true });
  const failures: string[] = [];
  for (const k of ARCHIVE_KINDS) {
    const rep = reportFor(r.stdout, r.paths.get(k.kind)!);
    row(k).infected = rep.lines.map((l) => l.slice(r.paths.get(k.kind)!.length + 2)).join('; ') || 'no line';
    const want = k.encryptedName ?? EICAR_NAME;
    // an encrypted archive is reported as such; the engine cannot see its payload
    if (!rep.names.includes(want)) failures.push(`${k.kind}: expected ${want} FOUND, got ${rep.lines.join(' | ') || 'no line'}`);
  }
  assert.deepEqual(failures, [], r.stderr);
  assert.equal(r.code, 1, 'exit status 1: something was found');
  assert.deepEqual(r.left, [], 'no temp file left behind');
});

test('avfilter -t -v: the FOUND line names the member inside the container and the attachment', () => {
  const kinds = ARCHIVE_KINDS.filter((k) => !k.encryptedName);
  const r = scanAll(kinds, { infected: true, verbose: true });
  const failures: string[] = [];
  for (const k of kinds) {
    const rep = reportFor(r.stdout, r.paths.get(k.kind)!);
    const line = rep.lines.find((l) => l.includes(`${EICAR_NAME} FOUND`));
    row(k).verbose = line?.slice(r.paths.get(k.kind)!.length + 2) ?? 'no line';
    // gzip, bzip2 and xz hold one nameless stream: only the archives have a member name to show
    const member = k.single ? undefined : k.kind === 'nested-zip-targz-7z' ? 'inner.zip' : PAYLOAD_MEMBER;
    if (!line) failures.push(`${k.kind}: no FOUND line: ${rep.lines.join(' | ')}`);
    else if (member !== undefined && !line.includes(member)) failures.push(`${k.kind}: -v does not name the member ${member}: ${line}`);
    else if (!line.includes(k.filename) && !line.includes('part 2')) failures.push(`${k.kind}: -v does not say which attachment: ${line}`);
  }
  assert.deepEqual(failures, [], r.stderr);
});

test('avfilter -t: the same archives holding clean text are OK (no false positive, no limit, no error)', () => {
  const kinds = ARCHIVE_KINDS.filter((k) => !k.encryptedName);
  const r = scanAll(kinds, { infected: false });
  const failures: string[] = [];
  for (const k of kinds) {
    const rep = reportFor(r.stdout, r.paths.get(k.kind)!);
    row(k).clean = rep.verdict;
    if (rep.verdict !== 'clean') failures.push(`${k.kind}: expected OK, got ${rep.lines.join(' | ') || 'no line'}`);
  }
  assert.deepEqual(failures, [], r.stderr);
  assert.equal(r.code, 0);
  assert.deepEqual(r.left, []);
});

test('avfilter -t: encrypted archives holding clean text are still Encrypted.<Format> FOUND, also with action.encrypted = "pass"', () => {
  const kinds = ARCHIVE_KINDS.filter((k) => k.encryptedName);
  for (const extra of ['', '[action]\nencrypted = "pass"\n']) {
    const r = scanAll(kinds, { infected: false, extra });
    const failures: string[] = [];
    for (const k of kinds) {
      const rep = reportFor(r.stdout, r.paths.get(k.kind)!);
      if (rep.verdict !== 'infected' || !rep.names.includes(k.encryptedName!)) failures.push(`${k.kind} (${extra || 'default config'}): expected ${k.encryptedName} FOUND, got ${rep.lines.join(' | ') || 'no line'}`);
      if (rep.lines.length !== 1) failures.push(`${k.kind}: ${rep.lines.length} lines`);
    }
    assert.deepEqual(failures, [], r.stderr);
    assert.equal(r.code, 1, `exit status with ${extra || 'default config'}`);
  }
});

test('own corpus table', () => {
  const lines = ['| kind | format | made by | infected archive | -v | clean archive |', '|---|---|---|---|---|---|'];
  for (const [kind, r] of table) lines.push(`| ${kind} | ${r.format} | ${r.tool} | ${r.infected ?? '-'} | ${r.verbose ?? '-'} | ${r.clean ?? '-'} |`);
  console.log(lines.join('\n'));
  assert.equal(table.size, ARCHIVE_KINDS.length);
});

test('regression: a zip that readers find from its end record (bytes before it: 1 byte, a self-extractor stub, a PNG, another zip; its first signature damaged) is never OK', () => {
  // unzip and Python's zipfile find a zip by its end-of-central-directory record at the end of
  // the file; sniffing "PK\3\4" at offset 0 only passed these as plain bytes (OK). ClamAV finds
  // the first two; the last one (a clean zip, then the zip with the payload) it misses too.
  const zip = makeArchive('zip-deflate', [{ name: 'invoice.com', data: payloadBytes() }]);
  const png = Buffer.concat([Buffer.from('89504e470d0a1a0a0000000d49484452000000010000000108060000001f15c489', 'hex'), Buffer.from('0000000049454e44ae426082', 'hex')]);
  const s = cliSetup();
  try {
    const cases = new Map<string, string>();
    const prefixes: Array<[string, Buffer]> = [
      ['one-byte', Buffer.from('\n')], ['stub-1000', Buffer.alloc(1000, 0x4d)], ['png', png], ['zip-then-zip', allArchives({ infected: false }).get('zip-deflate')!],
    ];
    for (const [name, prefix] of prefixes) {
      const p = join(s.files, `${name}.eml`);
      writeFileSync(p, attachmentMessage('invoice.zip', Buffer.concat([prefix, zip])));
      cases.set(name, p);
    }
    // found by the fuzz suite (seed 777): the first local header's signature damaged, "RK\3\4";
    // unzip still extracts the second member, the payload, through the central directory
    const damaged = Buffer.from(allArchives().get('zip-deflate')!);
    damaged[0] = 0x52;
    cases.set('first-signature-damaged', join(s.files, 'first-signature-damaged.eml'));
    writeFileSync(cases.get('first-signature-damaged')!, attachmentMessage('invoice.zip', damaged));
    const r = runAvfilter(['-f', s.config, '-t', ...cases.values()], { env: { TMPDIR: s.childTmp } });
    const failures: string[] = [];
    for (const [name, p] of cases) {
      const rep = reportFor(r.stdout, p);
      if (rep.verdict !== 'infected' && rep.verdict !== 'error') failures.push(`${name}: ${rep.lines.join(' | ') || 'no line'}`);
    }
    assert.deepEqual(failures, []);
  } finally {
    s.cleanup();
  }
});

test('regression: a gzip followed by zero padding (gzip -t accepts it, as tape and block writers leave it) is read, not a damaged-archive ERROR', () => {
  // the 7-Zip reader reported "data after the end of the payload" as damage: a limit (451) for
  // a clean file, deferred until it bounces
  const s = cliSetup();
  try {
    const pad = Buffer.alloc(512);
    const clean = join(s.files, 'clean.eml');
    const infected = join(s.files, 'infected.eml');
    writeFileSync(clean, attachmentMessage('notes.txt.gz', Buffer.concat([allArchives({ infected: false }).get('gz')!, pad])));
    writeFileSync(infected, attachmentMessage('invoice.com.gz', Buffer.concat([allArchives().get('gz')!, pad])));
    const r = runAvfilter(['-f', s.config, '-t', clean, infected], { env: { TMPDIR: s.childTmp } });
    assert.equal(reportFor(r.stdout, clean).verdict, 'clean', r.stdout);
    assert.deepEqual(reportFor(r.stdout, infected).names, [EICAR_NAME], r.stdout);
  } finally {
    s.cleanup();
  }
});

test('regression: a PDF whose attached file is FlateDecode with a PNG predictor (/DecodeParms /Predictor 12) is read through the predictor', () => {
  // the PDF reader stopped before the predictor, so the member was the predicted rows and the
  // payload never contiguous: OK, where qpdf (and every viewer) saves the payload itself
  const s = cliSetup();
  try {
    const cases = new Map<string, string>();
    for (const cols of [17, 68]) {
      const pdf = pdfWithAttachment('invoice.com', payloadBytes(), { predictorColumns: cols });
      const file = join(s.dir, `p${cols}.pdf`);
      writeFileSync(file, pdf);
      // the generator is right: qpdf gives the payload back through the predictor (the last
      // row filled up with zeros)
      const q = spawnSync('qpdf', ['--show-attachment=invoice.com', file], { maxBuffer: 1 << 24 });
      assert.equal(q.status, 0, `qpdf: ${q.error?.message ?? q.stderr} (.ci/run installs qpdf)`);
      assert.ok(q.stdout.subarray(0, payloadBytes().length).equals(payloadBytes()), 'qpdf does not give the payload back');
      const p = join(s.files, `predictor-${cols}.eml`);
      writeFileSync(p, attachmentMessage('statement.pdf', pdf, 'application/pdf'));
      cases.set(`columns ${cols}`, p);
    }
    // the same PDF without a predictor is found: the case differs only by the predictor
    const plain = join(s.files, 'no-predictor.eml');
    writeFileSync(plain, attachmentMessage('statement.pdf', pdfWithAttachment('invoice.com', payloadBytes()), 'application/pdf'));
    cases.set('no predictor', plain);
    const r = runAvfilter(['-f', s.config, '-t', ...cases.values()], { env: { TMPDIR: s.childTmp } });
    const failures = [...cases].filter(([, p]) => !reportFor(r.stdout, p).names.includes(EICAR_NAME)).map(([n, p]) => `${n}: ${reportFor(r.stdout, p).lines.join(' | ') || 'no line'}`);
    assert.deepEqual(failures, [], r.stderr);
  } finally {
    s.cleanup();
  }
});
