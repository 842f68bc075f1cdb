/**
 * The quarantine effect: a copy of the message (data file) and its envelope, kept in
 * quarantine_dir before anything else is done to it; no copy, no drop (the runner fails and the
 * answer is 451). Its undo removes the copy, so a message answered 451 and sent again is kept
 * once.
 */
import { copyFile, mkdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { EffectRunner } from './types.js';

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

export const quarantineRunner: EffectRunner<'quarantine'> = {
  kind: 'quarantine',
  phase: 'commit',
  writes: false,
  failVerb: 'quarantined',
  async run(_effect, env) {
    const v = env.verdict;
    const names = v.kind === 'infected' ? v.names : v.kind === 'banned' ? [`banned:${v.name}`] : [];
    const target = await quarantine(env.config.quarantine_dir, env.data.readPath, {
      queueId: env.envelope.queueId, sender: env.envelope.sender, clientIp: env.envelope.clientIp, names,
      recipients: env.controls.flatMap((c) => c.recipients.filter((r) => !r.done).map((r) => r.address)),
    });
    env.fields['quarantine'] = target;
    env.state.quarantineId = target;
    return { undo: () => rm(target, { recursive: true, force: true }) };
  },
};
