/**
 * The MIME extractor (src/mime): a message in, its decoded parts out, for the engines.
 *
 * Data flow: message (a MessageInput, input.ts: a buffer, a file read in place, or a stream
 * spooled while it is read) → three readings into one part-store.ts (memory or 0600 temp
 * file, SHA-256 de-duplication; part-writer.ts stores one part): walk.ts (mailsplit with
 * splitter.ts's corrections, the standard reading), lenient/ (our own tolerant walker: every
 * plausible interpretation) and embedded/ (uuencode, begin-base64, yEnc, BinHex, data: URIs
 * inside decoded parts, found again inside what they decode to, and mail messages among them
 * walked) → a stage the caller may run after them over the same store (post-stage.ts: the
 * container stage, given ExtractionAccess) → Extraction. limits.ts holds the limits and error
 * codes (every limit is an outcome, never "clean"); filename.ts decodes names for reports.
 * Every reading is linear in its input and checks the caller's signal.
 * This module builds on src/bytes (MessageBytes, the part record, ScanSource implementations)
 * and knows nothing of Courier, of the container stage or of the scan; it never logs: the
 * caller reports.
 */
export { extractParts, type Extraction, type ExtractOptions } from './extract.js';
export { MessageInput } from './input.js';
export type { ExtractionAccess, PostStage, PostStageResult } from './post-stage.js';
export type { ExtractedPart } from '../bytes/part.js';
export { DEFAULT_MIME_LIMITS, MemoryPool, MimeError, MimeErrorCode, type MimeLimits } from './limits.js';
export { mimeLayout, nodeAt, isMessageNode, type Layout, type LayoutNode } from './layout.js';
