import { test } from 'node:test';
import assert from 'node:assert/strict';
import { decide } from '../src/policy/actions.js';
import { policy } from './helpers/policy.js';
import type { Verdict } from '../src/policy/verdict.js';

const base = policy({ infected: 'drop', error: 'tempfail', limit: 'tempfail' });
const infected: Verdict = { kind: 'infected', names: ['Virus.A', 'Virus.B'], findings: [] };
const error: Verdict = { kind: 'error', code: 'ECONNECT', reason: 'refused', origin: 'scanner' };
const limit: Verdict = { kind: 'limit', code: 'EMIME_DEPTH_LIMIT', reason: 'too deep' };

test('clean is the only 2xx without a named policy', () => {
  const verdicts: Verdict[] = [infected, error, limit, { kind: 'busy', reason: 'waitfile' }];
  const strict = policy({ infected: 'reject', error: 'tempfail', limit: 'tempfail' });
  for (const v of verdicts) assert.ok(decide(v, strict).code >= 400, v.kind);
  assert.equal(decide({ kind: 'clean', items: 2 }, strict).code, 200);
});

test('infected: drop, reject with names, tempfail, pass', () => {
  const drop = decide(infected, base);
  assert.equal(drop.action, 'drop');
  assert.equal(drop.code, 200);
  assert.equal(drop.verdict, 'infected');
  const rej = decide(infected, policy({ infected: 'reject' }));
  assert.equal(rej.code, 550);
  assert.match(rej.text, /Virus\.A, Virus\.B/);
  assert.equal(decide(infected, policy({ infected: 'tempfail' })).code, 451);
  const pass = decide(infected, policy({ infected: 'pass' }));
  assert.equal(pass.action, 'pass');
  assert.equal(pass.verdict, 'infected');
});

test('scanner errors tempfail unless action.error = accept, which is logged as such', () => {
  const t = decide(error, base);
  assert.equal(t.code, 451);
  assert.equal(t.verdict, 'tempfail');
  assert.match(t.text, /ECONNECT/);
  const a = decide(error, policy({ error: 'accept' }));
  assert.equal(a.code, 200);
  assert.equal(a.action, 'accept-unscanned');
  assert.equal(a.verdict, 'accepted-unscanned');
});

test('limits and waitfile are never accepted, even with action.error = accept', () => {
  const open = policy({ error: 'accept' });
  assert.equal(decide(limit, open).code, 451);
  assert.equal(decide(limit, policy({ error: 'accept', limit: 'reject' })).code, 554);
  assert.equal(decide({ kind: 'busy', reason: 'waitfile present' }, open).code, 451);
});

test('fail-open reload: with action.error = accept, only a scanner error is accepted; an abort, a bad request or an internal fault is 451', () => {
  const open = policy({ error: 'accept' });
  assert.equal(decide(error, open).code, 200);
  for (const origin of ['abort', 'input', 'internal'] as const) {
    const d = decide({ kind: 'error', code: 'EABORTED', reason: 'reload closed the engine', origin }, open);
    assert.equal(d.code, 451, origin);
    assert.equal(d.verdict, 'tempfail', origin);
  }
});

test('encrypted: reject 554 naming the format (default), tempfail 451, pass 200; logged as encrypted', () => {
  const enc: Verdict = { kind: 'encrypted', name: 'Encrypted.Zip', format: 'zip', path: '2/invoice.zip/a.exe' };
  const rej = decide(enc, base);
  assert.equal(rej.code, 554);
  assert.equal(rej.action, 'reject');
  assert.equal(rej.verdict, 'encrypted');
  assert.match(rej.text, /^5\.7\.1 .*encrypted.*\(Encrypted\.Zip\)$/);
  // the path is a name the sender chose: the log has it, the SMTP reply does not
  assert.doesNotMatch(rej.text, /invoice/);
  assert.equal(decide(enc, policy({ encrypted: 'tempfail' })).code, 451);
  const pass = decide(enc, policy({ encrypted: 'pass' }));
  assert.equal(pass.code, 200);
  assert.equal(pass.action, 'pass');
  assert.equal(pass.verdict, 'encrypted');
});
