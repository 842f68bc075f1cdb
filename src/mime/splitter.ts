/**
 * mailsplit's Splitter, with each boundary searched for as the bytes the header holds.
 *
 * Owns: one correction to mailsplit (pinned 5.4.x) for the standard reading. mailsplit reads
 * a header value as UTF-8 when it is valid UTF-8 and as latin1 when it is not, then takes the
 * boundary as Buffer.from(value) (UTF-8). For a header that is not UTF-8 (`boundary="b\xe9"`)
 * it searched for "b\xc3\xa9", bytes the message does not hold, and every part behind that
 * boundary was lost to the standard reading. After a node's headers are parsed, a boundary
 * whose UTF-8 bytes are not in the raw header block but whose latin1 bytes are is replaced by
 * those bytes. A child copies its parent's boundary when it is created, after the parent's
 * headers were parsed, so it gets the corrected one. Input and output: mailsplit's. Never
 * throws beyond what mailsplit throws.
 */
import mailsplit from '@zone-eu/mailsplit';

/** The parts of mailsplit's MimeNode this correction reads and writes (not in its types). */
interface NodeInternals {
  _boundary: Buffer | false;
  _headersLines: Buffer[];
  _parsedContentType: { params?: Record<string, unknown> } | false;
  parseHeaders(): void;
}

type NewNode = (this: unknown, parent?: unknown) => void;
const baseNewNode = (mailsplit.Splitter.prototype as unknown as { newNode: NewNode }).newNode;
if (typeof baseNewNode !== 'function') throw new Error('mailsplit.Splitter has no newNode(): the boundary correction needs updating');

export class ByteBoundarySplitter extends mailsplit.Splitter {
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
