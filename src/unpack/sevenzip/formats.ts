/**
 * Which ContainerFormat 7-Zip reads, under which `-t` type name. The type is always forced:
 * left to guess from content, 7-Zip would also open PE and ELF files, disk images and more
 * (its "archive" formats include executables), which the stage must never unpack by surprise.
 *
 * Owns: the format → type table (only types checked to work in 7z-wasm 1.2.0 by
 * test/unpack-sevenzip.test.ts), and the choice between RAR 4 and RAR 5 (two handlers in 7-Zip).
 * Inputs: a format, archive bytes. Outputs: a type name. Fails with nothing.
 */
import type { ContainerFormat } from '../types.js';

export type SevenZipType =
  | 'zip' | 'gzip' | 'bzip2' | 'xz' | 'zstd' | 'Z' | 'tar' | '7z' | 'Cpio' | 'Cab' | 'Rar' | 'Rar5'
  | 'Iso' | 'Arj' | 'Chm' | 'Lzh' | 'MsLZ' | 'Nsis' | 'lzma';

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
