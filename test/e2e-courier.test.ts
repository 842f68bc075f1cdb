/**
 * End to end: a REAL Courier (esmtpd on a loopback port, a local Maildir, courierfilter) with a
 * filter installed through /etc/courier/filters/active, mail sent over SMTP.
 *
 * Part 1 proves the harness and Courier itself with a tiny probe filter (test/helpers/
 * probe-filter.mjs): a pass is delivered unchanged, a filter's 550/451 reaches the client, drop
 * records in the control file stop delivery. Part 2 runs avfilter (dist/bin/avfilter.js) with a
 * real clamd: clean mail delivered byte-identical in its body, EICAR (base64, zipped) dropped
 * with I/S records for every recipient, 550 with the virus name under action "reject", 4xx with
 * clamd down, and one log line per message with the queue id and the verdict. Part 3 runs the
 * other engine types the same way: ICAP (a real c-icap over clamd) and a command-line scanner
 * (the real clamscan), each with EICAR refused and clean mail delivered.
 *
 * Needs root, courier-mta, busybox, clamav-daemon, clamav-testfiles; fails (never skips)
 * without them. Refuses a host where Courier runs unless CI=true or AVFILTER_TEST_TAKE_COURIER=1,
 * and leaves the host as it found it (helpers/courier.ts; test/courier-host.test.ts checks that).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { type CourierHarness, startCourier } from './helpers/courier.js';
import { avfilterFileKeys, avfilterProgram, probeFilterProgram } from './helpers/courier-app.js';
import { type DeliveredMessage, type QueuedMessage, headerValue, replyQueueId, sameQueueId, waitFor } from './helpers/courier-mail.js';
import { asStored, attachmentMessage, cleanTextMessage, envelope, type Envelope } from './helpers/e2e-messages.js';
import type { SmtpResult } from './helpers/smtp.js';
import { startClamd, type RunningClamd } from './helpers/clamd.js';
import { eicar } from './helpers/eicar.js';
import { buildZip } from './helpers/zip.js';
import { startCicap, type RunningCicap } from './helpers/cicap.js';

// Local delivery takes ~100 ms here; a loaded CI box gets generous room.
const DELIVERY_TIMEOUT_MS = 20_000;
// From SMTP's 250 until courierd has finished with the message (delivered or discarded).
const QUEUE_TIMEOUT_MS = 20_000;
const LOG_TIMEOUT_MS = 10_000;
const PROBE = 'e2eprobe';
const AVFILTER = 'avfilter';
const AVFILTER_CONFIG = '/etc/courier/filters/avfilter.toml';
// The shape of Courier's queue id (M record): three hex fields.
const QUEUE_ID_RE = /[0-9A-F]{16}\.[0-9A-F]{16}\.[0-9A-F]{8}/;

const suiteT0 = Date.now();
let h: CourierHarness;

before(async () => {
  h = await startCourier();
  console.log(`courier started in ${h.startMs} ms (esmtpd on 127.0.0.1:${h.port}, log ${h.logFile})`);
});

after(async () => {
  const t0 = Date.now();
  await h?.stop();
  console.log(`courier stopped in ${Date.now() - t0} ms; e2e suite took ${Date.now() - suiteT0} ms`);
});

function subjectIs(env: Envelope) {
  return (m: DeliveredMessage): boolean => headerValue(m.header, 'Subject') === env.subject;
}

function finalReply(r: SmtpResult): { code: number; text: string } {
  assert.ok(r.final, `the message was not sent: ${r.last.code} ${r.last.text}`);
  return r.final;
}

/** The queued message whose M record matches the id in a "250 Ok. <id>" reply. */
function queuedById(replyId: string): QueuedMessage | undefined {
  return h.queue().find((q) => sameQueueId(q.id, replyId));
}

/**
 * Waits until courierd has finished with an accepted message (it logs "completed,id=<M>" and the
 * control file is gone from the spool), then asserts the message reached no Maildir and caused no
 * DSN back to the sender. `mark` is the log position from before the message was sent.
 */
async function assertDiscarded(env: Envelope, replyId: string, mark: number): Promise<void> {
  const completed = new RegExp(`courierd: completed,id=\\S*${replyId.replace(/\./g, '\\.')}\\b`);
  await h.waitForLog(completed, mark, QUEUE_TIMEOUT_MS);
  await waitFor(`${replyId} to leave the spool`, QUEUE_TIMEOUT_MS, () => (queuedById(replyId) ? undefined : true));
  assert.deepEqual(h.delivered().filter(subjectIs(env)).map((m) => m.user), [], 'the message was delivered');
  const dsn = h.queue().filter((q) => q.sender === '' && q.recipients.includes(env.from));
  assert.deepEqual(dsn.map((q) => q.id), [], 'a DSN to the sender was queued');
}

