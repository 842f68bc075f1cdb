/**
 * The quarantine effect: a copy of an infected message (data file) and its envelope, kept in
 * quarantine_dir when action.quarantine is true. Release and expiry are not built yet;
 * the layout (one directory per message: message.eml + envelope.json) is made for them.
 * Fails with the errno of the failing step; the caller then answers 4xx rather than drop a
 * message it could not keep.
 */
import { copyFile, mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

export interface QuarantineRecord {
  readonly queueId: string;
  readonly sender: string;
  readonly recipients: readonly string[];
  readonly names: readonly string[];
  readonly clientIp?: string | undefined;
}

export async function quarantine(dir: string, dataPath: string, rec: QuarantineRecord, now = new Date()): Promise<string> {
  const stamp = now.toISOString().replace(/[-:]/g, '').replace(/\..*/, '');
  const safeId = rec.queueId.replace(/[^A-Za-z0-9.]/g, '_') || 'noid';
  const target = join(dir, `${stamp}-${safeId}-${process.pid}-${Math.random().toString(36).slice(2, 8)}`);
  await mkdir(target, { recursive: true, mode: 0o700 });
  await copyFile(dataPath, join(target, 'message.eml'));
  await writeFile(join(target, 'envelope.json'), JSON.stringify({ ...rec, time: now.toISOString() }, null, 2) + '\n', { mode: 0o600 });
  return target;
}
