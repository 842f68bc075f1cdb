/**
 * A limit of the MIME extractor reaches the verdict through the whole pipeline, with either
 * engine: EICAR nested 6 levels deep in begin-base64 blocks once passed even with clamd (the
 * post-pass stopped at 4 levels and called the rest clean). Through `avfilter -t` with the
 * embedded engine and with a real clamd: an ERROR line naming the limit (or FOUND), never OK.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runAvfilter } from './helpers/avfilter-proc.js';
import { startClamd } from './helpers/clamd.js';
import { eicar } from './helpers/eicar.js';
import * as mail from './helpers/mail.js';

function nested(levels: number): Buffer {
  let body = eicar();
  for (let i = levels; i >= 1; i--) body = Buffer.from(`level ${i}\nbegin-base64 644 l${i}.txt\n${mail.base64Lines(body)}====\n`, 'latin1');
  return mail.message(mail.textPart(body.toString('latin1')));
}

async function runCli(engineConfig: string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'avf-limit-pipeline-'));
  try {
    await mkdir(join(dir, 'work'), { mode: 0o700 });
    const cfg = join(dir, 'avfilter.toml');
    await writeFile(cfg, `tmpdir = "${join(dir, 'work')}"\n${engineConfig}`);
    const file = join(dir, 'nested.eml');
    await writeFile(file, nested(6));
    const r = runAvfilter(['-f', cfg, '-t', file]);
    assert.notEqual(r.code, 0, `never clean: ${r.stdout}${r.stderr}`);
    return r.stdout.replace(`${file}: `, '').trim();
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

test('EICAR 6 levels deep in begin-base64 blocks: avfilter -t with the embedded engine says the limit, not OK', async () => {
  assert.match(await runCli(''), /nested deeper than 4 levels.* ERROR$|FOUND$/);
});

test('EICAR 6 levels deep in begin-base64 blocks: avfilter -t with a real clamd says the limit, not OK', async () => {
  const clamd = await startClamd();
  try {
    assert.match(await runCli(`[[engine]]\ntype = "clamd"\nservers = ["unix:${clamd.socketPath}"]\n`), /nested deeper than 4 levels.* ERROR$|FOUND$/);
  } finally {
    await clamd.stop();
  }
});