/** Asserts a refused message is neither queued nor delivered. */
function assertNotAccepted(env: Envelope): void {
  assert.deepEqual(h.queue().filter((q) => q.sender === env.from).map((q) => q.controlFile), [], 'the message is in the queue');
  assert.deepEqual(h.delivered().filter(subjectIs(env)).map((m) => m.user), [], 'the message was delivered');
}

/** The courierfilter log line(s) for a message, found by its unique sender. */
async function logLineFor(env: Envelope, mark: number, mustMatch: RegExp[] = []): Promise<string> {
  const lines = (): string[] => h.logSince(mark).split('\n').filter((l) => l.includes('courierfilter') && l.includes(env.from));
  // the sender is taken out before matching, so words in it cannot pass for a verdict
  const matches = (l: string): boolean => mustMatch.every((re) => re.test(l.split(env.from).join('<sender>')));
  try {
    return await waitFor(`a courierfilter log line for ${env.from} matching ${mustMatch.join(' ')}`, LOG_TIMEOUT_MS, () =>
      lines().find(matches),
    );
  } catch (err) {
    const seen = h.logSince(mark).split('\n').filter((l) => l.includes('courierfilter')).join('\n');
    throw new Error(`${(err as Error).message}\ncourierfilter lines since the message was sent:\n${seen}`);
  }
}

function assertDropRecords(q: QueuedMessage, n: number): void {
  const lines = q.control.split('\n');
  assert.equal(q.recipients.length, n, `control file ${q.controlFile} has ${q.recipients.length} recipients`);
  for (let i = 0; i < n; i++) {
    const iAt = lines.findIndex((l) => new RegExp(`^I${i} R \\S`).test(l));
    const sAt = lines.findIndex((l) => new RegExp(`^S${i} \\d+$`).test(l));
    assert.ok(iAt >= 0, `no "I${i} R ..." record in ${q.controlFile}:\n${q.control}`);
    assert.ok(sAt > iAt, `no "S${i} <time>" record after I${i} in ${q.controlFile}:\n${q.control}`);
    const t = Number(lines[sAt]!.split(' ')[1]);
    assert.ok(Math.abs(t - Date.now() / 1000) < 600, `S${i} time ${t} is not now`);
  }
  assert.ok(!lines.some((l) => /^F\d/.test(l)), `an F (failed) record would bounce:\n${q.control}`);
}

describe('harness: a real Courier with a probe filter', () => {
  before(async () => {
    await h.installFilter(PROBE, probeFilterProgram(h));
  });
  after(async () => {
    await h.removeFilter(PROBE);
  });

  test('a passed message is delivered with its body unchanged, and the filter logs to syslog', async () => {
    const env = envelope('probe-p');
    const msg = cleanTextMessage(env, [h.address('avtest')]);
    const mark = h.logMark();
    const r = await h.sendMail({ from: env.from, to: [h.address('avtest')], message: msg.raw });
    const final = finalReply(r);
    assert.equal(final.code, 250, final.text);
    const id = replyQueueId(final.text);
    assert.ok(id, `no queue id in "${final.text}"`);
    const got = await h.waitForDelivery(subjectIs(env), DELIVERY_TIMEOUT_MS);
    assert.equal(got.user, 'avtest');
    assert.ok(got.body.equals(asStored(msg.body)), 'the delivered body differs from the sent body');
    const line = await logLineFor(env, mark, [/verdict=pass/]);
    assert.ok(line.includes(id), `the log line does not name ${id}: ${line}`);
  });

  test("the filter's multi-line 550 reaches the SMTP client as it is", async () => {
    const env = envelope('probe-r');
    const r = await h.sendMail({ from: env.from, to: [h.address('avtest')], message: cleanTextMessage(env, [h.address('avtest')], ['X-Probe: reject']).raw });
    const final = finalReply(r);
    assert.equal(final.code, 550);
    assert.deepEqual(final.text.split('\n'), ['probe: rejected on request', '(header X-Probe: reject)']);
    assertNotAccepted(env);
  });

  test("the filter's 451 reaches the SMTP client", async () => {
    const env = envelope('probe-t');
    const r = await h.sendMail({ from: env.from, to: [h.address('avtest')], message: cleanTextMessage(env, [h.address('avtest')], ['X-Probe: tempfail']).raw });
    const final = finalReply(r);
    assert.equal(final.code, 451, final.text);
    assertNotAccepted(env);
  });

  test('held queue: drop records for both recipients are in the control file; released, nothing is delivered', async () => {
    const env = envelope('probe-d');
    const to = [h.address('avtest'), h.address('avtest2')];
    const mark = h.logMark();
    await h.holdQueue();
    let id: string | undefined;
    try {
      const r = await h.sendMail({ from: env.from, to, message: cleanTextMessage(env, to, ['X-Probe: drop']).raw });
      const final = finalReply(r);
      assert.equal(final.code, 250, final.text);
      id = replyQueueId(final.text);
      assert.ok(id, `no queue id in "${final.text}"`);
      const q = queuedById(id);
      assert.ok(q, `message ${id} is not in the held queue`);
      assert.ok(q.dataFiles.length > 0 && q.dataFiles.every((f) => fs.existsSync(f)), 'no data file next to the control file');
      assertDropRecords(q, 2);
    } finally {
      await h.releaseQueue();
    }
    await assertDiscarded(env, id, mark);
  });
});

