/**
 * End to end, in a REAL Courier with a real clamd (helpers/courier.ts; run under the Courier
 * lock like every Courier suite): the [notify] postmaster notice and action.handler.
 *
 * EICAR mailed to one local user is dropped; the notice avfilter hands to Courier's own
 * /usr/sbin/sendmail comes back through Courier (and, with enablefiltering listing local,
 * through avfilter, which scans it and lets the clean text pass) into the postmaster's Maildir: it names the virus and the file, has the
 * null sender and the markers, and carries neither the virus nor its base64. Then a handler
 * that exits 75 turns the same message into a 451 at the SMTP client, and nothing is queued.
 *
 * Needs root, courier-mta, busybox, clamav-daemon; fails (never skips) without them.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import libqp from 'libqp';
import { type CourierHarness, startCourier } from './helpers/courier.js';
import { avfilterFileKeys, avfilterProgram } from './helpers/courier-app.js';
import { headerValue, replyQueueId } from './helpers/courier-mail.js';
import { attachmentMessage, envelope, type Envelope } from './helpers/e2e-messages.js';
import { startClamd, type RunningClamd } from './helpers/clamd.js';
import { eicar } from './helpers/eicar.js';

const DELIVERY_TIMEOUT_MS = 30_000;
const AVFILTER = 'avfilter';
const AVFILTER_CONFIG = '/etc/courier/filters/avfilter.toml';

let h: CourierHarness;
let clamd: RunningClamd;
let program: string;
let installed = false;

before(async () => {
  h = await startCourier();
  clamd = await startClamd();
  program = await avfilterProgram(h);
});

after(async () => {
  if (installed) await h?.removeFilter(AVFILTER);
  await clamd?.stop();
  await h?.stop();
});

/** Writes avfilter.toml with `extra` after the engine and (re)starts the filter. */
async function restartAvfilter(extra: string[]): Promise<void> {
  if (installed) await h.removeFilter(AVFILTER);
  installed = false;
  const dir = h.courierDir('avfilter', 0o700);
  const q = (s: string): string => JSON.stringify(s);
  h.writeEtcFile(AVFILTER_CONFIG, [
    ...avfilterFileKeys(dir),
    '',
    '[[engine]]',
    'type = "clamd"',
    `servers = [${q(`unix:${clamd.socketPath}`)}]`,
    '',
    ...extra,
    '',
  ].join('\n'));
  await h.installFilter(AVFILTER, program);
  installed = true;
}

function eicarMessage(env: Envelope, to: string[]): Buffer {
  return attachmentMessage(env, to, { filename: 'eicar.com', contentType: 'application/octet-stream', data: eicar() });
}

describe('notices and the handler in a real Courier', () => {
  test('the postmaster notice is delivered to a Maildir: it names the virus, and does not carry it', async () => {
    const postmaster = h.address('avtest2');
    // Courier filters mail from esmtp only by default; with local (sendmail) listed too, the
    // notice itself passes through avfilter, which must scan it, find it clean, and not notice it
    h.writeEtcFile('/etc/courier/enablefiltering', 'esmtp local\n', 0o644); // one line, sources separated by a space (courier(8))
    await restartAvfilter(['[notify]', `postmaster = ${JSON.stringify(postmaster)}`]);
    const env = envelope('notify');
    const to = [h.address('avtest')];
    const r = await h.sendMail({ from: env.from, to, message: eicarMessage(env, to) });
    assert.ok(r.final, `not sent: ${r.last.code} ${r.last.text}`);
    assert.equal(r.final.code, 250, r.final.text);
    const id = replyQueueId(r.final.text);
    assert.ok(id);
    const notice = await h.waitForDelivery((m) => m.user === 'avtest2' && /^X-Avfilter-Notice: yes$/m.test(m.header) && m.raw.includes(env.from), DELIVERY_TIMEOUT_MS);
    assert.equal(headerValue(notice.header, 'Auto-Submitted'), 'auto-generated');
    assert.match(notice.header, /^Return-Path: <>$/m, 'the null sender: a bounce of the notice goes nowhere');
    assert.match(headerValue(notice.header, 'Subject') ?? '', new RegExp(`Virus found in a message from ${env.from.replace(/\./g, '\\.')}`));
    const body = libqp.decode(notice.body.toString('latin1')).toString('utf8');
    assert.ok(body.includes(clamd.names.eicar), `the notice does not name ${clamd.names.eicar}:\n${body}`);
    assert.match(body, /^Files: +eicar\.com$/m);
    assert.match(body, /^Action: +drop$/m);
    assert.ok(body.includes(env.subject), 'the original headers are shown');
    assert.ok(!notice.raw.includes(eicar()) && !notice.raw.includes(eicar().toString('base64').slice(0, 40)), 'the virus is not in the notice');
    // the infected message itself reached nobody
    assert.deepEqual(h.delivered().filter((m) => headerValue(m.header, 'Subject') === env.subject).map((m) => m.user), []);
    // the notice went through avfilter too, and was clean: one notice, no notice about it
    await waitForLog(/courierfilter: .*from=<> .*verdict=clean/);
    assert.equal(fs.readFileSync(h.logFile, 'latin1').split('\n').filter((l) => /event=notice-sent/.test(l)).length, 1);
    await waitForLog(new RegExp(`courierfilter: .*event=notice-sent .*${postmaster.replace(/\./g, '\\.')}`));
  });

  test('a handler exiting 75: the SMTP client gets 451, nothing is queued or delivered', async () => {
    const handler = path.join(h.runtimeDir, 'handler-75.sh');
    fs.writeFileSync(handler, '#!/bin/sh\necho "archive full" >&2\nexit 75\n', { mode: 0o755 });
    await restartAvfilter(['[action]', `handler = ${JSON.stringify(handler)}`]);
    const env = envelope('handler');
    const to = [h.address('avtest')];
    const r = await h.sendMail({ from: env.from, to, message: eicarMessage(env, to) });
    assert.ok(r.final, `not sent: ${r.last.code} ${r.last.text}`);
    assert.equal(r.final.code, 451, r.final.text);
    assert.match(r.final.text, /held by the virus filter's handler/);
    assert.deepEqual(h.queue().filter((m) => m.sender === env.from).map((m) => m.controlFile), []);
    await waitForLog(/courierfilter: .*event=handler-tempfail .*text="archive full"/);
  });
});

async function waitForLog(re: RegExp): Promise<void> {
  const t0 = Date.now();
  while (Date.now() - t0 < 15_000) {
    if (re.test(fs.readFileSync(h.logFile, 'latin1'))) return;
    await new Promise((r) => setTimeout(r, 200));
  }
  assert.fail(`no log line ${re} in ${h.logFile}`);
}
