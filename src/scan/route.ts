/**
 * Which item goes to which engine: every engine gets every item — the raw message, every
 * decoded MIME part under every reading, and every member the container stage took out of
 * archives and documents.
 *
 * No item is spared an engine on the belief that the engine would find it by itself. clamd
 * parses mail and unpacks containers, but its readers are not ours: a quoted-printable soft
 * break followed by blanks, a `;` inside a quoted boundary, a base64-encoded attached message,
 * a zip behind junk with bytes after it, a PDF filter chain given by reference, and whatever the
 * next evasion is, read differently there. Which of our items its own readers would also find
 * cannot be checked per message, so it is not a premise routing may rest on. (How clamd is
 * given the raw message — parsed as mail or as plain data — is the clamd engine's
 * `raw_message` option, engines/clamd/raw-message.ts.)
 *
 * The one exception is the admin's, by name: an engine may decline an item (Engine.declines;
 * clamd's raw_message = "parts" declines the raw message of a message that read one way only,
 * as Courier::Filter's ClamAVd scans the decoded parts only). An engine that would then be left
 * with nothing of the message gets every item it declined: no message goes by an engine unseen.
 *
 * Inputs: the items of one message (the raw message first) and the engines. Outputs: the
 * (item, engine) pairs to scan, items in document order. Pure.
 */
import type { Engine, ScanItem } from '../engines/engine.js';

export interface Job {
  readonly item: ScanItem;
  readonly engine: Engine;
}

export function route(items: readonly ScanItem[], engines: readonly Engine[]): Job[] {
  // per engine, which items it takes; undefined: every one (it declines none, or all of them)
  const takes = engines.map((engine) => {
    if (engine.declines === undefined) return undefined;
    const kept = items.map((item) => !engine.declines!(item));
    return kept.includes(true) ? kept : undefined;
  });
  const jobs: Job[] = [];
  for (let i = 0; i < items.length; i++) {
    for (let e = 0; e < engines.length; e++) if (takes[e]?.[i] !== false) jobs.push({ item: items[i]!, engine: engines[e]! });
  }
  return jobs;
}