describe('avfilter in a real Courier, with a real clamd', () => {
  let clamd: RunningClamd;
  let program: string;
  let installed = false;

  /** Writes avfilter.toml and (re)starts the filter: avfilter reads its config at start-up. */
  async function restartAvfilter(infected: 'drop' | 'reject', serversKey = 'servers'): Promise<void> {
    if (installed) await h.removeFilter(AVFILTER);
    installed = false;
    const dir = h.courierDir('avfilter', 0o700);
    const q = (s: string): string => JSON.stringify(s); // a TOML basic string for plain paths
    h.writeEtcFile(AVFILTER_CONFIG, [
      ...avfilterFileKeys(dir),
      '',
      '[[engine]]',
      'type = "clamd"',
      `${serversKey} = [${q(`unix:${clamd.socketPath}`)}]`,
      '',
      '[action]',
      `infected = ${q(infected)}`,
      '',
    ].join('\n'));
    await h.installFilter(AVFILTER, program);
    installed = true;
  }

  before(async () => {
    clamd = await startClamd();
    console.log(`clamd started in ${clamd.startMs} ms; names: ${JSON.stringify(clamd.names)}`);
    program = await avfilterProgram(h);
    await restartAvfilter('drop');
  });
  after(async () => {
    if (installed) await h.removeFilter(AVFILTER);
    await clamd?.stop();
  });

  function eicarMessage(env: Envelope, to: string[]): Buffer {
    return attachmentMessage(env, to, { filename: 'eicar.com', contentType: 'application/octet-stream', data: eicar() });
  }

  test('a clean text message is delivered with its body byte-identical', async (t) => {
    const env = envelope('av-text');
    const msg = cleanTextMessage(env, [h.address('avtest')]);
    const mark = h.logMark();
    const final = finalReply(await h.sendMail({ from: env.from, to: [h.address('avtest')], message: msg.raw }));
    assert.equal(final.code, 250, final.text);
    const id = replyQueueId(final.text);
    assert.ok(id, `no queue id in "${final.text}"`);
    const got = await h.waitForDelivery(subjectIs(env), DELIVERY_TIMEOUT_MS);
    assert.ok(got.body.equals(asStored(msg.body)), `the delivered body differs from the sent body:\n${got.body.toString('utf8')}`);
    await t.test('the log line names the queue id and the verdict clean', async () => {
      const line = await logLineFor(env, mark, [/\bclean\b/]);
      assert.ok(line.includes(id), `the log line does not name ${id}: ${line}`);
    });
  });

  test('a clean message with a binary attachment is delivered with the attachment unchanged', async () => {
    const env = envelope('av-binary');
    const data = Buffer.from(Array.from({ length: 3000 }, (_, i) => (i * 131 + 7) & 0xff));
    const raw = attachmentMessage(env, [h.address('avtest')], { filename: 'data.bin', contentType: 'application/octet-stream', data });
    const final = finalReply(await h.sendMail({ from: env.from, to: [h.address('avtest')], message: raw }));
    assert.equal(final.code, 250, final.text);
    const got = await h.waitForDelivery(subjectIs(env), DELIVERY_TIMEOUT_MS);
    // Courier rewrites the multipart boundary before filters run; the base64 lines stay as sent
    const b64 = data.toString('base64').match(/.{1,76}/g)!.join('\n');
    assert.ok(got.raw.toString('latin1').includes(b64), 'the attachment is not in the delivered message unchanged');
  });

  test('EICAR as a base64 attachment is dropped: SMTP 250, never delivered', async (t) => {
    const env = envelope('av-b64');
    const to = [h.address('avtest')];
    const mark = h.logMark();
    const final = finalReply(await h.sendMail({ from: env.from, to, message: eicarMessage(env, to) }));
    assert.equal(final.code, 250, final.text);
    const id = replyQueueId(final.text);
    assert.ok(id, `no queue id in "${final.text}"`);
    await assertDiscarded(env, id, mark);
    await t.test('the log line names the queue id, the verdict infected, the virus and the drop', async () => {
      const line = await logLineFor(env, mark, [/\binfected\b/]);
      assert.ok(line.includes(id), `the log line does not name ${id}: ${line}`);
      assert.ok(line.includes(clamd.names.eicar), `the log line does not name ${clamd.names.eicar}: ${line}`);
      assert.match(line, /drop/);
    });
  });

  test('held queue: EICAR to two recipients gets I<n> R and S<n> records for both; released, nothing is delivered', async (t) => {
    const env = envelope('av-held');
    const to = [h.address('avtest'), h.address('avtest2')];
    const mark = h.logMark();
    await h.holdQueue();
    let id: string | undefined;
    try {
      const final = finalReply(await h.sendMail({ from: env.from, to, message: eicarMessage(env, to) }));
      assert.equal(final.code, 250, final.text);
      id = replyQueueId(final.text);
      assert.ok(id, `no queue id in "${final.text}"`);
      const q = queuedById(id);
      assert.ok(q, `message ${id} is not in the held queue`);
      t.diagnostic(`control file records: ${q.control.split('\n').filter((l) => /^[IS]\d/.test(l)).join(' | ')}`);
      assertDropRecords(q, 2);
    } finally {
      await h.releaseQueue();
    }
    await assertDiscarded(env, id, mark);
  });

  test('a zip holding EICAR is dropped, never delivered', async (t) => {
    const env = envelope('av-zip');
    const to = [h.address('avtest')];
    const zip = buildZip([
      { name: 'readme.txt', data: Buffer.from('nothing to see\n') },
      { name: 'tools/eicar.com', data: eicar() },
    ]);
    const mark = h.logMark();
    const raw = attachmentMessage(env, to, { filename: 'tools.zip', contentType: 'application/zip', data: zip });
    const final = finalReply(await h.sendMail({ from: env.from, to, message: raw }));
    assert.equal(final.code, 250, final.text);
    const id = replyQueueId(final.text);
    assert.ok(id, `no queue id in "${final.text}"`);
    await assertDiscarded(env, id, mark);
    await t.test('the log line names the queue id and the verdict infected', async () => {
      const line = await logLineFor(env, mark, [/\binfected\b/]);
      assert.ok(line.includes(id), `the log line does not name ${id}: ${line}`);
    });
  });

  test('action.infected = "reject": the SMTP client gets 550/554 naming the virus; nothing is delivered', async (t) => {
    await restartAvfilter('reject');
    const env = envelope('av-550');
    const to = [h.address('avtest')];
    const mark = h.logMark();
    const final = finalReply(await h.sendMail({ from: env.from, to, message: eicarMessage(env, to) }));
    t.diagnostic(`reply: ${final.code} ${final.text}`);
    assert.ok(final.code === 550 || final.code === 554, `expected 550 or 554, got ${final.code} ${final.text}`);
    assert.ok(final.text.includes(clamd.names.eicar), `the reply does not name ${clamd.names.eicar}: ${final.text}`);
    assertNotAccepted(env);
    await t.test('the log line names a queue id, the verdict infected, the virus and the reject', async () => {
      const line = await logLineFor(env, mark, [/\binfected\b/]);
      assert.match(line, QUEUE_ID_RE);
      assert.ok(line.includes(clamd.names.eicar), `the log line does not name ${clamd.names.eicar}: ${line}`);
      assert.match(line, /reject/);
    });
  });

  test('a config typo (server = for servers =): the filter still installs its socket, so EICAR gets a 4xx and reaches no mailbox', async (t) => {
    await restartAvfilter('reject', 'server');
    try {
      const env = envelope('av-typo');
      const to = [h.address('avtest')];
      const final = finalReply(await h.sendMail({ from: env.from, to, message: eicarMessage(env, to) }));
      t.diagnostic(`reply: ${final.code} ${final.text}`);
      assert.ok(final.code >= 400 && final.code < 500, `expected a 4xx, got ${final.code} ${final.text}`);
      assert.match(final.text, /avfilter is not configured: .*unknown key "engine\[0\]\.server"/);
      assertNotAccepted(env);
    } finally {
      await restartAvfilter('reject');
    }
  });

  // Keep this test last: it stops the suite's clamd.
  test('clamd stopped: the SMTP client gets a 4xx, nothing is queued or delivered (the sender keeps it)', async (t) => {
    await clamd.stop();
    const env = envelope('av-down');
    const to = [h.address('avtest')];
    const mark = h.logMark();
    const final = finalReply(await h.sendMail({ from: env.from, to, message: cleanTextMessage(env, to).raw }));
    t.diagnostic(`reply: ${final.code} ${final.text}`);
    assert.ok(final.code >= 400 && final.code < 500, `expected a 4xx, got ${final.code} ${final.text}`);
    assertNotAccepted(env);
    await t.test('the log line names a queue id and the verdict tempfail', async () => {
      const line = await logLineFor(env, mark, [/\btempfail\b/]);
      assert.match(line, QUEUE_ID_RE);
    });
  });
});

