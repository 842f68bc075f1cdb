/**
 * The mark effect: infected mail delivered on purpose (action "pass", or the recipients of
 * [skip] pass_recipients) carries X-Virus-Found naming the viruses, so maildrop or a later
 * filter can act on it. Written after Courier's Received: in the same inode (data-header.ts).
 */
import { insertHeader } from '../courierfilter/data-header.js';
import { replySafe } from '../policy/replies.js';
import type { EffectRunner } from './types.js';

export const markRunner: EffectRunner<'mark'> = {
  kind: 'mark',
  phase: 'commit',
  writes: true,
  failVerb: 'marked',
  async run(_effect, env) {
    const v = env.verdict;
    const names = v.kind === 'infected' ? v.names : v.kind === 'banned' ? [`banned attachment ${v.name}`] : [];
    if (names.length === 0) return;
    const edit = await insertHeader(env.data.readPath, `X-Virus-Found: ${names.map(replySafe).join(', ')} (avfilter)`, env.config.tmpdir);
    return { undo: () => edit.undo() };
  },
};
