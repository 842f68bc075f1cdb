/**
 * clamd with `AlertEncrypted yes` reports an encrypted archive as a find
 * (Heuristics.Encrypted.Zip): with clamd alone, that is the encrypted verdict (action.encrypted:
 * a 554 that says why by default), never "infected" (which would drop it silently), and it does
 * not stop the scan: a virus elsewhere in the message is still found and wins. Real clamd.
 */
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startClamd, type RunningClamd } from './helpers/clamd.js';
import { createClamdEngine } from '../src/engines/clamd/index.js';
import type { Engine } from '../src/engines/engine.js';
import { scanMessage } from '../src/scan/scan-message.js';
import { DEFAULT_MIME_LIMITS } from '../src/mime/index.js';
import { eicar } from './helpers/eicar.js';

const dir = mkdtempSync(join(tmpdir(), 'avf-clamd-enc-'));
let clamd: RunningClamd;
let engine: Engine;
before(async () => {
  clamd = await startClamd({ extraConfig: ['AlertEncrypted yes'] });
  engine = createClamdEngine({ servers: [`unix:${clamd.socketPath}`], connectTimeoutMs: 5000, scanTimeoutMs: 30_000, chunkBytes: 65536, maxStreamBytes: 25 << 20 });
});
after(async () => {
  await engine?.close();
  await clamd?.stop();
  rmSync(dir, { recursive: true, force: true });
});

function encryptedZip(): Buffer {
  writeFileSync(join(dir, 'a.txt'), 'nothing to see here\n');
  execFileSync('zip', ['-q', '-j', '-P', 'secret', join(dir, 'enc.zip'), join(dir, 'a.txt')]);
  return readFileSync(join(dir, 'enc.zip'));
}

function message(attachments: Array<[string, Buffer]>): string {
  const parts = attachments.map(([name, data]) => `--b\nContent-Type: application/octet-stream; name="${name}"\nContent-Transfer-Encoding: base64\n\n${data.toString('base64')}\n`);
  return `From: a@example.test\nTo: b@example.test\nSubject: x\nMIME-Version: 1.0\nContent-Type: multipart/mixed; boundary="b"\n\n--b\nContent-Type: text/plain\n\nhello\n${parts.join('')}--b--\n`;
}

let n = 0;
async function scan(text: string) {
  const p = join(dir, `m${++n}.eml`);
  writeFileSync(p, text);
  return (await scanMessage(p, { engines: [engine], mimeLimits: DEFAULT_MIME_LIMITS, tmpdir: join(dir, 'work') }, AbortSignal.timeout(30_000))).verdict;
}

test("clamd's Heuristics.Encrypted.Zip is the encrypted verdict, not a virus", async () => {
  const v = await scan(message([['enc.zip', encryptedZip()]]));
  assert.equal(v.kind, 'encrypted', JSON.stringify(v));
  if (v.kind === 'encrypted') assert.equal(v.name, 'Encrypted.Zip');
});

test('a virus beside an encrypted archive is still found and wins', async () => {
  const v = await scan(message([['enc.zip', encryptedZip()], ['a.com', eicar()]]));
  assert.equal(v.kind, 'infected', JSON.stringify(v));
  if (v.kind === 'infected') assert.ok(v.names.some((x) => !x.startsWith('Heuristics.Encrypted')), v.names.join(','));
});
