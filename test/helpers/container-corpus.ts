/**
 * The container corpus: archives and compressed files built at test time, each holding the
 * EICAR payload (eicar(), never written into the repository) as docs/eicar.com beside a clean
 * readme.txt, made by the tools a sender would use: Python's zipfile / tarfile / gzip / bz2 /
 * lzma, and Debian's 7z (p7zip-full), cpio, gcab, zstd, compress (ncompress), genisoimage,
 * lha (jlha-utils) and arj. Plus nesting (a zip in a tar.gz in a 7z)
 * and encrypted archives (ZipCrypto and AES zips, 7z with and without encrypted headers).
 *
 * Owns: the generators (buildArchive, by kind), the list of kinds with the container format the
 * stage should name, and wrapping bytes as a base64 attachment of a mail message.
 * Inputs: a scratch directory (the payload tree is written there, in a temp dir only).
 * Outputs: archive bytes. Fails with: an Error naming the tool and its stderr when a tool is
 * missing or fails (CI installs them: .ci/run; a missing tool must fail the suite, not skip it).
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { deflateSync } from 'node:zlib';
import { eicar } from './eicar.js';
import { base64Lines } from './mail.js';

/** Where the payload sits inside every archive: the member name -v must show. */
export const PAYLOAD_MEMBER = 'docs/eicar.com';
export const CLEAN_MEMBER = 'readme.txt';
/** The password of the encrypted archives (as such mail gives it in the body). */
export const PASSWORD = 'infected';

/**
 * Text after the payload so that every compressor really compresses: 7-Zip stores a member
 * that does not shrink (a bare 68-byte EICAR would be "Store" whatever method was asked).
 */
const PADDING = 'This line pads the test file so that it compresses.\n'.repeat(40);

export function payloadBytes(): Buffer {
  return Buffer.concat([eicar(), Buffer.from('\n' + PADDING, 'latin1')]);
}

export function cleanBytes(): Buffer {
  return Buffer.from('Nothing to see here.\n'.repeat(50), 'latin1');
}

export interface ArchiveKind {
  /** Also the attachment's file name stem. */
  readonly kind: string;
  /** The container format(s) the stage should walk, outermost first (for the table). */
  readonly format: string;
  /** What made it. */
  readonly tool: string;
  /** The attachment's file name. */
  readonly filename: string;
  /** Only a single file inside (gzip, bzip2, xz): the payload alone. */
  readonly single?: boolean;
  /** The `-t` name an encrypted archive must get (`Encrypted.Zip`); undefined when not encrypted. */
  readonly encryptedName?: string;
}

