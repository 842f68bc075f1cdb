/**
 * The unpackers the container stage uses, built once per runtime: the archive reader (a pool of
 * threads running 7-Zip compiled to WebAssembly; threads start on first use, so a runtime that
 * never meets an archive, or `avfilter --config`, starts none) and the document readers.
 *
 * Owns: their construction and release. Output: Unpackers; close() ends the threads.
 */
import type { ArchiveReader, DocumentReader } from './stage.js';
import type { ContainerFormat } from './types.js';
import { unpackLz4, unpackLzop, unpackOle2, unpackPdf, unpackRpm, unpackRtf, unpackTnef } from './formats/index.js';
import { SEVENZIP_TYPE, SevenZipPool, sevenZipInputFor, sevenZipTypeFor } from './sevenzip/index.js';

export interface Unpackers {
  readonly archives?: ArchiveReader | undefined;
  readonly documents: Partial<Record<ContainerFormat, DocumentReader>>;
  /** What reads what, for `avfilter --config -v`. */
  version(): Promise<string>;
  close(): Promise<void>;
}

export function createUnpackers(): Unpackers {
  const pool = new SevenZipPool();
  const formats = new Set(Object.keys(SEVENZIP_TYPE) as ContainerFormat[]);
  const archives: ArchiveReader = {
    formats,
    unpack: async (input, format, limits, signal) => {
      const type = sevenZipTypeFor(format, input);
      if (type === undefined) return { members: [], outcome: 'unsupported', detail: `no reader for ${format}` };
      return pool.unpack(sevenZipInputFor(format, input), type, limits, signal);
    },
  };
  return {
    archives,
    documents: { tnef: unpackTnef, pdf: unpackPdf, rtf: unpackRtf, ole2: unpackOle2, lz4: unpackLz4, rpm: unpackRpm, lzop: unpackLzop },
    version: async () => `archives: ${await pool.version()} (WebAssembly, in ${formats.size} formats); OLE2: cfb; TNEF, PDF, RTF, LZ4, RPM, mbox: avfilter`,
    close: () => pool.close(),
  };
}
