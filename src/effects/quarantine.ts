/**
 * The quarantine effect: the message (data file), its control files and a record kept in
 * quarantine_dir (quarantine/store.ts) before anything else is done to it; no copy, no drop
 * (the runner fails and the answer is 451). Its undo removes the entry, so a message answered
 * 451 and sent again is kept once.
 * Fails with the store's codes (EQUARANTINE_DIR) or the errno of the failing step.
 */
import { pendingRecipients } from '../courierfilter/control.js';
import { deleteEntry, writeEntry } from '../quarantine/store.js';
import type { EffectRunner } from './types.js';

export const quarantineRunner: EffectRunner<'quarantine'> = {
  kind: 'quarantine',
  phase: 'commit',
  writes: false,
  failVerb: 'quarantined',
  async run(_effect, env) {
    const v = env.verdict;
    const names = v.kind === 'infected' ? v.names : v.kind === 'banned' ? [`banned:${v.name}`] : [];
    const qdir = env.config.quarantine_dir;
    const entry = await writeEntry(qdir, {
      dataPath: env.data.readPath,
      controlPaths: env.controls.map((c) => c.path),
      record: {
        queue_id: env.envelope.queueId, sender: env.envelope.sender, client_ip: env.envelope.clientIp, names,
        recipients: pendingRecipients(env.controls),
        findings: v.kind === 'infected'
          ? v.findings.map((f) => ({ name: f.name, engine: f.engine, part: f.itemId, filename: f.filename, container: f.container }))
          : v.kind === 'banned' ? [{ name: `banned:${v.name}`, engine: 'banned', part: v.path }] : [],
        action: env.decision.action,
      },
    });
    env.fields['quarantine'] = entry.id;
    env.state.quarantineId = entry.id;
    return { undo: () => deleteEntry(qdir, entry.id) };
  },
};
