/**
 * Which container an item is, from its bytes alone: magic numbers and structure, never its
 * name or declared type (a sender chooses those; `invoice.pdf` may be a zip, and a zip typed
 * text/plain is still a zip to the mail client that saves it).
 *
 * Owns: the table of signatures. Input: the item's first bytes (SNIFF_BYTES of them, or all of
 * a smaller item) and its size. Output: a ContainerFormat, or undefined for anything else.
 * Pure; never throws. Each test is strict enough that ordinary files do not match by chance
 * (a text starting "BZh" is not bzip2 unless a block signature follows): a container that then
 * does not open is a limit verdict, so a loose match would hold back innocent mail.
 *
 * Mail messages and mbox files are recognised by the stage (stage.ts) with the MIME code's own
 * header test; NSIS installers need a search of the whole file (nsisAt); containers behind
 * other bytes are found by search.ts, zips wherever they are by zip-layout.ts.
 */
import type { ContainerFormat } from './types.js';
import { isLz4Frame } from './formats/lz4.js';

/** Bytes the sniff needs: the ISO 9660 descriptor at 0x9001 is the furthest signature. */
export const SNIFF_BYTES = 0x9006 + 1;

const starts = (b: Buffer, sig: readonly number[], at = 0): boolean => {
  if (b.length < at + sig.length) return false;
  for (let i = 0; i < sig.length; i++) if (b[at + i] !== sig[i]) return false;
  return true;
};

const ascii = (s: string): number[] => [...s].map((c) => c.charCodeAt(0));

const ZIP_LOCAL = [0x50, 0x4b, 0x03, 0x04];
/** A spanned or split zip starts with this marker, then a local header. */
const ZIP_SPANNED = [0x50, 0x4b, 0x07, 0x08, 0x50, 0x4b, 0x03, 0x04];
const GZIP = [0x1f, 0x8b, 0x08];
const XZ = [0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00];
const ZSTD = [0x28, 0xb5, 0x2f, 0xfd];
const COMPRESS = [0x1f, 0x9d];
const SEVEN_Z = [0x37, 0x7a, 0xbc, 0xaf, 0x27, 0x1c];
const RAR = [0x52, 0x61, 0x72, 0x21, 0x1a, 0x07];
const CAB = [0x4d, 0x53, 0x43, 0x46, 0, 0, 0, 0];
const ARJ = [0x60, 0xea];
const CHM = ascii('ITSF');
const SZDD = [0x53, 0x5a, 0x44, 0x44, 0x88, 0xf0, 0x27, 0x33];
const OLE2 = [0xd0, 0xcf, 0x11, 0xe0, 0xa1, 0xb1, 0x1a, 0xe1];
const TNEF = [0x78, 0x9f, 0x3e, 0x22];
/** `{\rt` : Word opens `{\rt0` and the like as RTF, and malware uses them. */
const RTF = ascii('{\\rt');
const BZIP2_BLOCK = [0x31, 0x41, 0x59, 0x26, 0x53, 0x59];
const BZIP2_EOS = [0x17, 0x72, 0x45, 0x38, 0x50, 0x90];
const ISO_ID = ascii('CD001');
const WIM = [...ascii('MSWIM'), 0, 0, 0];
const XAR = ascii('xar!');
const LZIP = ascii('LZIP');
const LZOP = [0x89, 0x4c, 0x5a, 0x4f, 0x00, 0x0d, 0x0a, 0x1a, 0x0a];
const RPM_LEAD = [0xed, 0xab, 0xee, 0xdb];
const RPM_HEADER = [0x8e, 0xad, 0xe8, 0x01];

