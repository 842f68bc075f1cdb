/**
 * Which item goes to which engine, once (performance issue: "union scanning without double
 * work").
 *
 * An engine that parses mail itself (clamd) decodes the raw message as a standard reader does,
 * so sending it the standard reading's parts as well would scan every attachment twice. For a
 * regular message (every reader reads it alike) it gets the raw message, plus the parts that
 * only our other readings found: encodings found inside text (uuencode, yEnc, BinHex, data:
 * URIs, begin-base64) and messages found inside them. Every part that is not new content for
 * it is still scanned by it, inside the raw message. For an irregular message (readers may
 * disagree: the lenient reading found other parts, a header a strict parser rejects, a base64
 * body a strict decoder reads otherwise) it gets every part too: its own parse may not be ours.
 * An engine that does not parse mail (the embedded YARA engine) gets every item: the raw
 * message (headers, and bodies as they are encoded) and every decoded part. Members the
 * container stage took out of archives and documents go only to engines that do not unpack
 * containers themselves (Engine.unpacks).
 *
 * Inputs: the items of one message (the raw message first) and the engines. Outputs: the
 * (item, engine) pairs to scan, items in document order. Pure.
 */
import type { Engine, ScanItem } from '../engines/engine.js';

/**
 * Readings whose parts a mail-parsing engine finds on its own in the raw message of a regular
 * message: the standard reading's, and the text around the parts of a multipart (clamd scans
 * the raw bytes as well, preamble and epilogue included).
 */
const IN_RAW: ReadonlySet<string> = new Set(['standard', 'preamble', 'epilogue']);

export interface Job {
  readonly item: ScanItem;
  readonly engine: Engine;
}

/**
 * `irregular`: readers may disagree on this message (a header a strict parser rejects, a
 * base64 body a strict decoder reads otherwise...: Extraction.irregular). Then a mail-parsing
 * engine may not find what our standard reading found, and it is given every part as well.
 */
export function route(items: readonly ScanItem[], engines: readonly Engine[], irregular = false): Job[] {
  const jobs: Job[] = [];
  for (const item of items) {
    for (const engine of engines) {
      // an engine that unpacks finds a container's members in the container (or in the raw
      // message that holds it): giving it the members as well would scan them twice
      if (engine.unpacks && item.container !== undefined) continue;
      if (engine.parsesMail && !irregular && item.kind === 'part' && IN_RAW.has(item.reading ?? '')) continue;
      jobs.push({ item, engine });
    }
  }
  return jobs;
}