export const ARCHIVE_KINDS: readonly ArchiveKind[] = [
  { kind: 'zip-stored', format: 'zip (stored)', tool: 'python zipfile', filename: 'invoice.zip' },
  { kind: 'zip-deflate', format: 'zip (deflate)', tool: 'python zipfile', filename: 'invoice.zip' },
  { kind: 'zip-bzip2', format: 'zip (bzip2)', tool: 'python zipfile', filename: 'invoice.zip' },
  { kind: 'zip-lzma', format: 'zip (LZMA)', tool: 'python zipfile', filename: 'invoice.zip' },
  { kind: 'zip-zip64', format: 'zip64 (deflate)', tool: 'python zipfile', filename: 'invoice.zip' },
  { kind: 'zip-deflate64', format: 'zip (deflate64)', tool: '7z', filename: 'invoice.zip' },
  { kind: 'tar-ustar', format: 'tar (ustar)', tool: 'python tarfile', filename: 'invoice.tar' },
  { kind: 'tar-gnu', format: 'tar (gnu)', tool: 'python tarfile', filename: 'invoice.tar' },
  { kind: 'tar-pax', format: 'tar (pax)', tool: 'python tarfile', filename: 'invoice.tar' },
  { kind: 'tar-gz', format: 'gzip > tar', tool: 'python tarfile', filename: 'invoice.tar.gz' },
  { kind: 'tar-bz2', format: 'bzip2 > tar', tool: 'python tarfile', filename: 'invoice.tar.bz2' },
  { kind: 'tar-xz', format: 'xz > tar', tool: 'python tarfile', filename: 'invoice.tar.xz' },
  { kind: 'gz', format: 'gzip', tool: 'python gzip', filename: 'invoice.com.gz', single: true },
  { kind: 'bz2', format: 'bzip2', tool: 'python bz2', filename: 'invoice.com.bz2', single: true },
  { kind: 'xz', format: 'xz', tool: 'python lzma', filename: 'invoice.com.xz', single: true },
  // several members / streams one after the other: gzip -d, bzip2 -d and xz -d output them all
  // (the payload is in the second; ClamAV 1.4 misses it in bzip2)
  { kind: 'gz-multi', format: 'gzip (2 members)', tool: 'python gzip', filename: 'invoice.com.gz', single: true },
  { kind: 'bz2-multi', format: 'bzip2 (2 streams)', tool: 'python bz2', filename: 'invoice.com.bz2', single: true },
  { kind: 'xz-multi', format: 'xz (2 streams)', tool: 'python lzma', filename: 'invoice.com.xz', single: true },
  { kind: '7z', format: '7z (LZMA2)', tool: '7z', filename: 'invoice.7z' },
  { kind: 'cpio-bin', format: 'cpio (bin)', tool: 'cpio', filename: 'invoice.cpio' },
  { kind: 'cpio-odc', format: 'cpio (odc)', tool: 'cpio', filename: 'invoice.cpio' },
  { kind: 'cpio-newc', format: 'cpio (newc)', tool: 'cpio', filename: 'invoice.cpio' },
  { kind: 'cab', format: 'cab (MSZIP)', tool: 'gcab', filename: 'invoice.cab' },
  { kind: 'zstd', format: 'zstd', tool: 'zstd', filename: 'invoice.com.zst', single: true },
  { kind: 'compress-Z', format: 'compress (.Z, LZW)', tool: 'ncompress', filename: 'invoice.com.Z', single: true },
  { kind: 'iso', format: 'ISO 9660 (Rock Ridge)', tool: 'genisoimage', filename: 'invoice.iso' },
  { kind: 'lzh', format: 'LHA (-lh5-)', tool: 'lha (jlha-utils)', filename: 'invoice.lzh' },
  { kind: 'arj', format: 'ARJ', tool: 'arj', filename: 'invoice.arj' },
  { kind: 'nested-zip-targz-7z', format: '7z > gzip > tar > zip', tool: 'python zipfile, tarfile; 7z', filename: 'invoice.7z' },
  { kind: 'enc-zip-zipcrypto', format: 'zip (ZipCrypto)', tool: '7z', filename: 'invoice.zip', encryptedName: 'Encrypted.Zip' },
  { kind: 'enc-zip-aes', format: 'zip (AES-256)', tool: '7z', filename: 'invoice.zip', encryptedName: 'Encrypted.Zip' },
  { kind: 'enc-7z', format: '7z (AES-256)', tool: '7z', filename: 'invoice.7z', encryptedName: 'Encrypted.7z' },
  { kind: 'enc-7z-headers', format: '7z (AES-256, encrypted headers)', tool: '7z', filename: 'invoice.7z', encryptedName: 'Encrypted.7z' },
];

/**
 * One Python program for every Python-made kind: argv = kind, output file, source directory
 * (every regular file under it, sorted, stored under its relative name; the single-file kinds
 * take the payload alone). Fixed dates and sorted names keep the output reproducible.
 */
