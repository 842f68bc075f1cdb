/**
 * The MIME extractor (src/mime): a message in, its decoded parts out, for the engines.
 *
 * Data flow: message (path, or a Readable spooled by input.ts) → three readings into one
 * part-store.ts (memory or 0600 temp file, SHA-256 de-duplication; part-writer.ts stores one
 * part): walk.ts (mailsplit with splitter.ts's corrections, the standard reading), lenient/
 * (our own tolerant walker: every plausible interpretation) and embedded/ (uuencode,
 * begin-base64, yEnc, BinHex, data: URIs inside decoded parts, found again inside what they
 * decode to, and mail messages among them walked) → Extraction. limits.ts holds the limits
 * and error codes (every limit is an outcome, never "clean"); filename.ts decodes names for
 * reports. Every reading is linear in its input and checks the caller's signal.
 * This module knows nothing of Courier or of the engines beyond the ScanSource type, and it
 * never logs: the caller reports.
 */
export { extractParts, type Extraction, type ExtractOptions, type MessageInput } from './extract.js';
export type { ExtractedPart } from './part-store.js';
export { DEFAULT_MIME_LIMITS, MemoryPool, MimeError, MimeErrorCode, type MimeLimits } from './limits.js';
