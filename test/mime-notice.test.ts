/**
 * mime/lenient/notices.ts: a preamble or epilogue that holds a MIME notice ("This is a
 * MIME-formatted message...", as Courier writes it into the mail it rewrites) and whitespace
 * is no part, so no engine scans the same constant text once more per message. Anything more
 * than the notice keeps the preamble or epilogue a part of its own, with all its bytes, under
 * either way of reading the message, and a virus after a notice is found.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { extractParts, MessageInput, DEFAULT_MIME_LIMITS } from '../src/mime/index.js';
import { scanMessage } from '../src/scan/scan-message.js';
import { createYaraEngine, DEFAULT_RULES_DIR } from '../src/engines/yara/index.js';
import { eicar } from './helpers/eicar.js';
import { infectedSampleData } from './helpers/courier-sample.js';

const dir = mkdtempSync(join(tmpdir(), 'avf-notice-'));
const yara = createYaraEngine({ rulesDir: DEFAULT_RULES_DIR, maxScanBytes: 64 * 1024 * 1024, scanTimeoutMs: 30_000 });
after(async () => {
  await yara.close();
  rmSync(dir, { recursive: true, force: true });
});

const COURIER = 'This is a MIME-formatted message.  If you see this text it means that your\nE-mail software does not support MIME-formatted messages.\n';
const CLIENTS = 'This is a multi-part message in MIME format.\n';

/** A multipart with a text part and a base64 attachment, the given preamble and epilogue, in `eol`. */
function multi(preamble: string, epilogue: string, eol: '\n' | '\r\n' = '\n'): Buffer {
  const text = [
    'From: a@example.test', 'To: b@example.test', 'Subject: notice', 'MIME-Version: 1.0',
    'Content-Type: multipart/mixed; boundary="=_b-1"', '',
    `${preamble}--=_b-1`, 'Content-Type: text/plain', '', 'hello', '',
    '--=_b-1', 'Content-Type: application/octet-stream', 'Content-Transfer-Encoding: base64', '',
    Buffer.from('attachment bytes').toString('base64'), '',
    `--=_b-1--`, epilogue,
  ].join('\n');
  return Buffer.from(eol === '\n' ? text : text.replace(/\n/g, '\r\n'), 'latin1');
}

interface Seen {
  readings: number | undefined;
  outside: Array<{ path: string; bytes: Buffer }>;
  bodies: string[];
}

async function read(msg: Buffer, bothReadings: boolean): Promise<Seen> {
  const x = await extractParts(MessageInput.fromBuffer(msg), { limits: DEFAULT_MIME_LIMITS, tmpdir: dir, bothReadings });
  try {
    const outside: Seen['outside'] = [];
    for (const p of x.parts) if (p.reading === 'preamble' || p.reading === 'epilogue') outside.push({ path: p.path, bytes: await p.source.buffer() });
    const bodies = x.parts.filter((p) => p.reading !== 'preamble' && p.reading !== 'epilogue').map((p) => p.path);
    return { readings: x.readings, outside, bodies };
  } finally {
    await x.dispose();
  }
}

test('a preamble or epilogue that is a MIME notice and whitespace is no part, at either line end, read once or both ways', async () => {
  for (const eol of ['\n', '\r\n'] as const) {
    for (const notice of [COURIER, CLIENTS]) {
      for (const [preamble, epilogue] of [[notice, ''], [`\n${notice}\n\n`, ''], ['', notice], [notice, `  \n${notice}`]] as const) {
        for (const both of [false, true]) {
          const seen = await read(multi(preamble, epilogue, eol), both);
          const what = `${JSON.stringify(notice.slice(0, 20))} ${JSON.stringify([preamble.length, epilogue.length])} ${eol === '\n' ? 'LF' : 'CRLF'}${both ? ' both readings' : ''}`;
          assert.deepEqual(seen.outside, [], `${what}: no preamble or epilogue part`);
          assert.ok(seen.bodies.includes('1') && seen.bodies.includes('2'), `${what}: the bodies are parts (${seen.bodies.join(' ')})`);
          if (!both) assert.equal(seen.readings, 1, `${what}: read once`);
        }
      }
    }
  }
});

test('a message as Courier hands it to a filter (its notice as the preamble) has no preamble part', async () => {
  const data = Buffer.from(infectedSampleData(), 'latin1');
  assert.ok(data.includes('This is a MIME-formatted message.'), 'the premise: Courier wrote its notice into the message');
  const seen = await read(data, false);
  assert.equal(seen.readings, 1);
  assert.deepEqual(seen.outside, []);
  assert.deepEqual(seen.bodies, ['1', '2']);
  const file = join(dir, 'courier.eml');
  writeFileSync(file, data);
  const { verdict, items } = await scanMessage(file, { engines: [yara], mimeLimits: DEFAULT_MIME_LIMITS, tmpdir: dir }, AbortSignal.timeout(30_000));
  assert.equal(verdict.kind, 'infected');
  assert.equal(items, 3, 'the raw message and its two bodies');
});

test('a preamble or epilogue with anything besides a notice is a part with all its bytes, read once or both ways', async () => {
  const e = eicar().toString('latin1');
  const courierOneLine = COURIER.replace('your\nE-mail', 'your E-mail');
  const shapes: Array<[string, string, string]> = [
    ['a byte after the notice', `${COURIER.trimEnd()}x\n`, ''],
    ['a word after the notice on its line', CLIENTS.replace('format.', 'format. Open the attachment.'), ''],
    ['a line after the notice', `${CLIENTS}see below\n`, ''],
    ['a line before the notice', `note\n${COURIER}`, ''],
    ['the notice cut short', COURIER.slice(0, COURIER.length - 3) + '\n', ''],
    ['the notice on other lines', courierOneLine, ''],
    ['the notice in other letter case', CLIENTS.toUpperCase(), ''],
    ['the notice twice', `${CLIENTS}${CLIENTS}`, ''],
    ['two notices', `${CLIENTS}${COURIER}`, ''],
    ['EICAR after the notice', `${COURIER}${e}\n`, ''],
    ['EICAR in an epilogue after the notice', '', `${CLIENTS}${e}\n`],
  ];
  for (const [name, preamble, epilogue] of shapes) {
    for (const eol of ['\n', '\r\n'] as const) {
      const msg = multi(preamble, epilogue, eol);
      const wanted = (eol === '\n' ? (preamble || epilogue) : (preamble || epilogue).replace(/\n/g, '\r\n')).replace(/(\r?\n)+$/, '');
      for (const both of [false, true]) {
        const seen = await read(msg, both);
        const what = `${name} (${eol === '\n' ? 'LF' : 'CRLF'}${both ? ', both readings' : ''})`;
        assert.equal(seen.outside.length, 1, `${what}: one ${preamble ? 'preamble' : 'epilogue'} part`);
        const got = seen.outside[0]!.bytes.toString('latin1');
        assert.ok(got.includes(wanted), `${what}: the part holds every byte of it (${JSON.stringify(got.slice(0, 80))})`);
        assert.match(seen.outside[0]!.path, preamble ? /\/preamble$/ : /\/epilogue$/);
      }
      if (name.startsWith('EICAR')) {
        const file = join(dir, 'msg.eml');
        writeFileSync(file, msg);
        const { verdict } = await scanMessage(file, { engines: [yara], mimeLimits: DEFAULT_MIME_LIMITS, tmpdir: dir }, AbortSignal.timeout(30_000));
        assert.equal(verdict.kind, 'infected', `${name}: found by the embedded engine`);
      }
    }
  }
});
