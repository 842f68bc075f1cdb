/**
 * Regression: messages whose boundary parameter, delimiter lines or header grammar are
 * irregular, which clamd's own mail parser (or Python's email package) decodes and our readings
 * did not, so that every engine answered OK (test/helpers/parser-divergence.ts,
 * readerDecodedMessages: trimmed, quotes kept, single-quoted, commented and folded boundaries,
 * a parameter line without indentation, a boundary without ";", none at all, delimiter lines
 * after blanks; uuencode with a non-octal mode, or inside a media or binary part). Each is now
 * read the way those readers read it, as an extra reading of an irregular message; a message
 * written plainly keeps its one reading. clamd's heuristics too: a base64 block after a
 * Content-Transfer-Encoding line written into a text, in any part. And the new searches as codecs: the guessed
 * boundaries and indented delimiters the same wherever the input is split, within their bounds.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { looseBoundaries, MAX_LOOSE_BOUNDARY_MATCHES } from '../src/mime/lenient/boundary-variants.js';
import { findDelimiters, MAX_DELIMITER_INDENT_BYTES } from '../src/mime/lenient/delimiters.js';
import { guessBoundaries, MAX_GUESSED_BOUNDARIES } from '../src/mime/lenient/guess-boundary.js';
import { EmbeddedScanner, MAX_CTE_HEAD_LINES, type ScanEvent } from '../src/mime/embedded/scan.js';
import { StartLineSniffer } from '../src/mime/embedded/start-lines.js';
import { parseHeaderBlock } from '../src/mime/lenient/header.js';
import { interpret } from '../src/mime/lenient/interpret.js';
import { DEFAULT_MIME_LIMITS, extractParts, MessageInput, type Extraction } from '../src/mime/index.js';
import { eicar } from './helpers/eicar.js';
import { readerDecodedMessages } from './helpers/parser-divergence.js';
import { chunked } from './helpers/chunked-bytes.js';

const TOP = 'From: a@example.test\nTo: b@example.test\nSubject: t\nMIME-Version: 1.0\n';

async function holders(x: Extraction, payload: Buffer): Promise<string[]> {
  const out: string[] = [];
  for (const p of x.parts) if ((await p.source.buffer()).includes(payload)) out.push(`${p.path}:${p.reading}`);
  return out;
}

test('regression: a payload behind an irregular boundary, delimiter or header, or uuencoded with any mode in any part, is a part (every engine answered OK)', async () => {
  const E = eicar();
  const dir = await mkdtemp(join(tmpdir(), 'avf-irregular-bnd-'));
  const messages = readerDecodedMessages();
  assert.ok(new Set(messages.map((m) => m.shape)).size >= 15);
  try {
    for (const m of messages) {
      const path = join(dir, `${m.name}.eml`);
      await writeFile(path, m.bytes);
      for (const input of [MessageInput.fromBuffer(m.bytes), MessageInput.fromFile(path)]) {
        const x = await extractParts(input, { limits: DEFAULT_MIME_LIMITS, tmpdir: dir });
        try {
          assert.notDeepEqual(await holders(x, E), [], `${m.name} (${input.kind}): the payload is in no part`);
          assert.equal(x.limit, undefined, `${m.name}: ${x.limit?.message}`);
          // a structure readers read otherwise: never vouched for, both readings run
          if (/boundary|delimiter|parameters|header-name/.test(m.shape)) {
            assert.equal(x.readings ?? 2, 2, `${m.name}: read once`);
            assert.notEqual(x.irregular, undefined, `${m.name}: not noted as irregular`);
          }
        } finally {
          await x.dispose();
        }
      }
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('the same multiparts written plainly keep one reading and one boundary (no extra reading costs a plain message)', async () => {
  const E = eicar();
  const b64 = E.toString('base64');
  const dir = await mkdtemp(join(tmpdir(), 'avf-plain-bnd-'));
  try {
    for (const [ct, delim] of [['multipart/mixed; boundary="b"', 'b'], ['multipart/mixed; boundary=Zq7', 'Zq7'], ['multipart/mixed;\n\tboundary="----=_Part_3_1.77"', '----=_Part_3_1.77'],
      ['Multipart/Mixed; charset=us-ascii; Boundary="=_x1.y"', '=_x1.y'], ['multipart/related; type="text/html";\n boundary="abcd"', 'abcd']] as const) {
      const text = `${TOP}Content-Type: ${ct}\n\n--${delim}\nContent-Type: text/plain\n\nsee below\n--${delim}\nContent-Type: application/octet-stream; name="x.com"\nContent-Transfer-Encoding: base64\n\n${b64}\n--${delim}--\n`;
      const x = await extractParts(MessageInput.fromBuffer(Buffer.from(text, 'latin1')), { limits: DEFAULT_MIME_LIMITS, tmpdir: dir });
      try {
        assert.equal(x.readings, 1, ct);
        assert.equal(x.irregular, undefined, ct);
        assert.deepEqual(await holders(x, E), ['2:standard'], ct);
      } finally {
        await x.dispose();
      }
      const block = parseHeaderBlock(Buffer.from(`Content-Type: ${ct}\n\n`, 'latin1'), { skipMboxFrom: false });
      assert.deepEqual(interpret(block.fields, 'text/plain').boundaries.map((b) => b.boundary), [delim], ct);
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('the boundaries readers take from a Content-Type outside the grammar', () => {
  const loose = (raw: string): string[] => looseBoundaries(parseHeaderBlock(Buffer.from(`Content-Type: ${raw}\n\n`, 'latin1'), { skipMboxFrom: false }).fields);
  assert.ok(loose('multipart/mixed; boundary="b "').includes('b'));
  assert.ok(loose('multipart/mixed; boundary="Zq"x').includes('"Zq"x'));
  assert.ok(loose('multipart/mixed; boundary="Zq').includes('"Zq'));
  assert.ok(loose("multipart/mixed; boundary='Zq'").includes('Zq'));
  assert.ok(loose('multipart/mixed; boundary="Zq(c)"').includes('Zq'));
  assert.ok(loose('multipart/mixed; boundary="ab\n cd"').includes('abcd'));
  assert.ok(loose('multipart/mixed;\nboundary="b9"').includes('b9'));
  assert.ok(loose('multipart/mixed boundary="b"').includes('b'));
  assert.ok(loose('multipart/mixed, BOUNDARY = q4').includes('q4'));
  // bounded: a value listing many boundary= gives the first few
  const many = Array.from({ length: 20 }, (_, i) => `boundary=k${i}`).join(' ');
  const got = loose(`multipart/mixed ${many}`);
  assert.ok(got.length <= MAX_LOOSE_BOUNDARY_MATCHES * 3, String(got.length));
  assert.ok(!got.includes(`k${MAX_LOOSE_BOUNDARY_MATCHES}`));
  // too many candidates in all: the walk reports the limit, never clean
});

test('guessed boundaries: the delimiter-like lines of a body, the same wherever it is split, at most MAX_GUESSED_BOUNDARIES', async () => {
  const input = Buffer.from(['pre -- x', '-- ', '--b1', 'a', ' \t--b1  ', 'b--', '\r--=_q.2--', 'x--c', '----', '--b1--', '  --tail'].join('\r\n'), 'latin1');
  const whole = await guessBoundaries(chunked(input, []), 0, input.length);
  assert.deepEqual(whole, { boundaries: ['b1', '=_q.2', 'tail'], truncated: false });
  for (let i = 0; i <= input.length; i++) assert.deepEqual(await guessBoundaries(chunked(input, [i]), 0, input.length), whole, `split at ${i}`);
  for (let i = 0; i + 2 < input.length; i++) assert.deepEqual(await guessBoundaries(chunked(input, [i, i + 1, i + 2]), 0, input.length), whole, `one-byte chunks at ${i}`);
  const many = Buffer.from(Array.from({ length: MAX_GUESSED_BOUNDARIES + 3 }, (_, i) => `--t${i}\nx\n`).join(''), 'latin1');
  const g = await guessBoundaries(chunked(many, [7]), 0, many.length);
  assert.equal(g.boundaries.length, MAX_GUESSED_BOUNDARIES);
  assert.equal(g.truncated, true);
});

test('a multipart with more delimiter-like tokens than are guessed ends in a limit, never clean', async () => {
  const body = Array.from({ length: MAX_GUESSED_BOUNDARIES + 2 }, (_, i) => `--t${i}\nContent-Type: text/plain\n\nx\n`).join('');
  const x = await extractParts(MessageInput.fromBuffer(Buffer.from(`${TOP}Content-Type: multipart/mixed\n\n${body}`, 'latin1')), { limits: DEFAULT_MIME_LIMITS, tmpdir: tmpdir() });
  try {
    assert.equal(x.limit?.code, 'EMIME_CANDIDATE_LIMIT');
  } finally {
    await x.dispose();
  }
});

test('indented delimiter lines: marked, their line start at the first blank, the same wherever the input is split, indentation bounded', async () => {
  const input = Buffer.from(['pre', ' --b', 'a', '\t \t--b--', 'b', 'x --b', '--b', ' '.repeat(MAX_DELIMITER_INDENT_BYTES + 1) + '--b', 'c'].join('\r\n') + '\n', 'latin1');
  const whole = await findDelimiters(chunked(input, []), 0, input.length, ['b'], 100);
  assert.deepEqual(whole[0]!.map((d) => [input.toString('latin1', d.lineStart, d.lineEnd), d.indented, d.close, d.eolBefore]), [
    [' --b\r\n', true, false, 2],
    ['\t \t--b--\r\n', true, true, 2],
    ['--b\r\n', false, false, 2],
  ]);
  for (let i = 0; i <= input.length; i++) assert.deepEqual(await findDelimiters(chunked(input, [i]), 0, input.length, ['b'], 100), whole, `split at ${i}`);
  for (let i = 0; i + 2 < 60; i++) assert.deepEqual(await findDelimiters(chunked(input, [i, i + 1, i + 2]), 0, input.length, ['b'], 100), whole, `one-byte chunks at ${i}`);
});

/** The bytes each item the scanner finds in `text` decodes to, the text pushed in chunks cut at `cuts`. */
function scanned(text: string, cuts: number[] = []): string[] {
  const buf = Buffer.from(text, 'latin1');
  const scanner = new EmbeddedScanner();
  const items = new Map<number, Buffer[]>();
  const take = (events: ScanEvent[]): void => {
    for (const e of events) {
      if (e.type === 'open') items.set(e.id, []);
      else if (e.type === 'data') items.get(e.id)!.push(Buffer.from(e.bytes));
    }
  };
  let prev = 0;
  for (const c of [...cuts, buf.length]) {
    take(scanner.push(buf.subarray(prev, c)));
    prev = c;
  }
  take(scanner.end());
  return [...items.values()].map((b) => Buffer.concat(b).toString('latin1')).filter((s) => s !== '');
}

