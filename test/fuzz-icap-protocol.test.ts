/**
 * Fuzz of the ICAP answer parser and verdict table (src/engines/icap/protocol.ts, verdict.ts):
 * for any bytes, pushed in any pieces, the parser never throws, gives the same events and the
 * same error however the input is cut, and an answer that parsed to its end with no threat
 * named and no 204 or echo is never "clean". Seeded and bounded; see test/helpers/fuzz.ts.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { IcapParser, type IcapEvent, type IcapHead } from '../src/engines/icap/protocol.js';
import { verdictOf } from '../src/engines/icap/verdict.js';
import { cutPoints, fuzz, fuzzIterations, fuzzSeed, mutateBytes, piecesAt } from './helpers/fuzz.js';

const SEED = fuzzSeed(0x5eed1cab);

const ANSWERS = [
  'ICAP/1.0 204 Unmodified\r\nServer: C-ICAP/0.5.10\r\nISTag: "CI0001"\r\n\r\n',
  'ICAP/1.0 100 Continue\r\n\r\nICAP/1.0 204 Unmodified\r\n\r\n',
  'ICAP/1.0 200 OK\r\nX-Infection-Found: Type=0; Resolution=2; Threat=Eicar;\r\nX-Violations-Found: 1\r\n\t-\r\n\tEicar\r\n\t0\r\n\t0\r\n' +
    'Encapsulated: res-hdr=0, res-body=26\r\n\r\nHTTP/1.0 403 Forbidden\r\n\r\n5\r\nhello\r\n0\r\n\r\n',
  'ICAP/1.0 200 OK\r\nEncapsulated: req-hdr=0, res-hdr=29, res-body=68\r\n\r\nGET /x HTTP/1.1\r\nHost: a\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\n3\r\nabc\r\n0\r\n\r\n',
  'ICAP/1.0 500 Server error\r\nEncapsulated: null-body=0\r\n\r\n',
].map((s) => Buffer.from(s, 'latin1'));

type Seen = { events: unknown[]; error: string | undefined; done: boolean; heads: IcapHead[]; httpHead: string };

function parse(pieces: readonly Buffer[]): Seen {
  const p = new IcapParser();
  const events: unknown[] = [];
  const heads: IcapHead[] = [];
  let body = '';
  let httpHead = '';
  const take = (evs: IcapEvent[]): void => {
    for (const e of evs) {
      if (e.kind === 'body') body += e.data.toString('latin1');
      else if (e.kind === 'head') { heads.push(e.head); events.push({ head: e.head.status, headers: [...e.head.headers] }); }
      else { if (e.kind === 'http-head') httpHead = e.text; events.push(e); }
    }
  };
  for (const piece of pieces) take(p.push(piece));
  events.push({ body });
  return { events, error: p.error, done: p.done, heads, httpHead };
}

test('fuzz: the ICAP parser never throws and does not depend on how the bytes are cut; nothing unnamed that parsed is clean unless 204 or echoed', () => {
  const run = fuzz('icap-parser', { seed: SEED, iterations: fuzzIterations(3000) }, (c) => {
    const input = mutateBytes(c.rnd.pick(ANSWERS), c.rnd);
    c.note('input', input);
    const whole = parse([input]);
    const cuts = cutPoints(input.length, c.rnd);
    c.note('cuts', cuts);
    const cut = parse(piecesAt(input, cuts));
    assert.deepEqual(cut.events, whole.events);
    // the same failure (its quote of the bytes at hand may be longer or shorter)
    assert.equal(cut.error?.split(':')[0], whole.error?.split(':')[0]);
    assert.equal(cut.done, whole.done);
    const final = whole.heads.filter((h) => h.status !== 100).at(0);
    if (whole.done && final !== undefined) {
      const r = verdictOf({ head: final, httpHead: whole.httpHead, echoed: false }, 'fuzz');
      if (r.status === 'clean') assert.equal(final.status, 204, 'clean without 204 or an echo');
      if (r.status === 'infected') assert.ok(r.names.length > 0 && r.names.every((n) => n.length > 0 && !/[\x00-\x1f]/.test(n)));
    }
  });
  assert.ok(run.iterations > 0);
});
