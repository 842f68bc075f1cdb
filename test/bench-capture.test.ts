/**
 * The benchmark's filter section scans the mix as a REAL Courier writes it (bench/courier-capture.ts:
 * the probe filter copies each data file; run under the Courier lock like every Courier suite):
 * every message of a small mix comes back, each the data file Courier's submit wrote for it (its
 * Received: line first, LF line ends), each multipart one rewritten by Courier (its MIME notice
 * as the preamble, none of the generator's boundaries left), and the body bytes of a single-part
 * message unchanged; the spool then holds exactly those bytes. No speed is asserted.
 *
 * Needs root, courier-mta, busybox; fails (never skips) without them.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { captureCourierData } from '../bench/courier-capture.js';
import { generateMix } from '../bench/mix.js';
import { writeSpool } from '../bench/spool.js';

const COURIER_NOTICE = 'This is a MIME-formatted message.  If you see this text it means that your';

test('the mix captured through Courier: every message, as submit wrote it, multipart ones rewritten', async () => {
  const mix = generateMix(12);
  const captured = await captureCourierData(mix, undefined, () => undefined);
  assert.equal(captured.length, mix.length);
  const multipart = mix.filter((m) => /^Content-Type: multipart\//im.test(m.raw.toString('latin1')));
  assert.ok(multipart.length > 0 && multipart.length < mix.length, 'the small mix holds both shapes');
  for (const [i, m] of mix.entries()) {
    const data = captured[i]!.toString('latin1');
    assert.match(data, /^Received: /, `#${m.index} starts with Courier's Received: line`);
    assert.ok(!data.includes('\r\n'), `#${m.index}: LF line ends, as Courier stores mail`);
    const raw = m.raw.toString('latin1').replace(/\r\n/g, '\n');
    const body = raw.slice(raw.indexOf('\n\n') + 2);
    if (multipart.includes(m)) {
      assert.ok(data.includes(COURIER_NOTICE), `#${m.index}: Courier's MIME notice`);
      const boundary = /boundary="([^"]+)"/.exec(raw)![1]!;
      assert.ok(!data.includes(`--${boundary}`), `#${m.index}: Courier's own boundaries`);
    } else {
      assert.ok(data.endsWith(body), `#${m.index}: the body as sent`);
    }
  }
  const dir = mkdtempSync(join(tmpdir(), 'avf-capture-spool-'));
  try {
    const spool = writeSpool(dir, mix, captured);
    spool.forEach((e, i) => assert.deepEqual(readFileSync(e.dataPath), captured[i]));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
