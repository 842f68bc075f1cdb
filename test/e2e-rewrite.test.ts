/**
 * End to end, the effects that rewrite Courier's data file: a REAL Courier (esmtpd on a
 * loopback port, a local Maildir, courierfilter) running avfilter with a real clamd,
 * action.infected = "strip" and [headers] scanned and status on. A message with a zip holding
 * EICAR lands in the Maildir with the zip replaced by a note and its other attachment decoding
 * to the same bytes; a clean message carries X-Virus-Scanned and X-Virus-Status right after
 * Courier's Received:, and a forged X-Virus-Status that came with it is renamed.
 *
 * Needs root, courier-mta, busybox, clamav-daemon; fails (never skips) without them, like
 * e2e-courier.test.ts (its harness, helpers/courier.ts, leaves the host as it found it).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { type CourierHarness, startCourier } from './helpers/courier.js';
import { avfilterFileKeys, avfilterProgram } from './helpers/courier-app.js';
import { headerValue, replyQueueId, type DeliveredMessage } from './helpers/courier-mail.js';
import { envelope, type Envelope } from './helpers/e2e-messages.js';
import { startClamd, type RunningClamd } from './helpers/clamd.js';
import { eicar } from './helpers/eicar.js';
import { pseudoRandom } from './helpers/mail.js';
import { buildZip } from './helpers/zip.js';
import { standardParts } from './helpers/parts.js';

const DELIVERY_TIMEOUT_MS = 20_000;
const AVFILTER = 'avfilter';
const AVFILTER_CONFIG = '/etc/courier/filters/avfilter.toml';

let h: CourierHarness;
let clamd: RunningClamd;

before(async () => {
  h = await startCourier();
  clamd = await startClamd();
  const dir = h.courierDir('avfilter', 0o700);
  h.writeEtcFile(AVFILTER_CONFIG, [
    ...avfilterFileKeys(dir),
    '',
    '[[engine]]',
    'type = "clamd"',
    `servers = [${JSON.stringify(`unix:${clamd.socketPath}`)}]`,
    '',
    '[action]',
    'infected = "strip"',
    '',
    '[headers]',
    'scanned = true',
    'status = true',
    '',
  ].join('\n'));
  await h.installFilter(AVFILTER, await avfilterProgram(h));
});

after(async () => {
  await h?.removeFilter(AVFILTER).catch(() => undefined);
  await clamd?.stop();
  await h?.stop();
});

function subjectIs(env: Envelope) {
  return (m: DeliveredMessage): boolean => headerValue(m.header, 'Subject') === env.subject;
}

function b64(data: Buffer): string {
  return (data.toString('base64').match(/.{1,76}/g) ?? []).join('\r\n');
}

function mail(env: Envelope, to: string, extra: string[], parts: Array<{ name: string; type: string; data: Buffer }>): Buffer {
  const boundary = `=_rw_${env.tag}`;
  const lines = [
    `From: <${env.from}>`, `To: <${to}>`, `Subject: ${env.subject}`, 'Date: Mon, 07 Dec 2026 01:00:00 +0000',
    `Message-ID: <${env.tag}@example.test>`, 'MIME-Version: 1.0', ...extra,
    `Content-Type: multipart/mixed; boundary="${boundary}"`, '',
    `--${boundary}`, 'Content-Type: text/plain; charset=us-ascii', 'Content-Transfer-Encoding: 7bit', '', `Hello (${env.tag}).`, '',
    ...parts.flatMap((p) => [
      `--${boundary}`, `Content-Type: ${p.type}; name="${p.name}"`, 'Content-Transfer-Encoding: base64',
      `Content-Disposition: attachment; filename="${p.name}"`, '', b64(p.data), '',
    ]),
    `--${boundary}--`, '',
  ];
  return Buffer.from(lines.join('\r\n'), 'latin1');
}

function decoded(raw: Buffer): Promise<Map<string, Buffer>> {
  return standardParts(raw, h.courierDir('avfilter-e2e-parts', 0o700));
}

/** The header lines right after the first Received: field (with its folded lines). */
function afterReceived(header: string): string[] {
  const fields = header.replace(/\r\n/g, '\n').split(/\n(?![ \t])/);
  const at = fields.findIndex((f) => /^Received:/i.test(f));
  assert.ok(at >= 0, `no Received: in\n${header}`);
  return fields.slice(at + 1);
}

describe('avfilter strip and [headers] in a real Courier, with a real clamd', () => {
  test('a zip holding EICAR is replaced by a note; the other attachment arrives intact; X-Virus-Status says stripped', async () => {
    const env = envelope('rw-strip');
    const to = h.address('avtest');
    const pdf = pseudoRandom(20_000, 11);
    const zip = buildZip([{ name: 'readme.txt', data: Buffer.from('nothing to see\n') }, { name: 'tools/eicar.com', data: eicar() }]);
    const r = await h.sendMail({ from: env.from, to: [to], message: mail(env, to, [], [{ name: 'report.pdf', type: 'application/pdf', data: pdf }, { name: 'tools.zip', type: 'application/zip', data: zip }]) });
    assert.ok(r.final, `not sent: ${r.last.code} ${r.last.text}`);
    assert.equal(r.final.code, 250, r.final.text);
    assert.ok(replyQueueId(r.final.text));
    const got = await h.waitForDelivery(subjectIs(env), DELIVERY_TIMEOUT_MS);
    const parts = await decoded(got.raw);
    assert.ok(parts.get('2')?.equals(pdf), 'the PDF decodes to the bytes sent');
    const note = parts.get('3')?.toString('utf8') ?? '';
    assert.match(note, /removed by avfilter/);
    assert.match(note, /File: tools\.zip/);
    assert.ok(note.includes(clamd.names.eicar), note);
    assert.equal(got.raw.includes(zip.toString('base64').slice(0, 60)), false, 'the zip is gone');
    const added = afterReceived(got.header);
    // clamd's signature version when it has told it (read in the background after the first
    // scan; a database without a version, like the test's, has none): "(clamd)" alone then
    assert.match(added[0]!, /^X-Virus-Scanned: avfilter \S+ \(clamd(?: [^)]*)?\) on \S+$/);
    assert.equal(added[1], `X-Virus-Status: Clean (stripped: ${clamd.names.eicar})`);
  });

  test('a clean message carries X-Virus-Scanned and X-Virus-Status after Received:; a forged X-Virus-Status is renamed', async () => {
    const env = envelope('rw-clean');
    const to = h.address('avtest');
    const data = pseudoRandom(5000, 5);
    const r = await h.sendMail({ from: env.from, to: [to], message: mail(env, to, ['X-Virus-Status: Clean (forged)'], [{ name: 'data.bin', type: 'application/octet-stream', data }]) });
    assert.ok(r.final, `not sent: ${r.last.code} ${r.last.text}`);
    assert.equal(r.final.code, 250, r.final.text);
    const got = await h.waitForDelivery(subjectIs(env), DELIVERY_TIMEOUT_MS);
    const added = afterReceived(got.header);
    assert.match(added[0]!, /^X-Virus-Scanned: avfilter /);
    assert.equal(added[1], 'X-Virus-Status: Clean');
    assert.match(got.header, /^X-Old-X-Virus-Status: Clean \(forged\)$/m);
    assert.equal(got.header.match(/^X-Virus-Status:/gm)?.length, 1, 'one X-Virus-Status, ours');
    assert.ok((await decoded(got.raw)).get('2')?.equals(data));
  });
});
