/**
 * mime/layout.ts: the byte offsets of the standard reading's parts (what strip cuts by). The
 * offsets add up to the message, each node's header is at its offset, the paths are the
 * standard reading's, and a message read as a stream split at any chunk size gives the same
 * layout as the whole buffer.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { extractParts, MessageInput, DEFAULT_MIME_LIMITS, mimeLayout, nodeAt, type LayoutNode } from '../src/mime/index.js';
import { attachment, message, messagePart, multipart, textPart, type Eol } from './helpers/mail.js';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

function messages(eol: Eol): Buffer[] {
  const inner = message(multipart([textPart('inner\n', { eol }), attachment(Buffer.from('in'), { cte: 'base64', filename: 'in.bin', eol })], { eol }), { eol });
  return [
    message(textPart('just text\n', { eol }), { eol }),
    message(multipart([
      textPart('a\n', { eol }),
      multipart([textPart('alt one\n', { eol }), textPart('alt two\n', { eol })], { subtype: 'alternative', eol }),
      attachment(Buffer.alloc(3000, 7), { cte: 'base64', filename: 'x.bin', eol }),
      messagePart(inner, { eol, disposition: 'attachment' }),
    ], { eol, preamble: 'preamble', epilogue: 'epilogue' }), { eol }),
  ];
}

function flat(n: LayoutNode, out: LayoutNode[] = []): LayoutNode[] {
  out.push(n);
  for (const c of n.children) flat(c, out);
  return out;
}

const shape = (n: LayoutNode): unknown => flat(n).map((x) => [x.path, x.start, x.headerEnd, x.end, x.contentType]);

for (const eol of ['\n', '\r\n'] as const) {
  test(`layout (${eol === '\n' ? 'LF' : 'CRLF'}): offsets add up, headers where they say, the standard reading's paths, the same at every chunk size`, async () => {
    const work = mkdtempSync(join(tmpdir(), 'avf-layout-'));
    for (const msg of messages(eol)) {
      const whole = await mimeLayout(msg, DEFAULT_MIME_LIMITS.maxHeaderBytes);
      assert.equal(whole.counted, msg.length);
      for (const n of flat(whole.root)) {
        assert.ok(msg.subarray(n.start, n.headerEnd).equals(n.header), `header of ${n.path}`);
        assert.ok(n.end >= n.headerEnd && n.end <= msg.length);
      }
      // every leaf the standard reading decoded is a node here, at the same path
      const x = await extractParts(MessageInput.fromBuffer(msg), { limits: DEFAULT_MIME_LIMITS, tmpdir: work });
      const top = x.parts.filter((p) => p.reading === 'standard' && !p.path.startsWith('4.'));
      await x.dispose();
      for (const p of top) assert.ok(nodeAt(whole.root, p.path), `part ${p.path}`);
      for (const size of [1, 2, 3, 7, 64, 1000]) {
        const chunks: Buffer[] = [];
        for (let i = 0; i < msg.length; i += size) chunks.push(msg.subarray(i, i + size));
        const streamed = await mimeLayout(Readable.from(chunks), DEFAULT_MIME_LIMITS.maxHeaderBytes);
        assert.deepEqual(shape(streamed.root), shape(whole.root), `chunks of ${size}`);
        assert.equal(streamed.counted, msg.length);
      }
    }
  });
}

test('layout: a path inside an attached message leads to the attached message; a path it does not have to nothing', async () => {
  const msg = messages('\n')[1]!;
  const l = await mimeLayout(msg, DEFAULT_MIME_LIMITS.maxHeaderBytes);
  assert.equal(nodeAt(l.root, '4.2')?.path, '4');
  assert.equal(nodeAt(l.root, '4.2')?.contentType, 'message/rfc822');
  assert.equal(nodeAt(l.root, '2.2')?.contentType, 'text/plain');
  assert.equal(nodeAt(l.root, '3')?.filename, 'x.bin');
  assert.equal(nodeAt(l.root, '5'), undefined);
  assert.equal(nodeAt(l.root, '1.1'), undefined);
});
