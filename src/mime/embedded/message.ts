/**
 * Does a file found inside a text look like a mail message (an RFC 822 header block)? A
 * forwarded ".eml" that was uuencoded, or put in a data: URI, is then walked as a message, so
 * its attachments are parts too.
 *
 * Owns: the test only. Input: the first bytes of the file and whether more follow. Output:
 * "yes" when the first line is a header field `Name: value`, every line up to the blank line
 * that ends the block is a field or a folded continuation, and the block has a field that
 * only mail has (Content-Type, MIME-Version, From, Subject, Received, Message-ID); "more" when
 * the bytes end inside such a block before one of those fields (the caller reads on: padding
 * must not push the deciding field out of sight); "no" otherwise. Never throws.
 */

/**
 * Bytes read first. Header blocks of real mail (long Received chains, DKIM, ARC) stay within
 * tens of KiB; a longer block is read on up to the header limit (embedded/index.ts).
 */
export const MESSAGE_SNIFF_BYTES = 64 * 1024;

const KEY_FIELDS: ReadonlySet<string> = new Set(['content-type', 'mime-version', 'from', 'subject', 'received', 'message-id']);

/**
 * `Name:` with a name of anything but ":", whitespace and line ends, nothing before the colon.
 * RFC 5322 §2.2 allows printable ASCII only, but readers take any bytes (a name with a byte
 * >= 0x80 must not keep a forwarded message from being walked).
 */
const FIRST_FIELD_RE = /^([^:\s]+):/;
/** Later fields as lenient readers take them: `Name :` too. */
const FIELD_RE = /^([^:\s]+)[ \t]*:/;

export type MessageLook = 'yes' | 'no' | 'more';

/** Bytes of a line that are looked at. */
const LINE_BYTES = 1024;

/** `head`: the file's first bytes; `cut`: more bytes follow them. */
export function looksLikeMessage(head: Buffer, cut: boolean): MessageLook {
  // Most items are not mail (binaries, text): their first bytes are no `Name:`, and that is
  // the answer (the loop below says "no" for such a first line too) without looking for the
  // end of a first line that may run on for the whole sniff. FIRST_FIELD_RE stops at the first
  // whitespace, line ends included, so on these bytes it answers as on the first line.
  if (!FIRST_FIELD_RE.test(head.toString('latin1', 0, Math.min(head.length, LINE_BYTES)))) return 'no';
  let pos = 0;
  let fields = 0;
  let key = false;
  while (pos < head.length) {
    let end = pos;
    while (end < head.length && head[end] !== 0x0a && head[end] !== 0x0d) end++;
    const line = head.toString('latin1', pos, Math.min(end, pos + LINE_BYTES));
    if (end >= head.length) {
      // the bytes end inside this line: a field name already seen counts (a first field
      // padded past the sniff must not hide the message), the rest is judged by what came before
      if (fields === 0 && FIRST_FIELD_RE.test(line)) {
        fields = 1;
        if (KEY_FIELDS.has(FIELD_RE.exec(line)![1]!.toLowerCase())) key = true;
      }
      break;
    }
    if (line === '') return key ? 'yes' : 'no';
    if (fields === 0) {
      if (!FIRST_FIELD_RE.test(line)) return 'no';
    } else if (line[0] !== ' ' && line[0] !== '\t' && !FIELD_RE.test(line)) {
      return 'no';
    }
    if (line[0] !== ' ' && line[0] !== '\t') {
      fields++;
      if (KEY_FIELDS.has(FIELD_RE.exec(line)![1]!.toLowerCase())) key = true;
    }
    pos = end + (head[end] === 0x0d && head[end + 1] === 0x0a ? 2 : 1);
  }
  // the bytes ended inside the header block: a file that ends there is no message (headers
  // and nothing else); one that goes on is, once a field says so
  if (!cut || fields === 0) return 'no';
  return key ? 'yes' : 'more';
}
