/**
 * Which ContainerFormat 7-Zip reads, under which `-t` type name. The type is always forced:
 * left to guess from content, 7-Zip would also open PE and ELF files, disk images and more
 * (its "archive" formats include executables), which the stage must never unpack by surprise.
 *
 * Owns: the format → type table (only types checked to work in 7z-wasm 1.2.0 by
 * test/unpack-sevenzip.test.ts), the choice between RAR 4 and RAR 5 (two handlers in 7-Zip),
 * and the bytes 7-Zip is given: an lzip member rewritten as an LZMA-alone stream (7-Zip 24.09
 * has no lzip handler, but lzip's data is plain LZMA with an end marker).
 * Inputs: a format, archive bytes. Outputs: a type name, the bytes to give. Fails with nothing.
 */
import type { ContainerFormat } from '../types.js';

export type SevenZipType =
  | 'zip' | 'gzip' | 'bzip2' | 'xz' | 'zstd' | 'Z' | 'tar' | '7z' | 'Cpio' | 'Cab' | 'Rar' | 'Rar5'
  | 'Iso' | 'Arj' | 'Chm' | 'Lzh' | 'MsLZ' | 'Nsis' | 'lzma' | 'SquashFS' | 'Wim' | 'Xar';

export const SEVENZIP_TYPE: Readonly<Partial<Record<ContainerFormat, SevenZipType>>> = Object.freeze({
  zip: 'zip',
  gzip: 'gzip',
  bzip2: 'bzip2',
  xz: 'xz',
  zstd: 'zstd',
  compress: 'Z',
  tar: 'tar',
  '7z': '7z',
  cpio: 'Cpio',
  cab: 'Cab',
  rar: 'Rar', // RAR 5 archives are sent to 'Rar5' by sevenZipTypeFor()
  iso: 'Iso',
  arj: 'Arj',
  chm: 'Chm',
  lzh: 'Lzh',
  szdd: 'MsLZ', // MS-DOS COMPRESS.EXE (SZDD), 7-Zip's "MsLZ"
  nsis: 'Nsis',
  lzma: 'lzma', // LZMA-alone (.lzma, xz --format=lzma)
  squashfs: 'SquashFS',
  wim: 'Wim',
  xar: 'Xar',
  lzip: 'lzma', // given as LZMA-alone by sevenZipInputFor()
});

const RAR5_SIGNATURE = Buffer.from('Rar!\x1a\x07\x01\x00', 'latin1');

/** The -t type for this format and these bytes, or undefined when 7-Zip does not read it. */
export function sevenZipTypeFor(format: ContainerFormat, input: Uint8Array): SevenZipType | undefined {
  const type = SEVENZIP_TYPE[format];
  if (type === 'Rar' && Buffer.from(input.buffer, input.byteOffset, Math.min(input.byteLength, 8)).equals(RAR5_SIGNATURE)) {
    return 'Rar5';
  }
  return type;
}

/** lzip's member header: `LZIP`, the version, the coded dictionary size. */
const LZIP_HEADER_BYTES = 6;

/**
 * The bytes 7-Zip is given for this format: the input itself, except lzip. An lzip member is
 * LZMA data (lc 3, lp 0, pb 2: properties byte 0x5D) that ends with an end marker, so it reads
 * as an LZMA-alone stream of unknown size. Its dictionary is coded as 2^n less up to 7/16 of
 * it; 7-Zip takes only 2^n or 3·2^n, and 2^n is never smaller. The member's trailer and any
 * member after it are "data after the end" to 7-Zip: the stage searches there (search.ts
 * finds the next member), as lzip reads every member of a file.
 */
export function sevenZipInputFor(format: ContainerFormat, input: Buffer): Buffer {
  if (format !== 'lzip' || input.byteLength < LZIP_HEADER_BYTES) return input;
  const header = Buffer.alloc(13, 0xff);
  header[0] = 0x5d;
  header.writeUInt32LE(2 ** (input[5]! & 0x1f), 1);
  return Buffer.concat([header, input.subarray(LZIP_HEADER_BYTES)]);
}
