/**
 * Header bytes are bytes: a header name with a byte >= 0x80 and a boundary that is not UTF-8
 * ("b\xe9") once hid a base64 EICAR part from every reading (mailsplit searched for the
 * boundary's UTF-8 bytes, the lenient walker ended the header block at the odd name), while
 * ClamAV's parser found it. Each reading alone (the standard one through walkMessage, the
 * lenient one through walkLenient) must find the part, the union must, and so must the scan
 * pipeline with the embedded engine (`avfilter -t`, default engines).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { DEFAULT_MIME_LIMITS, extractParts, MessageInput } from '../src/mime/index.js';
import { bufferBytes } from '../src/bytes/message-bytes.js';
import { walkLenient } from '../src/mime/lenient/walk.js';
import { Budget, type MimeError } from '../src/mime/limits.js';
import { PartStore } from '../src/mime/part-store.js';
import { STANDARD_READING, walkMessage } from '../src/mime/walk.js';
import { runAvfilter } from './helpers/avfilter-proc.js';
import { eicar } from './helpers/eicar.js';

const E = eicar();

/** A multipart message with `extra` header lines on top, boundary `b` (latin1 = bytes as given). */
function message(extra: string, b: string, eol = '\n'): Buffer {
  const lines = [
    'From: a@example.test',
    ...(extra ? [extra] : []),
    'Subject: invoice',
    'MIME-Version: 1.0',
    `Content-Type: multipart/mixed; boundary="${b}"`,
    '',
    `--${b}`,
    'Content-Type: text/plain',
    '',
    'see attached',
    `--${b}`,
    'Content-Type: application/octet-stream',
    'Content-Transfer-Encoding: base64',
    'Content-Disposition: attachment; filename="invoice.com"',
    '',
    E.toString('base64'),
    `--${b}--`,
    '',
  ];
  return Buffer.from(lines.join(eol), 'latin1');
}

const CASES: ReadonlyArray<[string, string, string]> = [
  ['header name byte 0xf6 + boundary "b\\xe9"', 'X-F\xf6o: bar', 'b\xe9'],
  ['header name of high bytes + boundary of high bytes', '\x80\x81\xfe: x', '\xff\xfe\x80'],
  ['header name with a control byte + boundary "caf\\xe9"', 'X-\x01Odd: y', 'caf\xe9-1'],
  ['latin1 header value + boundary "b\\xe9"', 'X-Note: d\xe9j\xe0 vu', 'b\xe9'],
  ['boundary only, not UTF-8', '', 'b\xe9'],
  ['header name only', 'X-F\xf6o: bar', 'plain-boundary'],
  ['boundary in valid UTF-8 (c3 a9)', 'X-F\xf6o: bar', 'b\xc3\xa9'],
];

async function withDir<T>(fn: (dir: string) => Promise<T>): Promise<T> {
  const dir = await mkdtemp(join(tmpdir(), 'avf-header-bytes-'));
  try {
    return await fn(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** Runs one reading alone into a fresh store; true when a part holds the payload. */
async function readingFinds(which: 'standard' | 'lenient', msg: Buffer, dir: string): Promise<boolean> {
  const budget = new Budget(DEFAULT_MIME_LIMITS);
  budget.setInputSize(msg.length);
  const store = new PartStore(dir, budget);
  try {
    const soft: MimeError[] = [];
    if (which === 'standard') await walkMessage(Readable.from([msg]), { store, budget, reading: STANDARD_READING }, []);
    else await walkLenient(bufferBytes(msg), { store, budget, allowPartial: false, soft });
    for (const p of store.parts) if ((await p.source.buffer()).includes(E)) return true;
    return false;
  } finally {
    await store.dispose();
  }
}

test('non-UTF-8 header bytes: the standard reading alone finds the base64 part', async () => {
  await withDir(async (dir) => {
    for (const [what, extra, b] of CASES) {
      for (const eol of ['\n', '\r\n']) assert.equal(await readingFinds('standard', message(extra, b, eol), dir), true, `${what} (${JSON.stringify(eol)})`);
    }
  });
});

test('non-UTF-8 header bytes: the lenient reading alone finds the base64 part', async () => {
  await withDir(async (dir) => {
    for (const [what, extra, b] of CASES) {
      for (const eol of ['\n', '\r\n']) assert.equal(await readingFinds('lenient', message(extra, b, eol), dir), true, `${what} (${JSON.stringify(eol)})`);
    }
  });
});

test('non-UTF-8 header bytes: extractParts yields the payload as attachment 2, no limit', async () => {
  await withDir(async (dir) => {
    for (const [what, extra, b] of CASES) {
      const x = await extractParts(MessageInput.fromStream(Readable.from([message(extra, b)])), { limits: DEFAULT_MIME_LIMITS, tmpdir: dir });
      try {
        assert.equal(x.limit, undefined, what);
        const holding: string[] = [];
        for (const p of x.parts) if ((await p.source.buffer()).equals(E)) holding.push(`${p.path} ${p.reading}`);
        assert.deepEqual(holding, ['2 standard'], what);
      } finally {
        await x.dispose();
      }
    }
  });
});

test('non-UTF-8 header bytes: avfilter -t with the default (embedded) engine says FOUND', async () => {
  await withDir(async (dir) => {
    const cfg = join(dir, 'avfilter.toml');
    await writeFile(cfg, `tmpdir = "${join(dir, 'work')}"\n`);
    const files: string[] = [];
    for (const [i, [, extra, b]] of CASES.entries()) {
      const f = join(dir, `case-${i}.eml`);
      await writeFile(f, message(extra, b));
      files.push(f);
    }
    const r = runAvfilter(['-f', cfg, '-t', ...files]);
    assert.equal(r.stdout, files.map((f) => `${f}: Eicar-Test-Signature FOUND\n`).join(''), r.stderr);
    assert.equal(r.code, 1);
  });
});

test('non-UTF-8 header bytes: a uuencoded .eml with such a header is still walked as a message', async () => {
  const { uuencode } = await import('./helpers/corpus.js');
  await withDir(async (dir) => {
    for (const [what, extra, b] of CASES) {
      // the odd field first, then in the middle of the block
      const inner = message(extra, b);
      const first = extra ? Buffer.concat([Buffer.from(extra + '\n', 'latin1'), inner]) : inner;
      for (const eml of [inner, first]) {
        const outer = Buffer.from(`From: a@example.test\nSubject: fwd\nContent-Type: text/plain\n\nthe forward:\n${uuencode(eml, 'fwd.eml')}`, 'latin1');
        const x = await extractParts(MessageInput.fromStream(Readable.from([outer])), { limits: DEFAULT_MIME_LIMITS, tmpdir: dir });
        try {
          const holding: string[] = [];
          for (const p of x.parts) if ((await p.source.buffer()).equals(E)) holding.push(p.path);
          assert.deepEqual(holding, ['1/uuencode1.2'], what);
        } finally {
          await x.dispose();
        }
      }
    }
  });
});