export function sniff(head: Buffer, size: number): ContainerFormat | undefined {
  if (head.length < 2) return undefined;
  if (starts(head, ZIP_LOCAL) || starts(head, ZIP_SPANNED)) return 'zip';
  if (starts(head, GZIP)) return 'gzip';
  if (isBzip2(head)) return 'bzip2';
  if (starts(head, XZ)) return 'xz';
  if (starts(head, ZSTD)) return 'zstd';
  if (starts(head, SEVEN_Z)) return '7z';
  if (starts(head, RAR)) return 'rar';
  if (starts(head, CAB)) return 'cab';
  if (starts(head, OLE2)) return 'ole2';
  if (starts(head, TNEF)) return 'tnef';
  if (starts(head, RTF)) return 'rtf';
  if (isPdf(head)) return 'pdf';
  if (starts(head, CHM)) return 'chm';
  if (starts(head, SZDD)) return 'szdd';
  if (isCpio(head)) return 'cpio';
  if (isTar(head)) return 'tar';
  if (isIso(head, size)) return 'iso';
  if (isArj(head)) return 'arj';
  if (isLzh(head)) return 'lzh';
  if (isLz4Frame(head)) return 'lz4';
  if (isLzmaAlone(head)) return 'lzma';
  if (isSquashfs(head)) return 'squashfs';
  // WIM: the header's own size (208) follows the magic
  if (starts(head, WIM) && head.length >= 12 && head.readUInt32LE(8) === 0xd0) return 'wim';
  // xar: a header size of at least 28 and version 1, big-endian
  if (starts(head, XAR) && head.length >= 8 && head.readUInt16BE(4) >= 28 && head.readUInt16BE(6) === 1) return 'xar';
  if (isLzip(head)) return 'lzip';
  if (starts(head, LZOP)) return 'lzop';
  // RPM: the lead, then the signature header's magic at 96
  if (starts(head, RPM_LEAD) && starts(head, RPM_HEADER, 96)) return 'rpm';
  // compress(1): 1F 9D, then a flags byte with 9..16 bits; two bytes alone match too much
  if (starts(head, COMPRESS) && head.length > 2 && (head[2]! & 0x1f) >= 9 && (head[2]! & 0x1f) <= 16 && (head[2]! & 0x60) === 0) return 'compress';
  return undefined;
}

/** "BZh", a block size digit, then a block or the end-of-stream signature. */
function isBzip2(b: Buffer): boolean {
  return b.length >= 10 && b[0] === 0x42 && b[1] === 0x5a && b[2] === 0x68 && b[3]! >= 0x31 && b[3]! <= 0x39
    && (starts(b, BZIP2_BLOCK, 4) || starts(b, BZIP2_EOS, 4));
}

/** "%PDF-" within the first KiB (readers accept junk before it), then a version digit. */
function isPdf(b: Buffer): boolean {
  const at = b.subarray(0, 1024 + 6).indexOf('%PDF-', 0, 'latin1');
  return at >= 0 && at + 5 < b.length && b[at + 5]! >= 0x30 && b[at + 5]! <= 0x39;
}

/** cpio: ASCII "070707" (odc), "070701"/"070702" (newc, crc); binary 0x71C7 in either byte order. */
function isCpio(b: Buffer): boolean {
  if (b.length < 26) return false;
  const s = b.toString('latin1', 0, 6);
  if (s === '070707' || s === '070701' || s === '070702') return true;
  // binary: magic, then a 26-byte header whose name size (at 20) is sane
  const le = b[0] === 0xc7 && b[1] === 0x71;
  const be = b[0] === 0x71 && b[1] === 0xc7;
  if (!le && !be) return false;
  const nameSize = le ? b.readUInt16LE(20) : b.readUInt16BE(20);
  return nameSize >= 1 && nameSize <= 4096;
}

/**
 * tar: "ustar" at 257 (POSIX and GNU), or a v7 header whose checksum field matches the sum of
 * the header's bytes (the checksum field counted as spaces), which is what tar itself checks.
 */
function isTar(b: Buffer): boolean {
  if (b.length < 512) return false;
  if (b.toString('latin1', 257, 262) === 'ustar') return true;
  if (b[0] === 0) return false;
  const field = b.toString('latin1', 148, 156).replace(/[\0 ]+$/, '').trim();
  if (!/^[0-7]{1,7}$/.test(field)) return false;
  let sum = 0;
  for (let i = 0; i < 512; i++) sum += i >= 148 && i < 156 ? 0x20 : b[i]!;
  return sum === parseInt(field, 8);
}

