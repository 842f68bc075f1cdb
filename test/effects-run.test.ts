// The spine's effects runner: the fixed order, the one rollback rule, after-effects only once
// the answer stands, a missing runner answering 451, strip falling back to a drop.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { runEffects, sortEffects, type Runners } from '../src/effects/run.js';
import type { EffectEnv, EffectRunner } from '../src/effects/types.js';
import { AvError } from '../src/errors.js';
import { createLogger, type LogFields } from '../src/ops/log.js';
import { parseConfig } from '../src/config/load.js';
import type { Decision, Effect, EffectKind } from '../src/policy/decision.js';

const config = parseConfig('', 'x.toml');

function envOf(fields: LogFields, lines: string[]): Omit<EffectEnv, 'state' | 'decision'> {
  return {
    dataPath: '/q/D1', data: { readPath: '/q/D1', size: 1, readAll: async () => Buffer.alloc(1) },
    controls: [], envelope: { queueId: 'Q1', sender: 's@x', recipients: 1, pending: 1 },
    verdict: { kind: 'infected', names: ['V'], findings: [] }, config, fields, signal: new AbortController().signal,
    log: createLogger((l) => lines.push(l)), rescan: async () => ({ kind: 'clean', items: 1 }),
  };
}

const locks = { taken: 0, released: 0, take(p: readonly string[]) { this.taken++; return p; }, release() { this.released++; } };

function recorder(log: string[], fail?: EffectKind, opts: { after?: EffectKind[]; failReply?: boolean } = {}): Runners {
  const make = (kind: EffectKind): EffectRunner => ({
    kind, phase: opts.after?.includes(kind) ? 'after' : 'commit', writes: kind !== 'quarantine', failVerb: `${kind}ed`,
    ...(opts.failReply ? { failReply: () => ({ code: 451, text: '4.7.1 held by the handler' }) } : {}),
    async run() {
      log.push(`run ${kind}`);
      if (kind === fail) throw new AvError('EFAIL', 'internal', `${kind} broke`);
      return { undo: async () => { log.push(`undo ${kind}`); } };
    },
  });
  const kinds: EffectKind[] = ['quarantine', 'handler', 'strip', 'mark', 'headers', 'drop', 'block', 'notify'];
  return Object.fromEntries(kinds.map((k) => [k, make(k)])) as Runners;
}

const decision = (effects: Effect[]): Decision => ({ action: 'drop', code: 200, text: 'Ok', verdict: 'infected', effects });
const ALL: Effect[] = [
  { kind: 'notify' }, { kind: 'drop', keep: [] }, { kind: 'block', ip: '192.0.2.1', seconds: 60 }, { kind: 'headers' },
  { kind: 'mark' }, { kind: 'strip' }, { kind: 'handler', program: '/bin/true' }, { kind: 'quarantine' },
];

test('effects run in the fixed order, whatever order the decision lists them in', async () => {
  assert.deepEqual(sortEffects(ALL).map((e) => e.kind), ['quarantine', 'handler', 'strip', 'mark', 'headers', 'drop', 'block', 'notify']);
  const log: string[] = [];
  const out = await runEffects(decision(ALL), envOf({}, []), locks, recorder(log, undefined, { after: ['block', 'notify'] }));
  assert.equal(out.reply.code, 200);
  assert.deepEqual(log, ['run quarantine', 'run handler', 'run strip', 'run mark', 'run headers', 'run drop', 'run block', 'run notify']);
});

test('a commit effect that fails: 451 naming what could not be done, the earlier ones taken back in reverse, no after-effect', async () => {
  const log: string[] = [];
  const fields: LogFields = {};
  const out = await runEffects(decision(ALL), envOf(fields, []), locks, recorder(log, 'headers', { after: ['block', 'notify'] }));
  assert.equal(out.reply.code, 451);
  assert.match(String(out.reply.text), /^4\.3\.0 Virus found but the message could not be headersed, try again later$/);
  assert.equal(out.action, 'tempfail');
  assert.equal(out.failed, 'headers');
  assert.equal(fields['headers_error'], 'EFAIL');
  assert.deepEqual(log, ['run quarantine', 'run handler', 'run strip', 'run mark', 'run headers', 'undo mark', 'undo strip', 'undo handler', 'undo quarantine']);
});

test("a runner's own failure answer wins (the handler's exit 75)", async () => {
  const log: string[] = [];
  const out = await runEffects(decision([{ kind: 'handler', program: '/x' }, { kind: 'drop', keep: [] }]), envOf({}, []), locks, recorder(log, 'handler', { failReply: true }));
  assert.deepEqual(out.reply, { code: 451, text: '4.7.1 held by the handler' });
  assert.deepEqual(log, ['run handler']);
});

test('an after-effect that fails is logged and changes nothing', async () => {
  const log: string[] = [];
  const lines: string[] = [];
  const out = await runEffects(decision([{ kind: 'drop', keep: [] }, { kind: 'notify' }]), envOf({}, lines), locks, recorder(log, 'notify', { after: ['notify'] }));
  assert.equal(out.reply.code, 200);
  assert.equal(out.action, 'drop');
  assert.ok(lines.some((l) => /event=effect-failed effect=notify .*code=EFAIL/.test(l)), lines.join('\n'));
});

test('an effect with no runner answers 451, never skipped', async () => {
  const out = await runEffects(decision([{ kind: 'strip' }]), envOf({}, []), locks, {});
  assert.equal(out.reply.code, 451);
  assert.equal(out.failed, 'strip');
});

test('strip that cannot deliver: mark and headers are skipped and the message is dropped', async () => {
  const log: string[] = [];
  const runners = recorder(log);
  const strip: EffectRunner<'strip'> = { kind: 'strip', phase: 'commit', writes: true, failVerb: 'stripped', async run(_e, env) { log.push('run strip'); env.state.dropInstead = 'irregular MIME'; } };
  const fields: LogFields = {};
  const out = await runEffects({ ...decision([{ kind: 'strip' }, { kind: 'headers' }]), action: 'strip' }, envOf(fields, []), locks, { ...runners, strip });
  assert.equal(out.reply.code, 200);
  assert.equal(out.action, 'drop');
  assert.equal(fields['strip_failed'], 'irregular MIME');
  assert.deepEqual(log, ['run strip', 'run drop']);
});

test('a request file locked by another request: 451, nothing run', async () => {
  const log: string[] = [];
  const busy = { take: () => undefined, release: () => undefined };
  const out = await runEffects(decision([{ kind: 'drop', keep: [] }]), envOf({}, []), busy, recorder(log));
  assert.equal(out.reply.code, 451);
  assert.match(String(out.reply.text), /already processing/);
  assert.deepEqual(log, []);
});
