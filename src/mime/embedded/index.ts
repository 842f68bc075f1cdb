/**
 * The post-pass of the union extraction: every decoded part is read once more for files
 * encoded inside it (uuencode, yEnc, BinHex, data: URIs), and each one found becomes a part.
 *
 * Owns: driving EmbeddedScanner over a part and writing what it finds into the part store.
 * Inputs: the store (its parts so far) and the signal. Outputs: parts with reading "uuencode",
 * "yenc", "binhex" or "data-uri" at path "<part>/<kind><n>". Fails (rejects) with the
 * store's MimeError (limits) or fs errors, or the signal's AbortError; parts finished before
 * stay in the store.
 */
import type { ExtractedPart, PartStore, PartWriter } from '../part-store.js';
import { EmbeddedScanner, type ScanEvent } from './scan.js';

/** Media whose bytes a mail reader never treats as text with encodings inside. */
const SKIP_TYPE_RE = /^(image|audio|video|font)\//;

export async function extractEmbedded(store: PartStore, signal?: AbortSignal): Promise<void> {
  // parts found here are not searched again: one level, as mail readers do
  const parts = [...store.parts];
  for (const part of parts) {
    if (SKIP_TYPE_RE.test(part.contentType) || part.size === 0) continue;
    await scanPart(store, part, signal);
  }
}

async function scanPart(store: PartStore, part: ExtractedPart, signal?: AbortSignal): Promise<void> {
  const scanner = new EmbeddedScanner();
  const open = new Map<number, PartWriter>();
  const counts = new Map<string, number>();
  const apply = async (events: ScanEvent[]): Promise<void> => {
    for (const e of events) {
      if (e.type === 'open') {
        const n = (counts.get(e.kind) ?? 0) + 1;
        counts.set(e.kind, n);
        open.set(
          e.id,
          store.begin({
            path: `${part.path}/${e.kind}${n}`,
            contentType: 'application/octet-stream',
            encoding: e.kind,
            reading: e.kind,
            ...(e.name !== undefined ? { filename: e.name.replace(/[\u0000-\u001f\u007f]/g, ' ').slice(0, 255) } : {}),
          }),
        );
      } else if (e.type === 'data') {
        await open.get(e.id)?.write(e.bytes);
      } else {
        const w = open.get(e.id);
        open.delete(e.id);
        if (w !== undefined) await w.finish();
      }
    }
  };
  try {
    const bytes = store.bytesOf(part);
    const chunks: AsyncIterable<Buffer> = bytes !== undefined ? bytes.chunks(0, bytes.size) : (part.source.stream() as AsyncIterable<Buffer>);
    for await (const chunk of chunks) {
      if (signal?.aborted) throw signal.reason ?? new Error('aborted');
      await apply(scanner.push(chunk));
    }
    await apply(scanner.end());
  } catch (err) {
    // keep what was decoded of an open item (a virus in it still counts), then report
    for (const w of open.values()) await w.finish().catch(() => w.abort());
    throw err;
  }
}
