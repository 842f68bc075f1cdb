/**
 * The README's table of the formats the container stage reads ("Inside containers") stays true:
 * its rows are rendered here from the code's own lists (the formats the readers take:
 * createUnpackers(), 7-Zip's type per format: SEVENZIP_TYPE, the formats searched for behind
 * other bytes: SEARCHED_FORMATS) plus a line of words per format, and the README must hold
 * exactly that table. A format added to a reader without a row here fails; so does a README
 * edited by hand. On a mismatch the expected table is printed, to paste.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { createUnpackers } from '../src/unpack/readers.js';
import { SEVENZIP_TYPE } from '../src/unpack/sevenzip/index.js';
import { SEARCHED_FORMATS } from '../src/unpack/search.js';
import type { ContainerFormat } from '../src/unpack/types.js';

const unpackers = createUnpackers();
after(() => unpackers.close());

interface Row {
  /** How the stage tells it from its bytes at the start. */
  readonly start: string;
  /** What is Encrypted.<Format> (empty: nothing can be). */
  readonly encrypted?: string;
  /** What is a limit (451 by default) besides the limits every format shares. */
  readonly limit: string;
}

const ROWS: Readonly<Record<ContainerFormat, Row>> = {
  zip: { start: '`PK\\3\\4` (or a spanned-zip marker)', encrypted: 'a ZipCrypto or AES member', limit: 'a member that does not decode; an end record whose directory is nowhere; more than 16 archives in one item' },
  gzip: { start: '`1F 8B 08`', limit: 'a stream that does not decode' },
  bzip2: { start: '`BZh1`-`9`, then a block or end-of-stream magic', limit: 'a stream that does not decode' },
  xz: { start: '`FD 37 7A 58 5A 00`', limit: 'a stream that does not decode' },
  zstd: { start: '`28 B5 2F FD`', limit: 'a stream that does not decode' },
  compress: { start: '`1F 9D` and a 9 to 16 bit flags byte', limit: 'a stream that does not decode' },
  lzma: { start: 'a 13-byte LZMA-alone header as 7-Zip checks it, then a 0 byte', limit: 'a stream that does not decode' },
  lzip: { start: '`LZIP`, version 1, a dictionary of 2^12 to 2^29', limit: 'a member that does not decode' },
  lzop: { start: '`89 4C 5A 4F 00 0D 0A 1A 0A`', limit: 'always: nothing reads it' },
  lz4: { start: '`04 22 4D 18` (a frame, version 01), or a legacy frame', limit: 'a frame or block that does not decode' },
  tar: { start: '`ustar` at 257, or a v7 header whose checksum holds', limit: 'a header or member cut short or damaged' },
  '7z': { start: '`37 7A BC AF 27 1C`', encrypted: 'AES content or an encrypted header', limit: 'damage; a method 7-Zip lacks' },
  cpio: { start: 'odc / newc / crc magic, or binary `71 C7` with a sane header', limit: 'damage' },
  cab: { start: '`MSCF` and four zero bytes', limit: 'damage; a method 7-Zip lacks' },
  rar: { start: '`Rar!\\x1a\\x07` (RAR 4 and RAR 5)', encrypted: 'an encrypted member or header', limit: 'damage; a volume of a set' },
  iso: { start: '`CD001` at sector 16, 17 or 18', limit: 'damage' },
  arj: { start: '`60 EA` and a main header', limit: 'damage' },
  chm: { start: '`ITSF`', limit: 'damage' },
  lzh: { start: '`-lh?-` / `-lz?-` at 2', limit: 'damage' },
  szdd: { start: '`SZDD 88 F0 27 33`', limit: 'damage' },
  nsis: { start: 'a PE file (`MZ`) holding the NSIS signature', limit: 'damage; a method 7-Zip lacks' },
  squashfs: { start: '`hsqs` (or `sqsh`) and a major version 1 to 4 at 28', limit: 'damage; a compressor 7-Zip lacks (LZ4)' },
  wim: { start: '`MSWIM\\0\\0\\0` and a 208-byte header', limit: 'damage' },
  xar: { start: '`xar!`, a header of at least 28 bytes, version 1', limit: 'damage; a method 7-Zip lacks (xz, lzma)' },
  rpm: { start: '`ED AB EE DB` and a header at 96', limit: 'a header that runs past the end' },
  ole2: { start: '`D0 CF 11 E0 A1 B1 1A E1`', limit: 'FAT or directory loops, merges, overlaps; more than 4,096 directory entries; an embedded object cut short' },
  ole10native: { start: '(inside OLE2 and RTF: `\\x01Ole10Native`, an OLE1 Package)', limit: 'the packaged file cut short' },
  tnef: { start: '`78 9F 3E 22`', limit: 'a length past the end' },
  pdf: { start: '`%PDF-` and a digit within the first KiB', encrypted: 'a document that needs a user password, or another security handler', limit: 'an image codec with filters after it; a /Filter chain of more than 4,096; a /Filter or /DecodeParms reference that resolves to nothing (or to more than 64 readings)' },
  rtf: { start: '`{\\rt`', limit: 'an `\\objdata` cut short' },
  mail: { start: 'a header block at the start (the MIME readings\' own test)', limit: 'the MIME limits' },
  mbox: { start: '`From ` and a header block', limit: 'the MIME limits, per message' },
};

