/**
 * The MIME extractor's temp files when the tmpdir goes wrong: a failure to create them is
 * EMIME_IO with the real errno in the message (it was once reported as EMIME_PARSE "cannot
 * parse MIME structure"), for a message read in place and for a stream; and a tmpdir removed
 * while the daemon runs is recreated (0700) by the next extraction instead of failing every
 * message from then on.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { DEFAULT_MIME_LIMITS, extractParts, MessageInput, MimeErrorCode } from '../src/mime/index.js';
import * as mail from './helpers/mail.js';

/** A part larger than memoryPartBytes: it must go to a temp file. */
const big = mail.message(mail.multipart([mail.textPart('see attached'), mail.attachment(mail.pseudoRandom(2 * DEFAULT_MIME_LIMITS.memoryPartBytes, 3), { cte: 'base64', filename: 'a.bin' })]));

async function withDir<T>(fn: (dir: string) => Promise<T>): Promise<T> {
  const dir = await mkdtemp(join(tmpdir(), 'avf-mime-tmpdir-'));
  try {
    return await fn(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

async function limitOf(input: 'path' | 'stream', msgPath: string, tmp: string): Promise<{ code: string; message: string } | undefined> {
  const x = await extractParts(input === 'path' ? MessageInput.fromFile(msgPath) : MessageInput.fromStream(Readable.from([big])), { limits: DEFAULT_MIME_LIMITS, tmpdir: tmp });
  await x.dispose();
  return x.limit;
}

test('tmpdir errors are EMIME_IO with the errno (ENOENT, ENOTDIR), never EMIME_PARSE', async () => {
  await withDir(async (dir) => {
    const msg = join(dir, 'message.eml');
    await writeFile(msg, big);
    const notDir = join(dir, 'a-file');
    await writeFile(notDir, 'x');
    for (const [tmp, errno] of [
      [join(dir, 'no', 'such', 'dir'), 'ENOENT'],
      [notDir, 'ENOTDIR'],
    ] as const) {
      for (const input of ['path', 'stream'] as const) {
        const limit = await limitOf(input, msg, tmp);
        assert.equal(limit?.code, MimeErrorCode.IO, `${input}, ${errno}: ${JSON.stringify(limit)}`);
        assert.match(limit!.message, new RegExp(errno), `${input}: the errno is in the message`);
      }
    }
  });
});

test('a tmpdir removed while running is recreated (0700) by the next extraction', async () => {
  await withDir(async (dir) => {
    const msg = join(dir, 'message.eml');
    await writeFile(msg, big);
    const tmp = join(dir, 'tmp');
    await mkdir(tmp, { mode: 0o700 });
    assert.equal(await limitOf('path', msg, tmp), undefined, 'works with an existing tmpdir');
    // the configured tmpdir goes away (a cleanup job, an admin) while the daemon runs
    await rm(tmp, { recursive: true, force: true });
    for (const input of ['path', 'stream'] as const) {
      await rm(tmp, { recursive: true, force: true });
      assert.equal(await limitOf(input, msg, tmp), undefined, `${input}: extracted after the tmpdir was removed`);
      const st = await stat(tmp);
      assert.ok(st.isDirectory());
      assert.equal(st.mode & 0o777, 0o700, 'recreated private');
      assert.deepEqual(await readdir(tmp), [], 'and left empty after dispose');
    }
  });
});
