/**
 * extractParts() takes one input type, MessageInput, made by fromBuffer, fromFile or
 * fromStream. Anything else (a bare stream, a { path } or { buffer } object, a look-alike
 * built by hand) is a caller bug: a TypeError with code ERR_INVALID_ARG_TYPE, before any work
 * (no temp directory is made). The three inputs of one message give the same parts.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { DEFAULT_MIME_LIMITS, extractParts, MessageInput, type Extraction } from '../src/mime/index.js';
import { eicar } from './helpers/eicar.js';
import * as mail from './helpers/mail.js';

async function withTmp<T>(fn: (dir: string) => Promise<T>): Promise<T> {
  const dir = await mkdtemp(join(tmpdir(), 'avf-input-rule-'));
  try {
    return await fn(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

const isArgType = (e: unknown): boolean => e instanceof TypeError && (e as { code?: unknown }).code === 'ERR_INVALID_ARG_TYPE';

test('an input not made by MessageInput is ERR_INVALID_ARG_TYPE, and nothing is written', async () => {
  await withTmp(async (dir) => {
    const msg = mail.message(mail.textPart('hello'));
    const path = join(dir, 'm.eml');
    await writeFile(path, msg);
    const work = join(dir, 'work');
    const stream = Readable.from([msg]);
    const wrong: Array<[string, unknown]> = [
      ['a bare Readable', stream],
      ['{ path }', { path }],
      ['{ buffer }', { buffer: msg }],
      ['a Buffer', msg],
      ['a path string', path],
      ['a look-alike { kind: "file" }', { kind: 'file', path }],
      ['a copy of a made input', { ...MessageInput.fromFile(path) }],
      ['null', null],
      ['undefined', undefined],
    ];
    for (const [what, input] of wrong) {
      await assert.rejects(extractParts(input as MessageInput, { limits: DEFAULT_MIME_LIMITS, tmpdir: work }), isArgType, what);
    }
    assert.equal(stream.readableDidRead, false, 'the refused stream was not read');
    await assert.rejects(readdir(work), (e: { code?: string }) => e.code === 'ENOENT', 'no temp directory was made');
  });
});

test('the MessageInput constructors refuse what they do not take', () => {
  assert.throws(() => MessageInput.fromBuffer('text' as unknown as Buffer), isArgType);
  assert.throws(() => MessageInput.fromBuffer(new Uint8Array(4) as unknown as Buffer), isArgType);
  assert.throws(() => MessageInput.fromFile(Buffer.from('/x') as unknown as string), isArgType);
  assert.throws(() => MessageInput.fromFile(''), isArgType);
  assert.throws(() => MessageInput.fromStream({ pipe() {} } as unknown as Readable), isArgType);
  assert.throws(() => MessageInput.fromStream([Buffer.from('x')] as unknown as Readable), isArgType);
  assert.ok(Object.isFrozen(MessageInput.fromBuffer(Buffer.alloc(0))), 'a made input cannot be changed after the check');
});

test('fromBuffer, fromFile and fromStream of one message give the same parts', async () => {
  await withTmp(async (dir) => {
    const msg = mail.message(mail.multipart([
      mail.textPart('see attached'),
      mail.attachment(eicar(), { cte: 'base64', filename: 'a.com' }),
      mail.messagePart(mail.message(mail.multipart([mail.textPart('inner'), mail.attachment(mail.pseudoRandom(70_000, 3), { cte: 'base64' })]))),
    ]));
    const path = join(dir, 'm.eml');
    await writeFile(path, msg);
    const shape = async (x: Extraction): Promise<string[]> => {
      try {
        assert.equal(x.limit, undefined);
        return await Promise.all(x.parts.map(async (p) => `${p.path} ${p.reading} ${p.size} ${(await p.source.buffer()).toString('base64').slice(0, 40)}`));
      } finally {
        await x.dispose();
      }
    };
    const opts = { limits: DEFAULT_MIME_LIMITS, tmpdir: join(dir, 'work') };
    const fromBuffer = await shape(await extractParts(MessageInput.fromBuffer(msg), opts));
    const fromFile = await shape(await extractParts(MessageInput.fromFile(path), opts));
    const fromStream = await shape(await extractParts(MessageInput.fromStream(Readable.from([msg])), opts));
    assert.ok(fromBuffer.length >= 4, fromBuffer.join('\n'));
    assert.deepEqual(fromFile, fromBuffer);
    assert.deepEqual(fromStream, fromBuffer);
  });
});

test('a message in memory gives the parts of the same message from a file when readers disagree on a body (two encodings, junk in base64, a body repeated)', async () => {
  // The standard reading of a message in memory keys a decoded body by its range of the
  // message, and the lenient reading skips a body it finds again under the same range and
  // decoder: every other reading of the same bytes (another encoding, another range) must
  // still be decoded and kept.
  await withTmp(async (dir) => {
    const payload = mail.pseudoRandom(5_000, 7).toString('base64').replace(/.{76}/g, '$&\n');
    const msg = Buffer.from([
      'From: a@example.test', 'To: b@example.test', 'Subject: x', 'MIME-Version: 1.0',
      'Content-Type: multipart/mixed; boundary="b1"', '',
      '--b1', 'Content-Type: application/octet-stream', 'Content-Transfer-Encoding: base64',
      'Content-Transfer-Encoding: quoted-printable', '', payload,
      '--b1', 'Content-Type: application/octet-stream', 'Content-Transfer-Encoding: base64', '', `${payload.slice(0, 300)}!*${payload.slice(300)}`,
      '--b1', 'Content-Type: application/octet-stream', 'Content-Transfer-Encoding: base64', '', payload,
      '--b1--', '',
    ].join('\n'), 'latin1');
    const path = join(dir, 'm.eml');
    await writeFile(path, msg);
    const shape = async (x: Extraction): Promise<string[]> => {
      try {
        return (await Promise.all(x.parts.map(async (p) => `${p.path} ${p.reading} ${p.encoding} ${p.size} ${(await p.source.buffer()).toString('base64').slice(0, 40)}`))).sort();
      } finally {
        await x.dispose();
      }
    };
    const opts = { limits: DEFAULT_MIME_LIMITS, tmpdir: join(dir, 'work') };
    const fromBuffer = await shape(await extractParts(MessageInput.fromBuffer(msg), opts));
    const fromFile = await shape(await extractParts(MessageInput.fromFile(path), opts));
    assert.deepEqual(fromBuffer, fromFile);
    // the body read as base64 and as quoted-printable are two parts
    assert.ok(fromBuffer.some((l) => / base64 /.test(l)) && fromBuffer.some((l) => / quoted-printable /.test(l)), fromBuffer.join('\n'));
  });
});