/** ISO 9660: a volume descriptor "CD001" at sector 16, 17 or 18 (2048-byte sectors). */
function isIso(b: Buffer, size: number): boolean {
  if (size < 0x8806) return false;
  return starts(b, ISO_ID, 0x8001) || starts(b, ISO_ID, 0x8801) || starts(b, ISO_ID, 0x9001);
}

/** ARJ: 60 EA, a header size of at most 2600, and the archive-header file type (2) at 10. */
function isArj(b: Buffer): boolean {
  if (!starts(b, ARJ) || b.length < 12) return false;
  const hsize = b.readUInt16LE(2);
  return hsize > 0 && hsize <= 2600 && b[10] === 2;
}

/** LHA/LZH: "-lh?-" or "-lz?-" at offset 2 of the first header. */
function isLzh(b: Buffer): boolean {
  if (b.length < 22) return false;
  const m = b.toString('latin1', 2, 7);
  return /^-l[hz][0-9a-z]-$/.test(m);
}

/**
 * LZMA-alone (.lzma: `xz --format=lzma`, Python's FORMAT_ALONE), which has no magic: its 13-byte
 * header checked as 7-Zip's lzma handler checks it (a properties byte below 225, a dictionary
 * size of 2^n or 3·2^n, an uncompressed size unknown or below 2^56), and the range coder's first
 * byte, always 0. By chance a file passes with odds of about one in 10^12.
 */
function isLzmaAlone(b: Buffer): boolean {
  if (b.length < 14 || b[0]! >= 225 || b[13] !== 0) return false;
  const dict = b.readUInt32LE(1);
  let dictOk = dict === 0xffffffff;
  for (let i = 1; i <= 30 && !dictOk; i++) dictOk = dict === 2 ** i || dict === 3 * 2 ** (i - 1);
  if (!dictOk) return false;
  const high = b.readUInt32LE(9);
  const unknown = high === 0xffffffff && b.readUInt32LE(5) === 0xffffffff;
  return unknown || high < 0x01000000;
}

/** SquashFS: `hsqs` (little-endian) or `sqsh` (big-endian, before 4.0), and a major version 1 to 4 at 28. */
function isSquashfs(b: Buffer): boolean {
  if (b.length < 32) return false;
  const m = b.toString('latin1', 0, 4);
  if (m === 'hsqs') { const v = b.readUInt16LE(28); return v >= 1 && v <= 4; }
  if (m === 'sqsh') { const v = b.readUInt16BE(28); return v >= 1 && v <= 3; }
  return false;
}

/** lzip: `LZIP`, version 1, and a coded dictionary size whose base is 2^12 to 2^29. */
export function isLzip(b: Buffer): boolean {
  return starts(b, LZIP) && b.length >= 6 && b[4] === 1 && (b[5]! & 0x1f) >= 12 && (b[5]! & 0x1f) <= 29;
}

/** The NSIS installer signature, found inside a PE file (the data is appended after the image). */
const NSIS_SIG = Buffer.from([0xef, 0xbe, 0xad, 0xde, ...ascii('NullsoftInst')]);

/** A PE file ("MZ") that holds an NSIS installer's data: 7-Zip reads the files it installs. */
export function nsisAt(whole: Buffer): boolean {
  return whole.length > 64 && whole[0] === 0x4d && whole[1] === 0x5a && whole.indexOf(NSIS_SIG) > 0;
}

/** An mbox: a "From " separator line, then a header block (stage.ts checks the block). */
export function mboxSeparatorEnd(head: Buffer): number | undefined {
  if (head.length < 6 || head.toString('latin1', 0, 5) !== 'From ') return undefined;
  const nl = head.indexOf(0x0a);
  return nl > 5 && nl < 1024 ? nl + 1 : undefined;
}
