/**
 * Which item goes to which engine.
 *
 * Every engine gets the raw message and every decoded MIME part, under every reading: no part
 * is spared an engine on the belief that the engine would find it by itself. clamd parses the
 * raw message as mail, but its parser is not ours: a quoted-printable soft break followed by
 * blanks, a `;` inside a quoted boundary, and whatever the next evasion is, read differently
 * there. Which of our parts clamd's parser would also find cannot be checked per message, so
 * it is not a premise routing may rest on: clamd gets each of our parts as well (how it is
 * given the raw message — parsed as mail or as plain data — is the clamd engine's
 * `raw_message` option, engines/clamd/raw-message.ts).
 *
 * The one exemption is structural and checked by the engine's own contract: members the
 * container stage took out of archives and documents go only to engines that do not unpack
 * containers themselves (Engine.unpacks). An unpacking engine is given the container's bytes
 * exactly as decoded, and unpacking them is its own reading of that file, as a rule set is.
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
  const jobs: Job[] = [];
  for (const item of items) {
    for (const engine of engines) {
      if (engine.unpacks && item.container !== undefined) continue;
      jobs.push({ item, engine });
    }
  }
  return jobs;
}
