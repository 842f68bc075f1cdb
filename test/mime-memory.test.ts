/**
 * Bounded memory: extracting a 100 MB message (one large base64 attachment plus a nested
 * message) in a fresh process keeps its peak RSS under 128 MB — decoded parts go to tmpdir.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createWriteStream, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { randomBytes } from 'node:crypto';

const PEAK_RSS_LIMIT_KB = 128 * 1024;
const MIME_INDEX = fileURLToPath(new URL('../src/mime/index.js', import.meta.url));

async function writeBigMessage(path: string, encodedBytes: number): Promise<void> {
  const out = createWriteStream(path);
  const w = async (s: string) => {
    if (!out.write(s)) await once(out, 'drain');
  };
  await w('Received: from x ([127.0.0.1])\nFrom: a@example.test\nSubject: big\nMIME-Version: 1.0\nContent-Type: multipart/mixed; boundary="big"\n\n--big\nContent-Type: text/plain\n\nsee attachment\n--big\nContent-Type: application/octet-stream; name="big.bin"\nContent-Transfer-Encoding: base64\n\n');
  let written = 0;
  while (written < encodedBytes) {
    const b64 = randomBytes(57 * 1024).toString('base64').replace(/.{76}/g, '$&\n');
    await w(b64 + '\n');
    written += b64.length + 1;
  }
  await w('--big\nContent-Type: message/rfc822\n\nSubject: inner\n\ninner body\n--big--\n');
  out.end();
  await once(out, 'finish');
}

test('peak RSS under 128 MB while extracting a 100 MB message', { timeout: 300_000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'avf-mem-'));
  try {
    const msg = join(dir, 'big.eml');
    await writeBigMessage(msg, 100 * 1024 * 1024);
    assert.ok(statSync(msg).size >= 100 * 1024 * 1024);
    const script = `
      const { extractParts, MessageInput, DEFAULT_MIME_LIMITS } = await import(${JSON.stringify(MIME_INDEX)});
      const x = await extractParts(MessageInput.fromFile(${JSON.stringify(msg)}), { limits: DEFAULT_MIME_LIMITS, tmpdir: ${JSON.stringify(dir)} });
      const sizes = x.parts.map((p) => p.size);
      await x.dispose();
      console.log(JSON.stringify({ limit: x.limit ?? null, parts: x.parts.length, max: Math.max(...sizes), rssKb: process.resourceUsage().maxRSS }));
    `;
    const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8', timeout: 280_000 });
    assert.equal(r.status, 0, r.stderr);
    const out = JSON.parse(r.stdout.trim().split('\n').pop()!) as { limit: unknown; parts: number; max: number; rssKb: number };
    assert.equal(out.limit, null);
    assert.ok(out.max > 70 * 1024 * 1024, `the attachment was decoded whole (${out.max} bytes)`);
    assert.ok(out.rssKb < PEAK_RSS_LIMIT_KB, `peak RSS ${Math.round(out.rssKb / 1024)} MB`);
    console.log(`peak RSS ${Math.round(out.rssKb / 1024)} MB for a ${Math.round(statSync(msg).size / 1e6)} MB message, ${out.parts} parts`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