test('a base64 (or quoted-printable) block after a Content-Transfer-Encoding line in a text: from the blank line to a blank or "--" line, the same wherever the text is split, the header lines bounded', () => {
  const E = eicar();
  const b64 = (E.toString('base64').match(/.{1,20}/g) ?? []).join('\n');
  const text = `hello\nContent-Type: application/octet-stream\nCONTENT-TRANSFER-ENCODING: Base64\nContent-Disposition: attachment\n\n${b64}\n\nbye ${'x'.repeat(10)}\n`;
  assert.deepEqual(scanned(text), [E.toString('latin1')]);
  for (let i = 0; i <= text.length; i++) assert.deepEqual(scanned(text, [i]), [E.toString('latin1')], `split at ${i}`);
  // a "--" line ends it too
  assert.deepEqual(scanned(`Content-Transfer-Encoding: base64\n\n${b64}\n--b--\nQUFB\n`), [E.toString('latin1')]);
  // another encoding is no block; quoted-printable is one
  assert.deepEqual(scanned(`Content-Transfer-Encoding: 7bit\n\n${b64}\n`), []);
  const qp = [...E].map((c) => '=' + c.toString(16).toUpperCase().padStart(2, '0')).join('').replace(/.{60}/g, '$&=\n');
  const qpText = `x\ncontent-transfer-encoding : quoted-printable\n\n${qp}\n\nafter\n`;
  for (let i = 0; i <= qpText.length; i += 3) assert.deepEqual(scanned(qpText, [i]), [E.toString('latin1') + '\n'], `qp split at ${i}`);
  // more header lines than a header block has: the line started nothing
  const many = Array.from({ length: MAX_CTE_HEAD_LINES + 1 }, (_, i) => `X-H${i}: v`).join('\n');
  assert.deepEqual(scanned(`Content-Transfer-Encoding: base64\n${many}\n\n${b64}\n`), []);
  assert.deepEqual(scanned(`Content-Transfer-Encoding: base64\n${many.split('\n').slice(1).join('\n')}\n\n${b64}\n`), [E.toString('latin1')]);
});

