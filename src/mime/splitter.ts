/**
 * mailsplit's Splitter, with each boundary searched for as the bytes the header holds, and a
 * bound on the lines of one header block.
 *
 * Owns: two corrections to mailsplit (pinned 5.4.x) for the standard reading.
 * 1. A header block of more than MAX_HEADER_LINES_PER_BLOCK lines is mailsplit's own header
 *    error (EMAXLEN, reported as EMIME_HEADER_LIMIT) as soon as the line past the bound
 *    arrives, before mailsplit parses the block (a microsecond and an object per line).
 * 2. mailsplit reads a header value as UTF-8 when it is valid UTF-8 and as latin1 when it is
 *    not, then takes the boundary as Buffer.from(value) (UTF-8). For a header that is not
 *    UTF-8 (`boundary="b\xe9"`) it searched for "b\xc3\xa9", bytes the message does not
 *    hold, and every part behind that boundary was lost to the standard reading. After a
 *    node's headers are parsed, a boundary whose UTF-8 bytes are not in the raw header block
 *    but whose latin1 bytes are is replaced by those bytes. A child copies its parent's
 *    boundary when it is created, after the parent's headers were parsed, so it gets the
 *    corrected one.
 * Input and output: mailsplit's. Fails only as mailsplit fails (its EMAXLEN included).
 */
import mailsplit from '@zone-eu/mailsplit';
import { AvError } from '../errors.js';
import { MAX_HEADER_LINES_PER_BLOCK } from './limits.js';

/** The parts of mailsplit's MimeNode these corrections read and write (not in its types). */
interface NodeInternals {
  _boundary: Buffer | false;
  _headersLines: Buffer[];
  _parsedContentType: { params?: Record<string, unknown> } | false;
  parseHeaders(): void;
}

type NewNode = (this: unknown, parent?: unknown) => void;
const baseNewNode = (mailsplit.Splitter.prototype as unknown as { newNode: NewNode }).newNode;
if (typeof baseNewNode !== 'function') throw new Error('mailsplit.Splitter has no newNode(): the boundary correction needs updating');

type CheckHeadSize = (this: unknown, extra?: number) => (Error & { code?: string }) | null;
const baseCheckHeadSize = (mailsplit.Splitter.prototype as unknown as { checkHeadSize: CheckHeadSize }).checkHeadSize;
if (typeof baseCheckHeadSize !== 'function') throw new Error('mailsplit.Splitter has no checkHeadSize(): the header line bound needs updating');

export class StandardSplitter extends mailsplit.Splitter {
  /** Called by mailsplit after every header line (and for a long pending one). */
  checkHeadSize(extra?: number): (Error & { code?: string }) | null {
    const err = baseCheckHeadSize.call(this, extra);
    if (err !== null) return err;
    // mailsplit keeps the blank line that ends the block as one of its header lines
    const lines = (this as unknown as { node: NodeInternals }).node._headersLines.length;
    if (lines <= MAX_HEADER_LINES_PER_BLOCK + 1) return null;
    return new AvError('EMAXLEN', 'limit', `a header block of more than ${MAX_HEADER_LINES_PER_BLOCK} lines`);
  }

  /** Called by mailsplit for every node (the constructor's root included). */
  newNode(parent?: unknown): void {
    baseNewNode.call(this, parent);
    const node = (this as unknown as { node: NodeInternals }).node;
    const parse = node.parseHeaders;
    node.parseHeaders = function (this: NodeInternals): void {
      parse.call(this);
      boundaryAsBytes(this);
    };
  }
}

function boundaryAsBytes(node: NodeInternals): void {
  const b = node._boundary;
  const text = node._parsedContentType ? node._parsedContentType.params?.boundary : undefined;
  if (!b || typeof text !== 'string' || !/^[\x00-\xff]*$/.test(text)) return;
  const latin1 = Buffer.from(text, 'latin1');
  if (latin1.equals(b)) return;
  const raw = Buffer.concat(node._headersLines);
  if (!raw.includes(b) && raw.includes(latin1)) node._boundary = latin1;
}