const PY_BUILD = String.raw`
import sys, os, io, zipfile, tarfile, gzip, bz2, lzma
kind, out, src = sys.argv[1], sys.argv[2], sys.argv[3]
files = []
for root, dirs, names in os.walk(src):
    dirs.sort()
    for n in sorted(names):
        p = os.path.join(root, n)
        files.append((os.path.relpath(p, src), p))
def data(p):
    with open(p, 'rb') as f:
        return f.read()
def zipit(method, zip64=False):
    with zipfile.ZipFile(out, 'w') as z:
        for arc, p in files:
            zi = zipfile.ZipInfo(arc, date_time=(2020, 1, 1, 0, 0, 0))
            zi.compress_type = method
            zi.external_attr = 0o100644 << 16
            with z.open(zi, 'w', force_zip64=zip64) as f:
                f.write(data(p))
def tarit(mode, fmt):
    with tarfile.open(out, mode, format=fmt) as t:
        for arc, p in files:
            ti = tarfile.TarInfo(arc)
            b = data(p)
            ti.size = len(b)
            ti.mtime = 1577836800
            ti.mode = 0o644
            if fmt == tarfile.PAX_FORMAT:
                ti.pax_headers = {'comment': 'pax extended header'}
            t.addfile(ti, io.BytesIO(b))
single = data(os.path.join(src, sys.argv[4])) if len(sys.argv) > 4 else None
if kind == 'zip-stored': zipit(zipfile.ZIP_STORED)
elif kind == 'zip-deflate': zipit(zipfile.ZIP_DEFLATED)
elif kind == 'zip-bzip2': zipit(zipfile.ZIP_BZIP2)
elif kind == 'zip-lzma': zipit(zipfile.ZIP_LZMA)
elif kind == 'zip-zip64': zipit(zipfile.ZIP_DEFLATED, zip64=True)
elif kind == 'tar-ustar': tarit('w', tarfile.USTAR_FORMAT)
elif kind == 'tar-gnu': tarit('w', tarfile.GNU_FORMAT)
elif kind == 'tar-pax': tarit('w', tarfile.PAX_FORMAT)
elif kind == 'tar-gz': tarit('w:gz', tarfile.PAX_FORMAT)
elif kind == 'tar-bz2': tarit('w:bz2', tarfile.PAX_FORMAT)
elif kind == 'tar-xz': tarit('w:xz', tarfile.PAX_FORMAT)
elif kind in ('gz-multi', 'bz2-multi', 'xz-multi'):
    first = b'Nothing in this first member.\n' * 20
    one = {'gz-multi': lambda b: gzip.compress(b, mtime=0), 'bz2-multi': bz2.compress, 'xz-multi': lambda b: lzma.compress(b, format=lzma.FORMAT_XZ)}[kind]
    with open(out, 'wb') as f: f.write(one(first) + one(single))
elif kind == 'gz':
    with open(out, 'wb') as f: f.write(gzip.compress(single, mtime=0))
elif kind == 'bz2':
    with open(out, 'wb') as f: f.write(bz2.compress(single))
elif kind == 'xz':
    with open(out, 'wb') as f: f.write(lzma.compress(single, format=lzma.FORMAT_XZ))
else:
    sys.exit('unknown kind ' + kind)
`;