test('a binary or media part is read for encodings only when a line of it starts "begin" or "Content-Transfer-", wherever that line falls across chunks', async () => {
  const E = eicar();
  const dir = await mkdtemp(join(tmpdir(), 'avf-binary-start-'));
  try {
    for (const n of ['uu', 'cte'] as const) {
      // the start line just past 256 KiB of binary bytes: across the store's chunks
      // past 1 MiB the part is spilled, and the writer searches it as it is written
      for (const pad of [256 * 1024 - 3, 256 * 1024 - 20, 256 * 1024 + 1, 1024 * 1024 + 5, 2 * 1024 * 1024 - 7]) {
        const payload = n === 'uu' ? readerDecodedMessages().find((m) => m.name === 'uuencode-in-gif')!.bytes.toString('latin1').split('GIF89a\n')[1]! : `content-transfer-encoding: base64\n\n${E.toString('base64')}\n`;
        const data = Buffer.concat([Buffer.alloc(pad - 1, 0), Buffer.from(`\n${payload}`, 'latin1')]);
        const b64 = (data.toString('base64').match(/.{1,76}/g) ?? []).join('\n');
        const msg = `${TOP}Content-Type: multipart/mixed; boundary="b"\n\n--b\nContent-Type: image/png\nContent-Transfer-Encoding: base64\n\n${b64}\n--b--\n`;
        const path = join(dir, 'm.eml');
        await writeFile(path, msg);
        const x = await extractParts(MessageInput.fromFile(path), { limits: DEFAULT_MIME_LIMITS, tmpdir: dir });
        try {
          assert.equal((await holders(x, E)).length, 1, `${n} at ${pad}`);
        } finally {
          await x.dispose();
        }
      }
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('start lines in a binary: found wherever the bytes are split, only at a line start, case ignored', () => {
  const sniff = (buf: Buffer, cuts: number[]): boolean => {
    const s = new StartLineSniffer();
    let prev = 0;
    for (const c of [...cuts, buf.length]) {
      s.push(buf.subarray(prev, c));
      prev = c;
    }
    return s.found;
  };
  const lead = Buffer.from([0x4d, 0x5a, 0x00, 0x01, 0x0d]);
  for (const line of ['begin 644 x', 'Content-Transfer-Encoding: base64', 'CONTENT-TRANSFER-ENCODING: base64', 'content-transfer-encoding: quoted-printable']) {
    const yes = Buffer.concat([lead, Buffer.from(`${line}\n`, 'latin1')]);
    const no = Buffer.concat([lead, Buffer.from(`x${line}\n`, 'latin1')]);
    for (let i = 0; i <= yes.length; i++) {
      assert.equal(sniff(yes, [i]), true, `${line} split at ${i}`);
      assert.equal(sniff(no, [i]), false, `x${line} split at ${i}`);
    }
    for (let i = 0; i + 2 <= yes.length; i++) assert.equal(sniff(yes, [i, i + 1, i + 2]), true, `${line} one-byte chunks at ${i}`);
    // the first line of the part is a line start
    const first = Buffer.from(`${line}\n`, 'latin1');
    for (let i = 0; i <= first.length; i++) assert.equal(sniff(first, [i]), true, `${line} first, split at ${i}`);
  }
});
