/**
 * The notices MIME writers put in a multipart's preamble for readers that do not speak MIME.
 *
 * Owns: the list of those texts and the test "this preamble or epilogue holds whitespace, or
 * one of them and whitespace, nothing else". Inputs: the bytes of a preamble or epilogue.
 * Output: true or false.
 *
 * Why: Courier rewrites multipart mail it receives over SMTP into its own MIME form, with its
 * notice as the preamble (every multipart message of the benchmark's mix arrives so). Kept as
 * a part, the notice was one scan more per message for every engine (for clamd a scan costs
 * about as much as a small part's), of a text that is the same in every such message. A
 * preamble with anything besides the notice and whitespace (one byte more, a line of its own,
 * a notice cut short) is still a part of its own. Written by hand: a list of constant texts.
 */

/**
 * Each notice as its writer puts it, its lines joined by "\n" (the test ignores line ends and
 * the whitespace around lines): Courier's MIME rewriting, then the one most mail clients
 * write (Thunderbird, Outlook Express and their heirs).
 */
const NOTICES: readonly string[] = [
  'This is a MIME-formatted message.  If you see this text it means that your\nE-mail software does not support MIME-formatted messages.',
  'This is a multi-part message in MIME format.',
];

/** Longest notice, in bytes, with room for the whitespace around it. */
const MAX_NOTICE_BYTES = 512;

/** The notice's lines, trimmed, empty lines dropped: the form both sides are compared in. */
function lines(text: string): string {
  return text.split(/\r\n|\r|\n/).map((l) => l.trim()).filter((l) => l !== '').join('\n');
}

const KNOWN: ReadonlySet<string> = new Set(NOTICES.map(lines));

/**
 * True when `bytes` (a whole preamble or epilogue) holds nothing to scan: whitespace only, or
 * one of the notices and whitespace.
 */
export function holdsNothing(bytes: Buffer): boolean {
  const text = lines(bytes.toString('latin1'));
  return text === '' || (bytes.length <= MAX_NOTICE_BYTES && KNOWN.has(text));
}
