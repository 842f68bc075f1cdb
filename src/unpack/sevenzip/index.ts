/**
 * The 7-Zip unpacker (archives and compressors for the container stage): 7-Zip 24.09
 * compiled to WebAssembly (npm 7z-wasm 1.2.0; LGPL-2.1 with the unRAR restriction) run in a
 * small pool of worker threads.
 *
 * Owns: nothing of its own; the public face of pool.ts (SevenZipPool) and formats.ts
 * (SEVENZIP_TYPE, sevenZipTypeFor, sevenZipInputFor). See those files for inputs, outputs and failure codes.
 */
export { SevenZipPool, DEFAULT_MAX_HEAP_BYTES, DEFAULT_THREADS, MAX_THREADS } from './pool.js';
export type { SevenZipPoolOptions } from './pool.js';
export { SEVENZIP_TYPE, sevenZipInputFor, sevenZipTypeFor } from './formats.js';
export type { SevenZipType } from './formats.js';
