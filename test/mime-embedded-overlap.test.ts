/**
 * Encoded items inside one another in a text part: a line that starts an item while another is
 * open is read both ways (data of the open one, start of a new one). An unterminated
 * "=ybegin" (or "begin", "begin-base64") once hid a uuencoded EICAR after it from the embedded
 * engine, while ClamAV's own parser found it. More items open at once than the post-pass reads
 * is a limit (EMIME_EMBED_LIMIT), never clean.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { EmbeddedScanner, MAX_OPEN_ITEMS, type ScanEvent } from '../src/mime/embedded/scan.js';
import { DEFAULT_MIME_LIMITS, extractParts, MessageInput } from '../src/mime/index.js';
import { runAvfilter } from './helpers/avfilter-proc.js';
import { uuencode, yencode } from './helpers/corpus.js';
import { eicar } from './helpers/eicar.js';
import * as mail from './helpers/mail.js';

const E = eicar();
const text = (body: string): Buffer => Buffer.from(`From: a@example.test\nSubject: t\nContent-Type: text/plain\n\n${body}`, 'latin1');
const OPENERS: ReadonlyArray<[string, string]> = [
  ['=ybegin', '=ybegin line=128 size=10 name=a.txt\nabc\n'],
  ['begin', 'begin 644 a.txt\nM86)C\n'],
  ['begin-base64', 'begin-base64 644 a.txt\nYWJj\n'],
  ['BinHex', '(This file must be converted with BinHex 4.0)\n:!!!!\n'],
];

async function extract(msg: Buffer): Promise<{ holding: string[]; limit: string | undefined }> {
  const dir = await mkdtemp(join(tmpdir(), 'avf-overlap-'));
  try {
    const x = await extractParts(MessageInput.fromStream(Readable.from([msg])), { limits: DEFAULT_MIME_LIMITS, tmpdir: dir });
    try {
      const holding: string[] = [];
      for (const p of x.parts) if ((await p.source.buffer()).equals(E)) holding.push(`${p.path} ${p.reading}`);
      return { holding, limit: x.limit?.code };
    } finally {
      await x.dispose();
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

test('an unterminated item before a uuencoded, yEnc or begin-base64 file does not hide it', async () => {
  for (const [what, opener] of OPENERS) {
    for (const [kind, file] of [
      ['uuencode', uuencode(E, 'x.com')],
      ['yenc', yencode(E, 'x.com')],
      ['base64-block', `begin-base64 644 x.com\n${mail.base64Lines(E)}====\n`],
    ] as const) {
      const r = await extract(text(`notes\n${opener}more notes\n${file}`));
      assert.equal(r.limit, undefined, `${what} then ${kind}`);
      assert.ok(r.holding.some((h) => h.endsWith(` ${kind}`)), `${what} then ${kind}: ${JSON.stringify(r)}`);
    }
  }
});

test('an unterminated =ybegin before a uuencoded EICAR: avfilter -t with the embedded engine says FOUND', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'avf-overlap-cli-'));
  try {
    await mkdir(join(dir, 'work'), { mode: 0o700 });
    const cfg = join(dir, 'avfilter.toml');
    await writeFile(cfg, `tmpdir = "${join(dir, 'work')}"\n`);
    const file = join(dir, 'm.eml');
    await writeFile(file, text(`notes\n${OPENERS[0]![1]}${uuencode(E, 'x.com')}`));
    const r = runAvfilter(['-f', cfg, '-t', file]);
    assert.equal(r.stdout, `${file}: Eicar-Test-Signature FOUND\n`, r.stderr);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test(`more than ${MAX_OPEN_ITEMS} items open at once is EMIME_EMBED_LIMIT, never clean`, async () => {
  const opens = (n: number): string => Array.from({ length: n }, (_, i) => `begin 644 f${i}\nM86)C\n`).join('');
  assert.equal((await extract(text(opens(MAX_OPEN_ITEMS) + 'tail\n'))).limit, undefined);
  assert.equal((await extract(text(opens(MAX_OPEN_ITEMS + 1) + 'tail\n'))).limit, 'EMIME_EMBED_LIMIT');
  // closed ones free their place: any number in a row is fine
  assert.equal((await extract(text(Array.from({ length: 50 }, (_, i) => uuencode(Buffer.from(`file ${i}`), `f${i}`)).join('')))).limit, undefined);
});

test('items inside one another: the same finds wherever the input is split', () => {
  const input = text(`notes\n${OPENERS.map(([, o]) => o).join('')}${uuencode(E, 'x.com')}${yencode(E, 'y.com')}tail\n`);
  const scan = (cuts: number[]): string[] => {
    const s = new EmbeddedScanner();
    const data = new Map<number, Buffer[]>();
    const kinds = new Map<number, string>();
    const apply = (evs: ScanEvent[]): void => {
      for (const e of evs) {
        if (e.type === 'open') {
          kinds.set(e.id, `${e.kind} ${e.name ?? ''}`);
          data.set(e.id, []);
        } else if (e.type === 'data') data.get(e.id)!.push(Buffer.from(e.bytes));
      }
    };
    let prev = 0;
    for (const c of [...cuts, input.length]) {
      apply(s.push(input.subarray(prev, c)));
      prev = c;
    }
    apply(s.end());
    return [...kinds].map(([id, k]) => `${k}: ${Buffer.concat(data.get(id)!).toString('hex')}`);
  };
  const whole = scan([]);
  assert.ok(whole.some((w) => w.endsWith(E.toString('hex'))), 'the payload is found');
  for (let i = 0; i <= input.length; i++) assert.deepEqual(scan([i]), whole, `split at ${i}`);
});
