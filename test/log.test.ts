import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createLogger, formatFields } from '../src/ops/log.js';
import { RateLimiter } from '../src/ops/rate-limit.js';

test('log values: controls, C1, line separators and bidi overrides are escaped, quotes and backslashes too', () => {
  assert.equal(formatFields({ a: 'plain', b: 'two words', c: '' }), 'a=plain b="two words" c=""');
  assert.equal(formatFields({ x: 'a\nverdict=clean' }), 'x="a\\x0averdict=clean"');
  assert.equal(formatFields({ x: 'a\u0085b' }), 'x="a\\x85b"');
  assert.equal(formatFields({ x: 'exe\u202Etxt' }), 'x="exe\\u202etxt"');
  assert.equal(formatFields({ x: 'a\u2028b\u2029c' }), 'x="a\\u2028b\\u2029c"');
  assert.equal(formatFields({ x: 'back\\slash "q"' }), 'x="back\\\\slash \\"q\\""');
  assert.equal(formatFields({ x: 'zero\u200Bwidth\uFEFF' }), 'x="zero\\u200bwidth\\ufeff"');
  assert.equal(formatFields({ x: 'lone\uD800' }), 'x="lone\\ud800"');
  assert.equal(formatFields({ x: 'ok \u{1F600} ünïcödé' }), 'x="ok \u{1F600} ünïcödé"');
  assert.equal(formatFields({ list: ['a', 'b'], n: 3, skip: undefined }), 'list=a,b n=3');
});

test('logger: levels filter and label lines; a sink that throws loses the line, not the process', () => {
  const lines: string[] = [];
  const log = createLogger((l) => lines.push(l), 'warning');
  log.event('started', {}, 'info');
  log.event('degraded', { x: 1 }, 'error');
  log.message({ y: 2 });
  assert.deepEqual(lines, ['avfilter: level=error event=degraded x=1\n']);
  log.setLevel?.('info');
  log.message({ y: 2 });
  assert.equal(lines[1], 'avfilter: y=2\n');
  const broken = createLogger(() => { throw Object.assign(new Error('EPIPE'), { code: 'EPIPE' }); });
  assert.doesNotThrow(() => broken.event('started'));
});

test('rate limiter: a flood of one event writes a few lines and then one count of what it held back', () => {
  const lines: string[] = [];
  const log = createLogger((l) => lines.push(l));
  const rl = new RateLimiter(60_000, 5);
  for (let i = 0; i < 1000; i++) rl.event(log, 'request-read-timeout', { conn: i }, 'warning');
  rl.flush();
  assert.equal(lines.length, 6);
  assert.match(lines[5]!, /event=suppressed of=request-read-timeout count=995/);
});
