/**
 * Where each MIME part of the standard reading is in the message's bytes: the tree of nodes
 * with their byte offsets, numbered as walk.ts numbers them (IMAP BODYSTRUCTURE: the children
 * of a multipart 1, 2, ... under its path, a single-part message's body "1"), so a finding's
 * item id names a node here.
 *
 * Owns: one pass of the same splitter as the standard reading (splitter.ts: mailsplit with its
 * corrections) that counts bytes instead of decoding them. Only the strip effect uses it,
 * once per infected message, so the scan's hot path (walk.ts) carries no offsets.
 * An attached message (message/rfc822, message/global) is a leaf here: its parts are inside
 * the attachment's encoded bytes, and cutting one out means cutting out the attachment.
 * The byte count is checked: the nodes' headers and bodies and the delimiter lines must add up
 * to the input's size, else the layout is not trusted (Layout.exact false).
 * Inputs: the message (a Buffer, or a Readable of a file), an AbortSignal. Outputs: a Layout.
 * Fails as the splitter fails (EMAXLEN for a header block past the limit), with MimeError
 * EMIME_PARSE when it found no node at all, or with the abort.
 */
import type { MimeNode, SplitterChunk } from '@zone-eu/mailsplit';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { decodeFilename } from './filename.js';
import { MimeError, MimeErrorCode } from './limits.js';
import { StandardSplitter } from './splitter.js';
import { bareType } from './walk.js';

export interface LayoutNode {
  /** "1", "2.1"... ("" for a top-level multipart). */
  readonly path: string;
  /** Offset of its first header byte. */
  readonly start: number;
  /** Offset just after its header block (the empty line included). */
  headerEnd: number;
  /** Offset just after its body (the line end before the next delimiter belongs to the delimiter). */
  end: number;
  /** Lower case, no parameters. */
  readonly contentType: string;
  /** A multipart with a boundary: its children are the nodes below. */
  readonly multipart: boolean;
  readonly children: LayoutNode[];
  /** The header block as the splitter read it, to check the offsets against the bytes. */
  readonly header: Buffer;
  /** The file name it declares (decoded), if any. */
  readonly filename?: string | undefined;
}

export interface Layout {
  readonly root: LayoutNode;
  /** Bytes counted; equal to the input's size when the offsets can be trusted. */
  readonly counted: number;
}

/** Types whose body is a message; leaves here, as in walk.ts. */
const MESSAGE_TYPES: ReadonlySet<string> = new Set(['message/rfc822', 'message/global']);

export async function mimeLayout(input: Buffer | Readable, maxHeaderBytes: number, signal?: AbortSignal): Promise<Layout> {
  const splitter = new StandardSplitter({ ignoreEmbedded: true, maxHeadSize: maxHeaderBytes, maxChildNodes: Number.MAX_SAFE_INTEGER });
  const nodes = new WeakMap<MimeNode, LayoutNode & { next: number }>();
  let root: LayoutNode | undefined;
  let offset = 0;
  const consume = async (source: AsyncIterable<SplitterChunk>): Promise<void> => {
    for await (const chunk of source) {
      signal?.throwIfAborted();
      if (chunk.type === 'node') {
        const node = chunk;
        const parent = node.parentNode ? nodes.get(node.parentNode) : undefined;
        const multipart = Boolean(node.multipart) && Boolean(node._boundary);
        const path = parent === undefined ? (multipart ? '' : '1') : parent.path === '' ? String(++parent.next) : `${parent.path}.${++parent.next}`;
        const len = node._headerlen;
        const header = Buffer.concat((node as unknown as { _headersLines: Buffer[] })._headersLines);
        const filename = node.headers ? decodeFilename(node.headers.getFirst('content-disposition'), node.headers.getFirst('content-type')) : undefined;
        const n = { path, start: offset, headerEnd: offset + len, end: offset + len, contentType: bareType(node.contentType), multipart, children: [], header, filename, next: 0 };
        nodes.set(node, n);
        if (parent !== undefined) parent.children.push(n);
        else root ??= n;
        offset += len;
      } else {
        const len = chunk.value?.length ?? 0;
        offset += len;
        if (chunk.type === 'body') {
          const n = nodes.get(chunk.node);
          if (n !== undefined) n.end = offset;
        }
      }
    }
  };
  if (Buffer.isBuffer(input)) {
    const done = consume(splitter as AsyncIterable<SplitterChunk>);
    splitter.end(input);
    await done;
  } else {
    await pipeline(input, splitter, consume, signal ? { signal } : {});
  }
  if (root === undefined) throw new MimeError(MimeErrorCode.PARSE, 'no MIME node in the message');
  return { root, counted: offset };
}

/** The node at a path, or the attached message (or leaf) on the way to it; undefined when there is none. */
export function nodeAt(root: LayoutNode, path: string): LayoutNode | undefined {
  if (path === root.path) return root;
  if (!root.multipart) {
    // a single-part message: "1" is the body; deeper paths are inside an attached message
    return path === '1' || path.startsWith('1.') ? root : undefined;
  }
  const steps = path.split('.').map(Number);
  let n = root;
  let depth = root.path === '' ? 0 : root.path.split('.').length;
  while (n.path !== path) {
    const i = steps[depth];
    if (i === undefined || !n.multipart) return undefined;
    const child = n.children[i - 1];
    if (child === undefined) return undefined;
    n = child;
    depth++;
    // the parts of an attached message are in its encoded body: the message is what is cut
    if (!n.multipart && path !== n.path) return isMessageNode(n) ? n : undefined;
  }
  return n;
}

export function isMessageNode(n: LayoutNode): boolean {
  return MESSAGE_TYPES.has(n.contentType);
}
