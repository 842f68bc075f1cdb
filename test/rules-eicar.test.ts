/**
 * The shipped rules/eicar.yar through the embedded engine: repetition cannot exhaust it (it
 * once tried only the first 1000 occurrences of the first half, so 1001 heads before the real
 * string hid it), halves alone and text that quotes one stay clean, and the rule file never
 * holds the contiguous string (so other scanners do not flag the rules directory).
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createYaraEngine, type YaraEngine } from '../src/engines/yara/index.js';
import { bufferSource } from '../src/bytes/sources.js';
import { eicar } from './helpers/eicar.js';

const RULES = join(fileURLToPath(new URL('../../', import.meta.url)), 'rules'); // dist/test/ → repo root
const NAME = 'Eicar-Test-Signature';

let yara: YaraEngine | undefined;
after(async () => yara?.close());

async function scan(buf: Buffer): Promise<string> {
  yara ??= createYaraEngine({ rulesDir: RULES, maxScanBytes: 64 * 1024 * 1024, scanTimeoutMs: 20_000 });
  const r = await yara.scan({ id: '1', kind: 'part', source: bufferSource(buf) }, new AbortController().signal);
  return r.status === 'infected' ? r.names.join(',') : r.status === 'error' ? `error ${r.code}: ${r.message}` : r.status;
}

const E = eicar();
const HEAD = E.subarray(0, 28);
const TAIL = E.subarray(28);

test('rules/eicar.yar: 1001 and 20000 EICAR heads before the real string do not hide it', async () => {
  for (const n of [1001, 20_000]) {
    for (const sep of ['', '\n']) {
      const heads = Buffer.concat(Array.from({ length: n }, () => Buffer.concat([HEAD, Buffer.from(sep)])));
      assert.equal(await scan(Buffer.concat([heads, E, Buffer.from('\n')])), NAME, `${n} heads${sep ? ' on lines' : ''}`);
    }
  }
  // and many tails after the heads: each head is followed by a tail somewhere, none adjacent but one
  const noise = Buffer.concat(Array.from({ length: 5000 }, () => Buffer.concat([HEAD, Buffer.from(' '), TAIL, Buffer.from('\n')])));
  assert.equal(await scan(Buffer.concat([noise, E])), NAME);
});

test('rules/eicar.yar: halves alone, in any number, and text quoting one half are clean', async () => {
  for (const [buf, what] of [
    [Buffer.concat(Array.from({ length: 20_000 }, () => HEAD)), 'heads'],
    [Buffer.concat(Array.from({ length: 20_000 }, () => TAIL)), 'tails'],
    [Buffer.concat(Array.from({ length: 5000 }, () => Buffer.concat([HEAD, Buffer.from(' '), TAIL, Buffer.from('\n')]))), 'heads and tails, never adjacent'],
    [Buffer.concat([TAIL, HEAD]), 'wrong order'],
    [Buffer.concat([HEAD, E.subarray(28, 67)]), 'one byte short'],
    [Buffer.from(`The test file ends with ${TAIL.toString('latin1')} as everyone knows.`, 'latin1'), 'text quoting the tail'],
  ] as const) {
    assert.equal(await scan(buf), 'clean', what);
  }
});

test('rules/: no file holds the contiguous EICAR string', async () => {
  for (const name of await readdir(RULES)) assert.equal((await readFile(join(RULES, name))).includes(E), false, name);
});
