import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { insertHeader } from '../src/courierfilter/data-header.js';

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
