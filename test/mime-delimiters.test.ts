/**
 * lenient/delimiters.ts as a codec: the same delimiter lines wherever its input is split into
 * chunks, with every line end (CRLF split across chunks included), long "--" lines matched by
 * prefix (their tail is never carried), and lines that only look like delimiters.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chunked } from './helpers/chunked-bytes.js';
import { findDelimiters, MAX_DELIMITER_LINE_BYTES } from '../src/mime/lenient/delimiters.js';

const long = '--b' + 'x'.repeat(MAX_DELIMITER_LINE_BYTES + 50);
const input = Buffer.from(['pre', '--b', 'a', '--b  ', 'b', '--bogus', 'c', long, 'd', '--c', '--b--', 'e', '--b'].join('\r\n') + '\r\n', 'latin1');

test('delimiters: the same lines wherever the input is split, long lines by prefix', async () => {
  const whole = await findDelimiters(chunked(input, []), 0, input.length, ['b', 'c'], 100);
  // strict: "--b", "--b  ", "--b--", the last "--b"; prefix too: "--bogus" and the long line
  assert.deepEqual(whole[0]!.map((d) => [d.close, d.strict]), [[false, true], [false, true], [false, false], [false, false], [true, true], [false, true]]);
  assert.deepEqual(whole[1]!.map((d) => [d.close, d.strict]), [[false, true]]);
  const longOne = whole[0]![3]!;
  assert.equal(input.toString('latin1', longOne.lineStart, longOne.lineEnd), long + '\r\n', 'the long line ends at its own line end');
  for (let i = 0; i <= input.length; i++) {
    assert.deepEqual(await findDelimiters(chunked(input, [i]), 0, input.length, ['b', 'c'], 100), whole, `split at ${i}`);
  }
  for (let i = 0; i + 1 < input.length; i += 7) {
    assert.deepEqual(await findDelimiters(chunked(input, [i, i + 1, i + 2]), 0, input.length, ['b', 'c'], 100), whole, `one-byte chunks at ${i}`);
  }
});

test('delimiters: a long line at the very end, with no line end, ends at the end of the range', async () => {
  const buf = Buffer.from('x\n' + long, 'latin1');
  for (const cuts of [[], [3], [MAX_DELIMITER_LINE_BYTES], [buf.length - 1]]) {
    const [b] = await findDelimiters(chunked(buf, cuts), 0, buf.length, ['b'], 10);
    assert.deepEqual(b!.map((d) => [d.lineStart, d.lineEnd, d.strict]), [[2, buf.length, false]], JSON.stringify(cuts));
  }
});

test('a delimiter whose "--" straddles a read chunk (256 KiB) still splits the body (it was lost)', async () => {
  const { mkdtemp, rm, writeFile } = await import('node:fs/promises');
  const { tmpdir } = await import('node:os');
  const { join } = await import('node:path');
  const { DEFAULT_MIME_LIMITS, extractParts, MessageInput } = await import('../src/mime/index.js');
  const { eicar } = await import('./helpers/eicar.js');
  const E = eicar();
  // the boundary only in Content-Disposition: the lenient reading alone splits this body
  const head = 'From: a@example.test\nSubject: t\nMIME-Version: 1.0\nContent-Type: multipart/mixed\nContent-Disposition: inline; boundary="b"\n\n';
  const first = '--b\nContent-Type: text/plain\n\n';
  const CHUNK = 256 * 1024;
  const filler = 'f'.repeat(CHUNK - 1 - first.length - 1) + '\n'; // the next "-" is the chunk's last byte
  const att = `--b\nContent-Type: application/octet-stream\nContent-Transfer-Encoding: base64\n\n${E.toString('base64')}\n--b--\n`;
  const body = first + filler + att + 'e'.repeat(1024 * 1024 + 10) + '\n'; // past the 1 MiB read-ahead: chunks of 256 KiB
  assert.equal(body.indexOf('--b\nContent-Type: application'), CHUNK - 1);
  const dir = await mkdtemp(join(tmpdir(), 'avf-delims-'));
  try {
    const path = join(dir, 'm.eml');
    await writeFile(path, head + body, 'latin1');
    const x = await extractParts(MessageInput.fromFile(path), { limits: DEFAULT_MIME_LIMITS, tmpdir: dir });
    try {
      const holding: string[] = [];
      for (const p of x.parts) if ((await p.source.buffer()).equals(E)) holding.push(`${p.path} ${p.reading}`);
      assert.equal(holding.length, 1, JSON.stringify(x.parts.map((p) => [p.path, p.reading, p.size])));
    } finally {
      await x.dispose();
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