function run(cmd: string, args: readonly string[], opts: { cwd?: string; input?: string | Buffer } = {}): Buffer {
  const r = spawnSync(cmd, args, { cwd: opts.cwd, input: opts.input, maxBuffer: 1 << 30 });
  if (r.error) throw new Error(`${cmd}: ${r.error.message} (is it installed? .ci/run installs it)`);
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} exited ${r.status}: ${r.stderr.toString().slice(0, 2000)}`);
  return r.stdout;
}

/**
 * Debian's Python (.ci/run installs python3) before whatever `python3` the PATH finds first: a
 * version manager's shim (pyenv) is a shell script that takes a second to start here.
 */
export const PYTHON = existsSync('/usr/bin/python3') ? '/usr/bin/python3' : 'python3';

export function python(script: string, args: readonly string[], cwd?: string): Buffer {
  return run(PYTHON, ['-c', script, ...args], cwd === undefined ? {} : { cwd });
}

/** 7-Zip quietly, answering yes. */
export function sevenZip(args: readonly string[], cwd?: string): Buffer {
  return run('7z', [...args, '-y', '-bd', '-bso0', '-bsp0'], cwd === undefined ? {} : { cwd });
}

export interface ArchiveFile {
  /** Relative path inside the archive ("docs/eicar.com"). */
  readonly name: string;
  readonly data: Buffer;
}

/** The corpus' tree: docs/eicar.com (the payload, or clean text when not `infected`) and readme.txt. */
export function payloadFiles(infected = true): ArchiveFile[] {
  return [
    { name: PAYLOAD_MEMBER, data: infected ? payloadBytes() : Buffer.from(PADDING, 'latin1') },
    { name: CLEAN_MEMBER, data: cleanBytes() },
  ];
}

function writeTree(dir: string, files: readonly ArchiveFile[]): void {
  for (const f of files) {
    const p = join(dir, f.name);
    mkdirSync(dirname(p), { recursive: true });
    writeFileSync(p, f.data);
  }
}

function pyArchive(kind: string, src: string, out: string, single?: string): void {
  python(PY_BUILD, [kind, out, src, ...(single ? [single] : [])]);
}

/**
 * Builds an archive of `kind` (see ARCHIVE_KINDS) holding `files` (the single-stream kinds,
 * gz / bz2 / xz, hold the first file alone); returns its bytes. Works in a temp directory of
 * its own, removed before it returns.
 */
export function makeArchive(kind: string, files: readonly ArchiveFile[]): Buffer {
  const scratch = mkdtempSync(join(tmpdir(), 'avf-archive-'));
  try {
    const src = join(scratch, 'src');
    mkdirSync(src);
    writeTree(src, files);
    // with an extension (7-Zip appends its own to a name without one); tarfile writes this
    // name, less ".gz", into the gzip header of a tar.gz: "archive.tar", as a sender's would be
    const out = join(scratch, 'archive.tar.gz');
    const names = files.map((f) => f.name);
    switch (kind) {
      case 'gz':
      case 'bz2':
      case 'xz':
      case 'gz-multi':
      case 'bz2-multi':
      case 'xz-multi':
        pyArchive(kind, src, out, names[0]);
        break;
      case 'zip-deflate64':
        sevenZip(['a', '-tzip', '-mm=Deflate64', out, ...names], src);
        break;
      case '7z':
        sevenZip(['a', '-t7z', out, ...names], src);
        break;
      case 'enc-zip-zipcrypto':
        sevenZip(['a', '-tzip', `-p${PASSWORD}`, '-mem=ZipCrypto', out, ...names], src);
        break;
      case 'enc-zip-aes':
        sevenZip(['a', '-tzip', `-p${PASSWORD}`, '-mem=AES256', out, ...names], src);
        break;
      case 'enc-7z':
        sevenZip(['a', '-t7z', `-p${PASSWORD}`, out, ...names], src);
        break;
      case 'enc-7z-headers':
        sevenZip(['a', '-t7z', `-p${PASSWORD}`, '-mhe=on', out, ...names], src);
        break;
      case 'cpio-bin':
      case 'cpio-odc':
      case 'cpio-newc': {
        // directories first, as `find` lists them
        const dirs = [...new Set(names.flatMap((n) => n.split('/').slice(0, -1).map((_, i, a) => a.slice(0, i + 1).join('/'))))];
        writeFileSync(out, run('cpio', ['-o', '--quiet', '-H', kind.slice(5)], { cwd: src, input: [...dirs, ...names].join('\n') + '\n' }));
        break;
      }
      case 'cab':
        run('gcab', ['-c', '-z', out, ...names], { cwd: src });
        break;
      case 'zstd':
        writeFileSync(out, run('zstd', ['-q', '-c', names[0]!], { cwd: src }));
        break;
      case 'compress-Z':
        writeFileSync(out, run('compress', ['-c', names[0]!], { cwd: src }));
        break;
      case 'iso':
        run('genisoimage', ['-quiet', '-R', '-o', out, '.'], { cwd: src });
        break;
      case 'lzh':
        // lha names its output by the extension it is given
        run('lha', ['aq', 'out.lzh', ...names], { cwd: src });
        writeFileSync(out, readFileSync(join(src, 'out.lzh')));
        break;
      case 'arj':
        run('arj', ['a', '-i', '-y', 'out.arj', ...names], { cwd: src });
        writeFileSync(out, readFileSync(join(src, 'out.arj')));
        break;
      case 'nested-zip-targz-7z': {
        // three archive levels: the files in inner.zip, that in middle.tar.gz, that in a 7z
        const zip = makeArchive('zip-deflate', files);
        const tgz = makeArchive('tar-gz', [{ name: 'inner.zip', data: zip }]);
        return makeArchive('7z', [{ name: 'middle.tar.gz', data: tgz }]);
      }
      default:
        pyArchive(kind, src, out);
    }
    return readFileSync(out);
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
}

/** Every kind's archive by kind, built once per process (the tools take ~50 ms a call). */
const built = new Map<boolean, Map<string, Buffer>>();
export function allArchives(opts: { infected?: boolean } = {}): Map<string, Buffer> {
  const infected = opts.infected ?? true;
  let m = built.get(infected);
  if (m) return m;
  m = new Map(ARCHIVE_KINDS.map((k) => [k.kind, makeArchive(k.kind, payloadFiles(infected))]));
  built.set(infected, m);
  return m;
}

/** A mail message with `bytes` as a base64 attachment (part 2) after a short text part. */
export function attachmentMessage(filename: string, bytes: Buffer, contentType = 'application/octet-stream', subject = 'documents'): Buffer {
  const head = [
    'From: sender@example.test', 'To: sink@harness.test', `Subject: ${subject}`, 'MIME-Version: 1.0',
    'Content-Type: multipart/mixed; boundary="=_container"', '',
    '--=_container', 'Content-Type: text/plain', '', 'Please see the attachment.', '',
    '--=_container', `Content-Type: ${contentType}; name="${filename}"`, 'Content-Transfer-Encoding: base64',
    `Content-Disposition: attachment; filename="${filename}"`, '', '',
  ].join('\n');
  return Buffer.concat([Buffer.from(head, 'latin1'), Buffer.from(base64Lines(bytes), 'latin1'), Buffer.from('--=_container--\n', 'latin1')]);
}

/**
 * A one-page PDF with `data` as an embedded file (a /Filespec in the /EmbeddedFiles name tree),
 * its stream FlateDecode; with `predictorColumns`, PNG-predicted first ("Up" rows of that many
 * bytes, /DecodeParms /Predictor 12), which every reader undoes as part of FlateDecode.
 */
export function pdfWithAttachment(name: string, data: Buffer, opts: { predictorColumns?: number } = {}): Buffer {
  let raw = data;
  let parms = '';
  const cols = opts.predictorColumns;
  if (cols !== undefined) {
    const rows: Buffer[] = [];
    for (let i = 0; i < data.length; i += cols) {
      const row = Buffer.alloc(cols);
      data.copy(row, 0, i, Math.min(i + cols, data.length));
      const up = Buffer.alloc(cols);
      if (i >= cols) data.copy(up, 0, i - cols, i);
      rows.push(Buffer.from([2]), Buffer.from(row.map((b, j) => (b - up[j]!) & 0xff)));
    }
    raw = Buffer.concat(rows);
    parms = ` /DecodeParms << /Predictor 12 /Colors 1 /BitsPerComponent 8 /Columns ${cols} >>`;
  }
  const packed = deflateSync(raw);
  const parts: Buffer[] = [Buffer.from('%PDF-1.7\n', 'latin1')];
  let pos = parts[0]!.length;
  const offsets: number[] = [];
  const add = (b: Buffer): void => {
    parts.push(b);
    pos += b.length;
  };
  const objects = [
    `<< /Type /Catalog /Pages 2 0 R /Names << /EmbeddedFiles << /Names [(${name}) 4 0 R] >> >> >>`,
    '<< /Type /Pages /Kids [3 0 R] /Count 1 >>',
    '<< /Type /Page /Parent 2 0 R /MediaBox [0 0 200 200] >>',
    `<< /Type /Filespec /F (${name}) /UF (${name}) /EF << /F 5 0 R >> >>`,
  ];
  objects.forEach((o, i) => {
    offsets.push(pos);
    add(Buffer.from(`${i + 1} 0 obj\n${o}\nendobj\n`, 'latin1'));
  });
  offsets.push(pos);
  add(Buffer.from(`5 0 obj\n<< /Type /EmbeddedFile /Length ${packed.length} /Filter /FlateDecode${parms} >>\nstream\n`, 'latin1'));
  add(packed);
  add(Buffer.from('\nendstream\nendobj\n', 'latin1'));
  const xref = pos;
  const table = offsets.map((o) => `${String(o).padStart(10, '0')} 00000 n \n`).join('');
  add(Buffer.from(`xref\n0 ${offsets.length + 1}\n0000000000 65535 f \n${table}trailer\n<< /Size ${offsets.length + 1} /Root 1 0 R >>\nstartxref\n${xref}\n%%EOF\n`, 'latin1'));
  return Buffer.concat(parts);
}
