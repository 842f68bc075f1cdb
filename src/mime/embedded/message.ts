/**
 * Does a file found inside a text look like a mail message (an RFC 822 header block)? A
 * forwarded ".eml" that was uuencoded, or put in a data: URI, is then walked as a message, so
 * its attachments are parts too.
 *
 * Owns: the test only. Input: the first bytes of the file (up to MESSAGE_SNIFF_BYTES). Output:
 * true when the first line is a header field `Name: value`, every line up to the blank line
 * that ends the block is a field or a folded continuation, and among the first
 * KEY_FIELD_WINDOW fields is one that only mail has (Content-Type, MIME-Version, From,
 * Subject, Received, Message-ID). A block still going at the end of the sniff counts: a
 * header padded past it must not hide the message. Never throws.
 */

/**
 * Bytes read to decide. Header blocks of real mail (long Received chains, DKIM, ARC) stay
 * within tens of KiB; the walk itself bounds a longer one with maxHeaderBytes.
 */
export const MESSAGE_SNIFF_BYTES = 64 * 1024;

/** A message's own fields come early: Received chains are tens, not hundreds, of fields. */
const KEY_FIELD_WINDOW = 100;

const KEY_FIELDS: ReadonlySet<string> = new Set(['content-type', 'mime-version', 'from', 'subject', 'received', 'message-id']);

/**
 * `Name:` with a name of anything but ":", whitespace and line ends, nothing before the colon.
 * RFC 5322 §2.2 allows printable ASCII only, but readers take any bytes (a name with a byte
 * >= 0x80 must not keep a forwarded message from being walked).
 */
const FIRST_FIELD_RE = /^([^:\s]+):/;
/** Later fields as lenient readers take them: `Name :` too. */
const FIELD_RE = /^([^:\s]+)[ \t]*:/;

export function looksLikeMessage(head: Buffer): boolean {
  let pos = 0;
  let fields = 0;
  let key = false;
  while (pos < head.length) {
    let end = pos;
    while (end < head.length && head[end] !== 0x0a && head[end] !== 0x0d) end++;
    const line = head.toString('latin1', pos, end);
    if (end >= head.length) {
      // the sniff (or the file) ends inside this line: judge what came before it
      return key && head.length >= MESSAGE_SNIFF_BYTES;
    }
    if (line === '') return key;
    if (fields === 0) {
      if (!FIRST_FIELD_RE.test(line)) return false;
    } else if (line[0] !== ' ' && line[0] !== '\t' && !FIELD_RE.test(line)) {
      return false;
    }
    if (line[0] !== ' ' && line[0] !== '\t') {
      fields++;
      const name = FIELD_RE.exec(line)![1]!.toLowerCase();
      if (fields <= KEY_FIELD_WINDOW && KEY_FIELDS.has(name)) key = true;
    }
    pos = end + (head[end] === 0x0d && head[end + 1] === 0x0a ? 2 : 1);
  }
  // the sniff ended right after a line end, before any blank line
  return key && head.length >= MESSAGE_SNIFF_BYTES;
}
