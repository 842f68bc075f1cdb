/**
 * Which item goes to which engine (src/scan/route.ts): an engine that parses mail gets the raw
 * message and only the parts it would not find itself; for a message readers may read
 * differently (Extraction.irregular) it gets every part. The detection side is proved end to
 * end by test/mime-corpus.test.ts through a real clamd; here: the routing rules, that real mail
 * stays "regular" (so clamd scans each attachment once), and which evasions make a message
 * irregular.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { route } from '../src/scan/route.js';
import type { Engine, ScanItem } from '../src/engines/engine.js';
import { bufferSource } from '../src/scan/sources.js';
import { DEFAULT_MIME_LIMITS, extractParts } from '../src/mime/index.js';
import { corpus } from './helpers/corpus.js';
import { courierDataFile, generateMix } from '../bench/mix.js';

const engine = (label: string, parsesMail: boolean): Engine => ({
  label, parsesMail, unpacks: parsesMail,
  scan: async () => ({ status: 'clean' }),
  version: async () => label,
  close: async () => undefined,
});
const item = (id: string, reading: string): ScanItem => ({ id, kind: id === 'raw' ? 'raw' : 'part', reading, source: bufferSource(Buffer.from(id)) });

test('route: a mail-parsing engine gets the raw message and the parts only other readings found; the others get everything', () => {
  const items = [item('raw', 'raw'), item('1', 'standard'), item('2', 'standard'), item('0/preamble', 'preamble'), item('1/uuencode1', 'uuencode'), item('2', 'lenient')];
  const clamd = engine('clamd', true);
  const yara = engine('yara', false);
  const jobs = route(items, [clamd, yara]);
  assert.deepEqual(jobs.filter((j) => j.engine === clamd).map((j) => `${j.item.id}:${j.item.reading}`), ['raw:raw', '1/uuencode1:uuencode', '2:lenient']);
  assert.equal(jobs.filter((j) => j.engine === yara).length, items.length);
  // irregular: clamd gets every part as well
  assert.equal(route(items, [clamd], true).length, items.length);
});

async function extract(bytes: Buffer, dir: string) {
  return extractParts({ buffer: bytes }, { limits: DEFAULT_MIME_LIMITS, tmpdir: dir });
}

test('regular mail stays regular: the benchmark mix, the clean corpus, CRLF, a Courier-rewritten multipart', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'avf-route-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const samples: Array<[string, Buffer]> = [
    ...generateMix(60).flatMap((m): Array<[string, Buffer]> => [[`mix ${m.index} (${m.kind}) as sent`, m.raw], [`mix ${m.index} (${m.kind}) as Courier stores it`, courierDataFile(m, 'Q')]]),
    ...corpus().filter((c) => c.expect === 'clean').map((c): [string, Buffer] => [c.name, c.bytes]),
    ['crlf', Buffer.from('From: a@b\r\nSubject: x\r\nContent-Type: multipart/mixed; boundary="b"\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nhi\r\n--b\r\nContent-Type: application/pdf\r\nContent-Transfer-Encoding: base64\r\n\r\nJVBERi0xLjQK\r\n--b--\r\n')],
    ['courier-rewritten', Buffer.from('Received: from x by y with ESMTP; now\nMIME-Version: 1.0\nContent-Type: multipart/mixed; boundary="=_courier-1"\n\nThis is a MIME-formatted message.  If you see this text it means that your\nE-mail software does not support MIME-formatted messages.\n\n--=_courier-1\nContent-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: 7bit\n\nhello\n\n--=_courier-1--\n')],
  ];
  for (const [name, bytes] of samples) {
    const ex = await extract(bytes, dir);
    assert.equal(ex.irregular, undefined, `${name}: ${ex.irregular}`);
    await ex.dispose();
  }
});

test('evasions where readers disagree make a message irregular (so clamd is given our parts too)', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'avf-route-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const irregular = ['base64-mid-padding', 'base64-junk', 'ct-space-before-colon', 'comment-in-field-name', 'dup-content-type', 'dup-cte-last-wins', 'dup-cte-first-wins',
    'dup-boundary-first', 'bare-cr-line-ends', 'bare-cr-hidden-header', 'no-blank-line', 'unknown-cte-base64'];
  const byName = new Map(corpus().map((c) => [c.name, c.bytes]));
  for (const name of irregular) {
    const bytes = byName.get(name);
    assert.ok(bytes, `corpus has ${name}`);
    const ex = await extract(bytes, dir);
    assert.ok(ex.irregular !== undefined, `${name} should be irregular`);
    await ex.dispose();
  }
});

test('route: members of containers go only to engines that do not unpack themselves', () => {
  const member: ScanItem = { id: '2/a.zip/x.exe', kind: 'part', reading: 'container', container: 'zip', source: bufferSource(Buffer.from('x')) };
  const items = [item('raw', 'raw'), item('2', 'standard'), member];
  const clamd = engine('clamd', true);
  const yara = engine('yara', false);
  for (const irregular of [false, true]) {
    const jobs = route(items, [clamd, yara], irregular);
    assert.ok(!jobs.some((j) => j.engine === clamd && j.item === member), 'clamd unpacks the zip itself');
    assert.ok(jobs.some((j) => j.engine === yara && j.item === member), 'yara is given the member');
  }
});
