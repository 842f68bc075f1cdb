/**
 * End to end, the quarantine in a REAL Courier (the harness of e2e-courier.test.ts): avfilter
 * with the embedded engine and action.quarantine = true drops an EICAR message sent over SMTP and
 * keeps it; `avfilter --quarantine list` shows it; `--quarantine release` hands it to Courier's own
 * /usr/sbin/sendmail (the default quarantine_sendmail), Courier passes it through avfilter again,
 * which recognises the release marker and accepts it unscanned, and it is delivered to the
 * Maildir exactly once; a second release is refused and delivers nothing.
 *
 * /etc/courier/enablefiltering names "local" as well as "esmtp" here, so that the released
 * message (submitted by sendmail: source "local") is filtered again; with Courier's default
 * (esmtp only) it would not meet the filter at all.
 *
 * Needs root and courier-mta; fails (never skips) without them. Leaves the host as it found it
 * (helpers/courier.ts).
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { type CourierHarness, startCourier } from './helpers/courier.js';
import { avfilterProgram } from './helpers/courier-app.js';
import { type DeliveredMessage, headerValue, replyQueueId } from './helpers/courier-mail.js';
import { attachmentMessage, envelope, type Envelope } from './helpers/e2e-messages.js';
import { eicar } from './helpers/eicar.js';

const AVFILTER = 'avfilter';
const AVFILTER_CONFIG = '/etc/courier/filters/avfilter.toml';
const DELIVERY_TIMEOUT_MS = 20_000;
const LOG_TIMEOUT_MS = 20_000;
/** After the delivery, how long a second copy is given to turn up. */
const SECOND_COPY_WAIT_MS = 3_000;

let h: CourierHarness;
let installed = false;
let program: string;

before(async () => {
  h = await startCourier();
  program = await avfilterProgram(h);
  const dir = h.courierDir('avfilter-quarantine', 0o700);
  const q = (s: string): string => JSON.stringify(s);
  h.writeEtcFile(AVFILTER_CONFIG, [
    `pid_file = ${q(`${dir}/avfilter.pid`)}`, `pipe = ${q(`${dir}/avfilter_sig.pipe`)}`,
    `tmpdir = ${q(`${dir}/tmp`)}`, `quarantine_dir = ${q(`${dir}/quarantine`)}`, '',
    '[[engine]]', 'type = "yara"', '', '[action]', 'infected = "drop"', 'quarantine = true', '',
  ].join('\n'));
  // Courier filters only the sources named in enablefiltering (its default: esmtp). A release
  // goes in through sendmail, source "local": filtered too here, so it meets avfilter again.
  h.writeEtcFile('/etc/courier/enablefiltering', 'esmtp local\n', 0o644);
  await h.installFilter(AVFILTER, program);
  installed = true;
});

after(async () => {
  if (installed) await h.removeFilter(AVFILTER);
  await h?.stop();
});

function cli(...args: string[]): { code: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [program, '-f', AVFILTER_CONFIG, '--quarantine', ...args], { encoding: 'utf8', timeout: 120_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

const subjectIs = (env: Envelope) => (m: DeliveredMessage): boolean => headerValue(m.header, 'Subject') === env.subject;

test('EICAR quarantined and dropped; listed; released through Courier\'s sendmail, delivered exactly once, not scanned again; a second release is refused', async (t) => {
  const env = envelope('q-release');
  const to = [h.address('avtest')];
  const mark = h.logMark();
  const raw = attachmentMessage(env, to, { filename: 'eicar.com', contentType: 'application/octet-stream', data: eicar() });
  const r = await h.sendMail({ from: env.from, to, message: raw });
  assert.ok(r.final, `not sent: ${r.last.code} ${r.last.text}`);
  assert.equal(r.final.code, 250, r.final.text);
  const queueId = replyQueueId(r.final.text);
  assert.ok(queueId);

  const kept = await h.waitForLog(/courierfilter: .*verdict=infected .*quarantine=([A-Za-z0-9-]+)/, mark, LOG_TIMEOUT_MS);
  const id = kept[1]!;
  t.diagnostic(`quarantined as ${id}`);
  assert.match(kept[0], /action=quarantine|action=drop/);

  const listed = cli('list', '--json');
  assert.equal(listed.code, 0, listed.stderr);
  const recs = JSON.parse(listed.stdout) as { id: string; sender: string; recipients: string[]; state: string; names: string[] }[];
  const rec = recs.find((x) => x.id === id);
  assert.ok(rec, `${id} is not listed: ${listed.stdout}`);
  assert.equal(rec.sender, env.from);
  assert.deepEqual(rec.recipients, to);
  assert.equal(rec.state, 'held');
  assert.deepEqual(rec.names, ['Eicar-Test-Signature']);
  assert.match(cli('list').stdout, new RegExp(`^${id} .* held +Eicar-Test-Signature$`, 'm'));
  // dropped: nothing reached the Maildir
  await sleep(1000);
  assert.deepEqual(h.delivered().filter(subjectIs(env)).map((m) => m.user), []);

  const relMark = h.logMark();
  const rel = cli('release', id);
  t.diagnostic(`release: ${rel.code} ${rel.stdout.trim()} ${rel.stderr.trim()}`);
  assert.equal(rel.code, 0, rel.stderr);
  assert.equal(rel.stdout, `released ${id} to ${to[0]}\n`);
  const got = await h.waitForDelivery(subjectIs(env), DELIVERY_TIMEOUT_MS).catch((err: Error) => {
    // caught again: show what Courier made of the message on its way back in
    const entries = JSON.parse(cli('list', '--json').stdout) as { id: string }[];
    const shown = entries.map((x) => `--- ${x.id}\n${cli('show', x.id).stdout}\n${fs.readFileSync(JSON.parse(cli('show', x.id, '--json').stdout).message, 'latin1')}`);
    throw new Error(`${err.message}\nthe log since the release:\n${h.logSince(relMark)}\n${shown.join('\n')}`);
  });
  assert.equal(got.user, 'avtest');
  assert.match(got.header, new RegExp(`^X-Avfilter-Released: ${id} [0-9a-f]{64}$`, 'm'));
  assert.ok(got.raw.toString('latin1').includes(eicar().toString('base64').slice(0, 40)), 'the attachment is delivered as it was kept');
  const passed = await h.waitForLog(new RegExp(`courierfilter: .*released=${id}`), relMark, LOG_TIMEOUT_MS).catch((err: Error) => {
    throw new Error(`${err.message}\nthe log since the release:\n${h.logSince(relMark)}`);
  });
  assert.match(passed[0], /verdict=skipped/);
  assert.doesNotMatch(h.logSince(relMark), /courierfilter: .*verdict=infected/, 'scanned and caught again');

  await sleep(SECOND_COPY_WAIT_MS);
  assert.equal(h.delivered().filter(subjectIs(env)).length, 1, 'delivered exactly once');
  const again = cli('release', id);
  assert.equal(again.code, 1, again.stderr);
  assert.match(again.stderr, /was released at .* it is not sent again/);
  const state = JSON.parse(cli('show', id, '--json').stdout) as { state: string; released: { to: string[] } };
  assert.equal(state.state, 'released');
  assert.deepEqual(state.released.to, to);
  await sleep(SECOND_COPY_WAIT_MS);
  assert.equal(h.delivered().filter(subjectIs(env)).length, 1, 'still exactly once');
});