/** Which reads it, from the code: 7-Zip's type, or the document reader. */
function readerOf(f: ContainerFormat): string {
  const t = SEVENZIP_TYPE[f];
  if (t !== undefined && f !== 'lzip') return `7-Zip (\`-t${t}\`${f === 'rar' ? ', `Rar5`' : ''})`;
  if (f === 'mail' || f === 'mbox') return f === 'mail' ? 'the lenient MIME walker' : 'split at `From ` lines both ways (mbox.ts), then the MIME walker';
  if (f === 'lzip') return '7-Zip (`-tlzma`, the member rewritten as LZMA-alone)';
  if (f === 'lzop') return 'nothing (unread.ts): a limit';
  if (f === 'ole10native') return 'ole10native.ts (from ole2.ts, rtf.ts)';
  return f === 'ole2' ? 'cfb, after ole2-check.ts' : `${f}.ts`;
}

function behind(f: ContainerFormat): string {
  if (f === 'zip') return 'anywhere: from any end record (relocated, bytes after it) or its local headers';
  return SEARCHED_FORMATS.includes(f) ? 'yes' : 'no';
}

function render(formats: readonly ContainerFormat[]): string {
  const lines = ['| format | recognised at the start by | found behind other bytes | read by | encrypted (its own verdict) | a limit besides the shared ones |', '|---|---|---|---|---|---|'];
  for (const f of formats) {
    const r = ROWS[f];
    lines.push(`| ${f} | ${r.start} | ${behind(f)} | ${readerOf(f)} | ${r.encrypted ?? '-'} | ${r.limit} |`);
  }
  return lines.join('\n');
}

test('the README\'s formats table is the one rendered from the readers\' own lists', () => {
  const readable = new Set<ContainerFormat>([...unpackers.archives!.formats, ...(Object.keys(unpackers.documents) as ContainerFormat[]), 'ole10native', 'mail', 'mbox']);
  const order = Object.keys(ROWS) as ContainerFormat[];
  assert.deepEqual(order.filter((f) => !readable.has(f)), [], 'a row for a format nothing reads');
  assert.deepEqual([...readable].filter((f) => !(f in ROWS)), [], 'a format a reader takes without a row');
  for (const f of SEARCHED_FORMATS) assert.ok(readable.has(f), `searched for but not read: ${f}`);
  const want = render(order);
  const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');
  const start = readme.indexOf('| format | recognised at the start by |');
  const got = start < 0 ? '' : readme.slice(start, readme.indexOf('\n\n', start));
  if (got !== want) console.log(`README table should be:\n${want}`);
  assert.equal(got, want);
});
