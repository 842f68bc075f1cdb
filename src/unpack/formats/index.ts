/**
 * The document and mail-specific container readers, for the stage (stage.ts).
 * Each is `(input: Buffer, limits: UnpackLimits) => UnpackResult`: synchronous, pure, linear in
 * its input, bounded by the limits, and never throws for bad input.
 */
export { unpackTnef, TNEF_SIGNATURE } from './tnef.js';
export { unpackPdf } from './pdf.js';
export { unpackRtf } from './rtf.js';
export { unpackOle2, OLE2_MAGIC } from './ole2.js';
export { unpackLz4, isLz4Frame } from './lz4.js';
export { unpackRpm } from './rpm.js';
export { unpackLzop } from './unread.js';
