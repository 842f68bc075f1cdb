import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, chownSync, mkdtempSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { editHeaderBlock, insertHeader, planHeaderEdit } from '../src/courierfilter/data-header.js';
import { scannedValue, statusValue } from '../src/effects/headers.js';
import type { Engine } from '../src/engines/engine.js';
import { unwritable } from './helpers/unwritable.js';

const dir = mkdtempSync(join(tmpdir(), 'avf-hdr-'));

test('insertHeader puts the field after Courier\'s folded Received header, same inode', async () => {
  const p = join(dir, 'D1');
  const msg = 'Received: from x ([::ffff:127.0.0.1])\n  by vm with ESMTP\n\tid 1; Sat\nFrom: a@b\nSubject: s\n\nbody\n';
  writeFileSync(p, msg);
  const ino = statSync(p).ino;
  await insertHeader(p, 'X-Virus-Found: A, B (avfilter)', dir);
  assert.equal(readFileSync(p, 'utf8'), 'Received: from x ([::ffff:127.0.0.1])\n  by vm with ESMTP\n\tid 1; Sat\nX-Virus-Found: A, B (avfilter)\nFrom: a@b\nSubject: s\n\nbody\n');
  assert.equal(statSync(p).ino, ino);
});

test('insertHeader: CR/LF in the field cannot forge more headers; large bodies survive intact', async () => {
  const p = join(dir, 'D2');
  const body = Buffer.alloc(3 * 1024 * 1024, 'a');
  writeFileSync(p, Buffer.concat([Buffer.from('Received: x\nSubject: s\n\n'), body]));
  await insertHeader(p, 'X-Virus-Found: Evil\r\nBcc: victim@example.test', dir);
  const out = readFileSync(p);
  assert.ok(out.toString('latin1').startsWith('Received: x\nX-Virus-Found: Evil Bcc: victim@example.test\nSubject: s\n\n'));
  assert.equal(out.length, 24 + 45 + body.length);
  assert.equal(readdirSync(dir).filter((n) => n.startsWith('hdr-')).length, 0, 'temp copy removed');
});

const LF_MSG = 'Received: from x ([::ffff:192.0.2.7])\n  by mx with ESMTP\n  id 1; Mon\nX-Virus-Status: Clean\nFrom: a@b\nx-virus-scanned : forged\n  continued\nSubject: s\nMIME-Version: 1.0\nContent-Type: multipart/mixed; boundary="b"\n\n--b\nX-Virus-Status: in a part, not ours to rename\n\nX-Virus-Status: in a body\n--b--\n';
const FIELDS = [{ name: 'X-Virus-Scanned', value: 'avfilter 0.1.0 (clamd 1.4.3/27500; yara) on mx' }, { name: 'X-Virus-Status', value: 'Clean' }];

for (const crlf of [false, true]) {
  test(`editHeaderBlock (${crlf ? 'CRLF' : 'LF'}): fields after Received:, forged ones renamed X-Old- in the top block only; inode, owner, mode kept; undo`, async () => {
    const text = crlf ? LF_MSG.replace(/\n/g, '\r\n') : LF_MSG;
    const eol = crlf ? '\r\n' : '\n';
    const p = join(dir, `E-${crlf ? 'crlf' : 'lf'}`);
    writeFileSync(p, text);
    chmodSync(p, 0o640);
    if (process.getuid?.() === 0) chownSync(p, 1234, 2345);
    const before = statSync(p);
    for (const bytes of [undefined, Buffer.from(text, 'latin1')]) {
      const edit = await editHeaderBlock({ path: p, size: before.size, bytes }, { add: FIELDS, rename: ['X-Virus-Status', 'X-Virus-Scanned'] });
      assert.equal(edit.renamed, 2);
      const want = text
        .replace(`id 1; Mon${eol}`, `id 1; Mon${eol}X-Virus-Scanned: avfilter 0.1.0 (clamd 1.4.3/27500; yara) on mx${eol}X-Virus-Status: Clean${eol}`)
        .replace(`${eol}X-Virus-Status: Clean${eol}From`, `${eol}X-Old-X-Virus-Status: Clean${eol}From`)
        .replace('x-virus-scanned : forged', 'X-Old-x-virus-scanned : forged');
      assert.equal(readFileSync(p, 'latin1'), want);
      assert.equal(edit.added, want.length - text.length);
      const after = statSync(p);
      assert.deepEqual([after.ino, after.mode, after.uid, after.gid], [before.ino, before.mode, before.uid, before.gid]);
      await edit.undo();
      assert.equal(readFileSync(p, 'latin1'), text, 'undo: byte for byte');
    }
  });
}