describe('the ICAP and command-line engines in a real Courier', () => {
  let clamd: RunningClamd;
  let cicap: RunningCicap;
  let program: string;
  let installed = false;

  async function restartWith(engine: string[]): Promise<void> {
    if (installed) await h.removeFilter(AVFILTER);
    installed = false;
    const dir = h.courierDir('avfilter-engines', 0o700);
    const q = (s: string): string => JSON.stringify(s);
    h.writeEtcFile(AVFILTER_CONFIG, [
      `pid_file = ${q(`${dir}/avfilter.pid`)}`, `pipe = ${q(`${dir}/avfilter_sig.pipe`)}`,
      `tmpdir = ${q(`${dir}/tmp`)}`, `quarantine_dir = ${q(`${dir}/quarantine`)}`, '',
      '[[engine]]', ...engine, '', '[action]', 'infected = "reject"', '',
    ].join('\n'));
    await h.installFilter(AVFILTER, program);
    installed = true;
  }

  before(async () => {
    clamd = await startClamd();
    cicap = await startCicap(clamd.socketPath);
    program = await avfilterProgram(h);
  });
  after(async () => {
    if (installed) await h.removeFilter(AVFILTER);
    await cicap?.stop();
    await clamd?.stop();
  });

  /** EICAR: 550 naming what the engine called it; a clean message: delivered. */
  async function refusesEicarDeliversClean(label: string, name: RegExp): Promise<void> {
    const to = [h.address('avtest')];
    const bad = envelope(`${label}-eicar`);
    const refused = finalReply(await h.sendMail({ from: bad.from, to, message: attachmentMessage(bad, to, { filename: 'eicar.com', contentType: 'application/octet-stream', data: eicar() }) }));
    assert.equal(refused.code, 550, refused.text);
    assert.match(refused.text, name);
    assertNotAccepted(bad);
    const good = envelope(`${label}-clean`);
    const ok = finalReply(await h.sendMail({ from: good.from, to, message: cleanTextMessage(good, to).raw }));
    assert.equal(ok.code, 250, ok.text);
    await h.waitForDelivery(subjectIs(good), DELIVERY_TIMEOUT_MS);
  }

  test('ICAP (c-icap avscan over clamd): EICAR refused with its name, clean mail delivered', async () => {
    await restartWith(['type = "icap"', `url = ${JSON.stringify(cicap.url('avscan'))}`]);
    await refusesEicarDeliversClean('icap', /Eicar|EICAR/);
  });

  test('a command-line scanner (clamscan): EICAR refused with its name, clean mail delivered', async () => {
    await restartWith(['type = "command"', `command = ["/usr/bin/clamscan", "--no-summary", "-d", ${JSON.stringify(clamd.dbDir)}, "{}"]`, 'scan_timeout = 60']);
    await refusesEicarDeliversClean('command', new RegExp(clamd.names.eicar.replace(/\./g, '\\.')));
  });
});
