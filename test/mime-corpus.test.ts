/**
 * The MIME evasion corpus: every technique's message in-process through extractParts (some
 * part holds the payload exactly, or none does for a clean message), then through `avfilter -t`
 * with the embedded engine and with a real clamd in each raw_message mode. Prints the
 * detection table. The container cases (the payload in a zip, a gzip, a 7z, an attached mail or
 * mbox) are beyond extraction alone: their in-process row only records what it saw; through
 * `-t` every engine must catch every one (the container stage gives clamd the members too: it
 * misses EICAR in an LZMA zip by itself). `expectBy` records where an engine is known to differ.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile, mkdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { DEFAULT_MIME_LIMITS, extractParts, MessageInput } from '../src/mime/index.js';
import { runAvfilter } from './helpers/avfilter-proc.js';
import { startClamd } from './helpers/clamd.js';
import { corpus, writeCorpus, type CorpusMessage } from './helpers/corpus.js';
import { eicar } from './helpers/eicar.js';

const messages = corpus();
const table = new Map<string, Record<string, string>>();
const row = (m: CorpusMessage): Record<string, string> => {
  let r = table.get(m.name);
  if (r === undefined) {
    const by = Object.entries(m.expectBy ?? {}).map(([engine, v]) => `, ${engine}: ${v}`).join('');
    table.set(m.name, (r = { technique: m.technique, expect: `${m.expect}${by}` }));
  }
  return r;
};

test('in-process: infected messages yield a part holding the payload bytes; clean ones none', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'avf-corpus-'));
  const E = eicar();
  const failures: string[] = [];
  try {
    for (const m of messages) {
      const x = await extractParts(MessageInput.fromStream(Readable.from([m.bytes])), { limits: DEFAULT_MIME_LIMITS, tmpdir: dir });
      try {
        let hit: string | undefined;
        for (const p of x.parts) {
          if (p.size < E.length) continue;
          if ((await p.source.buffer()).includes(E)) {
            hit = `${p.path} (${p.reading})`;
            break;
          }
        }
        row(m).extract = hit !== undefined ? `found: ${hit}` : 'none';
        if (x.limit !== undefined) failures.push(`${m.name}: limit ${x.limit.code}`);
        // a container hides the payload from extraction (the container stage shows it)
        if (m.container === undefined && (hit !== undefined) !== (m.expect === 'infected')) failures.push(`${m.name}: expected ${m.expect}, extraction ${hit ?? 'found nothing'}`);
      } finally {
        await x.dispose();
      }
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
  assert.deepEqual(failures, []);
});

async function runCli(config: string, label: string): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'avf-corpus-cli-'));
  try {
    const work = join(dir, 'work');
    await mkdir(work, { mode: 0o700 });
    const msgDir = join(dir, 'msgs');
    await mkdir(msgDir);
    const paths = await writeCorpus(msgDir, messages);
    const cfg = join(dir, 'avfilter.toml');
    await writeFile(cfg, `tmpdir = "${work}"\n${config}`);
    const r = runAvfilter(['-f', cfg, '-t', ...paths.values()]);
    const failures: string[] = [];
    for (const m of messages) {
      const p = paths.get(m.name)!;
      const line = r.stdout.split('\n').find((l) => l.startsWith(p + ': '));
      const verdict = line === undefined ? 'missing' : line.endsWith(' FOUND') ? 'infected' : line.endsWith(': OK') ? 'clean' : 'error';
      row(m)[label] = verdict;
      const expect = m.expectBy?.[label] ?? m.expect;
      if (verdict !== expect) failures.push(`${m.name}: expected ${expect}, got ${line ?? 'no line'}`);
    }
    assert.deepEqual(failures, [], r.stderr);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

test('avfilter -t with the embedded engine: every verdict as expected', async () => {
  await runCli('', 'yara');
});

for (const raw of ['mail', 'data', 'text', 'parts'] as const) {
  test(`avfilter -t with a real clamd (raw_message = "${raw}"): every verdict as expected`, async () => {
    const clamd = await startClamd();
    try {
      await runCli(`[[engine]]\ntype = "clamd"\nservers = ["unix:${clamd.socketPath}"]\nraw_message = "${raw}"\n`, raw === 'mail' ? 'clamd' : `clamd-${raw}`);
    } finally {
      await clamd.stop();
    }
  });
}

test('detection table', () => {
  const lines = ['| message | technique | container | expected | extraction | yara | clamd (mail) | clamd (data) | clamd (text) | clamd (parts) |', '|---|---|---|---|---|---|---|---|---|---|'];
  for (const m of messages) {
    const r = table.get(m.name)!;
    lines.push(`| ${m.name} | ${r.technique} | ${m.container ?? '-'} | ${r.expect} | ${r.extract ?? '-'} | ${r.yara ?? '-'} | ${r.clamd ?? '-'} | ${r['clamd-data'] ?? '-'} | ${r['clamd-text'] ?? '-'} | ${r['clamd-parts'] ?? '-'} |`);
  }
  console.log(lines.join('\n'));
  assert.equal(table.size, messages.length);
});
