/**
 * The quarantine effect: a copy of an infected message (data file), its control files and a
 * record, kept in quarantine_dir (quarantine/store.ts) when action.quarantine is true, before
 * anything else happens to the message.
 * Fails with the code of the failing step; the caller then answers 4xx rather than drop a
 * message it could not keep.
 */
import type { Finding } from '../policy/verdict.js';
import { writeEntry } from '../quarantine/store.js';

export interface QuarantineInput {
  readonly queueId: string;
  readonly sender: string;
  readonly recipients: readonly string[];
  readonly names: readonly string[];
  readonly clientIp?: string | undefined;
  readonly findings?: readonly Finding[] | undefined;
  readonly controlPaths?: readonly string[] | undefined;
  /** What is done with the message (the decision's action). */
  readonly action?: string | undefined;
}

/** Keeps the message; returns the new entry's id. */
export async function quarantine(dir: string, dataPath: string, rec: QuarantineInput, now = new Date()): Promise<string> {
  const entry = await writeEntry(dir, {
    dataPath,
    controlPaths: rec.controlPaths ?? [],
    record: {
      queue_id: rec.queueId, sender: rec.sender, recipients: rec.recipients, client_ip: rec.clientIp, names: rec.names,
      findings: (rec.findings ?? []).map((f) => ({ name: f.name, engine: f.engine, part: f.itemId, filename: f.filename, container: f.container })),
      action: rec.action ?? '',
    },
  }, now);
  return entry.id;
}