test('editHeaderBlock: hostile values are made one safe line and folded; a field name only renames whole names', () => {
  const plan = planHeaderEdit(Buffer.from('Received: x\nX-Virus-Status-Extra: y\n\nbody\n'), true, {
    add: [{ name: 'X-Virus-Status', value: `Infected (Evil\r\nBcc: victim@example.test\u0000\u202e, ${'Long.Name.'.repeat(12)}, Other)` }],
    rename: ['X-Virus-Status'],
  })!;
  const added = plan.patch.toString('latin1');
  assert.equal(plan.renamed, 0);
  assert.equal(/\r|\nBcc:/.test(added), false);
  for (const line of added.split('\n').filter(Boolean)) assert.ok(line.length <= 130, line);
  assert.match(added, /^X-Virus-Status: Infected \(Evil Bcc: victim@example\.test\?\?,\n /);
  assert.ok(added.split('\n').slice(1).filter(Boolean).every((l) => l.startsWith(' ')), 'continuation lines are folded');
});

test('editHeaderBlock: a large file has its tail shifted in place; undo puts it back; an unwritable file is left as it was', async () => {
  const p = join(dir, 'E-large');
  const body = Buffer.alloc(5 * 1024 * 1024 + 3, 'q');
  const orig = Buffer.concat([Buffer.from('Received: x\nX-Virus-Scanned: forged\nSubject: s\n\n'), body]);
  writeFileSync(p, orig);
  const ino = statSync(p).ino;
  const edit = await editHeaderBlock({ path: p, size: orig.length }, { add: [FIELDS[1]!], rename: ['X-Virus-Scanned'] });
  const out = readFileSync(p);
  assert.equal(out.subarray(0, 80).toString('latin1'), 'Received: x\nX-Virus-Status: Clean\nX-Old-X-Virus-Scanned: forged\nSubject: s\n\nqqqqqqqqqqqqqqqqqqqq'.slice(0, 80));
  assert.ok(out.subarray(out.length - body.length).equals(body));
  assert.equal(statSync(p).ino, ino);
  await edit.undo();
  assert.ok(readFileSync(p).equals(orig));

  const unlock = unwritable(p);
  try {
    await assert.rejects(editHeaderBlock({ path: p, size: orig.length }, { add: FIELDS, rename: [] }), { code: 'EDATA_WRITE' });
  } finally {
    unlock();
  }
  assert.ok(readFileSync(p).equals(orig));
});

test('X-Virus-Status and X-Virus-Scanned texts: only clean says Clean; names listed and bounded; engines with their signatures', () => {
  assert.equal(statusValue({ verdict: { kind: 'clean', items: 2 } }), 'Clean');
  assert.equal(statusValue({ verdict: { kind: 'infected', names: ['A', 'B'], findings: [] } }), 'Infected (A, B)');
  assert.equal(statusValue({ verdict: { kind: 'clean', items: 2 }, stripped: ['A'] }), 'Clean (stripped: A)');
  assert.equal(statusValue({ verdict: { kind: 'error', code: 'ECONNECT', reason: 'clamd down', origin: 'scanner' } }), 'Unscanned (ECONNECT: clamd down)');
  assert.equal(statusValue({ verdict: { kind: 'encrypted', name: 'Encrypted.Zip', format: 'zip', path: '2/a.zip' } }), 'Unscanned (encrypted: Encrypted.Zip)');
  assert.match(statusValue({ verdict: { kind: 'infected', names: Array.from({ length: 15 }, (_, i) => `N${i}`), findings: [] } }), /N9 and 5 more\)$/);
  const engines = [{ label: 'clamd', signatureVersion: () => '1.4.3/27500/Mon Dec  7 00:00:00 2026' }, { label: 'yara' }] as unknown as Engine[];
  assert.match(scannedValue(engines, 'mx.example.test'), /^avfilter \d+\.\d+\.\d+\S* \(clamd 1\.4\.3\/27500\/Mon Dec 7 00:00:00 2026; yara\) on mx\.example\.test$/);
});
