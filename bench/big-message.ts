/**
 * Large messages for the memory section, written to disk as Courier's data files without ever
 * being held in memory: a message of about N bytes with one base64 attachment of pseudo-random
 * bytes, and a message with a zip bomb attached (test/helpers/bombs.ts).
 *
 * Inputs: a path and a size. Output: the bytes written. Fails with the fs error.
 */
import { createWriteStream, writeFileSync } from 'node:fs';
import { once } from 'node:events';
import { zipOfZeros } from '../test/helpers/bombs.js';
import { attachmentMessage } from '../test/helpers/container-corpus.js';
import { base64Lines, pseudoRandom } from '../test/helpers/mail.js';
import { queueId } from './spool.js';

/** A message of about `size` bytes as Courier's data file: one base64 attachment, LF. */
export async function writeBigMessage(path: string, size: number): Promise<number> {
  const out = createWriteStream(path);
  const write = async (s: string): Promise<void> => {
    if (!out.write(s)) await once(out, 'drain');
  };
  const boundary = '=_bench-big';
  await write([
    'Received: from client.example.test ([::ffff:127.0.0.1])', '  by bench with ESMTP', `  id ${queueId(999999)}; Wed, 01 Jul 2026 12:00:01 +0000`,
    'From: bench@example.test', 'To: avtest@avfilter.test', 'Subject: bench big', 'MIME-Version: 1.0',
    `Content-Type: multipart/mixed; boundary="${boundary}"`, '', `--${boundary}`, 'Content-Type: text/plain', '', 'see attachment',
    `--${boundary}`, 'Content-Type: application/octet-stream', 'Content-Transfer-Encoding: base64', 'Content-Disposition: attachment; filename="big.bin"', '', '',
  ].join('\n'));
  // base64 with 76-char lines grows 57 bytes into 77
  const payload = Math.floor((size * 57) / 77);
  const block = 57 * 1024;
  let written = 0;
  for (let seed = 11; written < payload; seed++) {
    const n = Math.min(block, payload - written);
    await write(base64Lines(pseudoRandom(n, seed), 76, '\n'));
    written += n;
  }
  await write(`--${boundary}--\n`);
  out.end();
  await once(out, 'finish');
  return out.bytesWritten;
}

/** A message with a zip of `unpacked` zero bytes attached (about 1 MB per GiB), as a data file. */
export function writeZipBombMessage(path: string, unpacked: number): number {
  const received = Buffer.from(`Received: from client.example.test ([::ffff:127.0.0.1])\n  by bench with ESMTP\n  id ${queueId(999998)}; Wed, 01 Jul 2026 12:00:01 +0000\n`, 'latin1');
  const bytes = Buffer.concat([received, attachmentMessage('zeros.zip', zipOfZeros(unpacked), 'application/zip', 'bench bomb')]);
  writeFileSync(path, bytes);
  return bytes.length;
}
