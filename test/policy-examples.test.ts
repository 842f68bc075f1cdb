// Each example config of the README's Policy section, as written there, with EICAR and a clean
// message through `avfilter --batch-test` (the embedded engine): what Courier is told, what
// the control and data files then hold, what the quarantine and the notice program got.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, existsSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { eicar } from './helpers/eicar.js';
import { runAvfilter } from './helpers/avfilter-proc.js';
import { daemonEnv, singlePart } from './helpers/daemon-env.js';

const EXAMPLES = new URL('../../examples/policies/', import.meta.url);
const CONTROL = 'ss@example.test\nfdns; x ([192.0.2.9])\nM00AB.CD.EF\nra@example.test\nR\nN\n';
const MARKED = /^I0 R 250 Ok - virus found, message dropped by avfilter\nS0 \d+\n$/m;

/** A message with a text part and an EICAR attachment (what strip can cut). */
const WITH_ATTACHMENT = 'Received: x\nSubject: t\nMIME-Version: 1.0\nContent-Type: multipart/mixed; boundary="B"\n\n--B\nContent-Type: text/plain\n\nhello\n'
  + `--B\nContent-Type: application/octet-stream\nContent-Disposition: attachment; filename="eicar.com"\nContent-Transfer-Encoding: base64\n\n${eicar().toString('base64')}\n--B--\n`;

interface Run { stdout: string; stderr: string; data: string; control: string; dir: string; notices: string }

function run(file: string, message: string): Run {
  const dir = mkdtempSync(join(tmpdir(), 'avf-example-'));
  // a sendmail that keeps what it was given (the example's [notify] names the real one)
  const sendmail = join(dir, 'sendmail');
  writeFileSync(sendmail, `#!/bin/sh\nprintf '%s\\n' "$@" >> ${dir}/notices\ncat >> ${dir}/notices\n`);
  chmodSync(sendmail, 0o755);
  let example = readFileSync(new URL(file, EXAMPLES), 'utf8');
  example = example.replace(/^\[notify\]$/m, `[notify]\nsendmail = ["${sendmail}"]`);
  const env = daemonEnv(`quarantine_dir = "${dir}/quarantine"\n${example}\n[[engine]]\ntype = "yara"\n`);
  const req = env.request(message, [CONTROL]);
  const r = runAvfilter(['-f', env.cfg, '--batch-test'], { input: req.line });
  const notices = existsSync(join(dir, 'notices')) ? readFileSync(join(dir, 'notices'), 'utf8') : '';
  return { stdout: r.stdout, stderr: r.stderr, data: readFileSync(req.dataPath, 'latin1'), control: readFileSync(req.controlPaths[0]!, 'latin1'), dir, notices };
}

test('the README shows every example config exactly as it is in examples/policies', () => {
  const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');
  const files = readdirSync(EXAMPLES).filter((f) => f.endsWith('.toml'));
  assert.equal(files.length, 5);
  for (const f of files) assert.ok(readme.includes(`\`\`\`toml\n${readFileSync(new URL(f, EXAMPLES), 'utf8')}\`\`\``), f);
});

test('drop silently: 200, the recipient marked delivered, the data file untouched', () => {
  const msg = singlePart(eicar());
  const r = run('drop-silently.toml', msg);
  assert.match(r.stdout, /^200 /m);
  assert.match(r.control, MARKED);
  assert.equal(r.data, msg);
  assert.equal(r.notices, '');
});

test('reject at SMTP time: 550 naming the virus; a banned .exe 554 naming the file; nothing written', () => {
  const r = run('reject.toml', singlePart(eicar()));
  assert.match(r.stdout, /^550 5\.7\.1 Message rejected: virus found: /m);
  assert.equal(r.control, CONTROL);
  const exe = 'Received: x\nSubject: t\nMIME-Version: 1.0\nContent-Type: multipart/mixed; boundary="B"\n\n--B\nContent-Type: text/plain\n\nsee attached\n'
    + '--B\nContent-Type: application/octet-stream\nContent-Disposition: attachment; filename="invoice.pdf.exe"\nContent-Transfer-Encoding: base64\n\nTVqQAAMAAAAEAAAA\n--B--\n';
  const b = run('reject.toml', exe);
  assert.match(b.stdout, /^554 5\.7\.1 Message rejected: banned attachment: invoice\.pdf\.exe$/m);
  assert.equal(b.control, CONTROL);
});

test('quarantine and notify: 200, dropped, one entry kept, one notice to the postmaster naming the virus and not carrying it', () => {
  const r = run('quarantine-notify.toml', singlePart(eicar()));
  assert.match(r.stdout, /^200 /m);
  assert.match(r.control, MARKED);
  const entries = readdirSync(join(r.dir, 'quarantine')).filter((e) => !e.startsWith('.'));
  assert.equal(entries.length, 1, entries.join(','));
  assert.match(r.notices, /postmaster@example\.com/);
  assert.match(r.notices, /eicar/i);
  assert.doesNotMatch(r.notices, /EICAR-STANDARD-ANTIVIRUS-TEST-FILE/, 'the notice carries the virus');
  assert.doesNotMatch(r.notices, new RegExp(eicar().toString('base64').slice(0, 40).replace(/[+/]/g, '\\$&')));
});

test('strip and deliver: 200, the recipient still pending, the attachment replaced by a note, the text part kept, headers say what was stripped', () => {
  const r = run('strip.toml', WITH_ATTACHMENT);
  assert.match(r.stdout, /^200 /m);
  assert.doesNotMatch(r.control, /^[IS]0 /m);
  assert.doesNotMatch(r.data, new RegExp(eicar().toString('base64').slice(0, 40).replace(/[+/]/g, '\\$&')));
  assert.match(r.data, /\nhello\n/);
  assert.match(r.data, /eicar\.com/);
  // what is delivered scanned clean again: not "Infected" (a rule on that would file a message
  // that carries no virus any more), but saying what was cut out
  assert.match(r.data, /^X-Virus-Status: Clean \(stripped: [^)]+\)$/m);
  assert.match(r.data, /^X-Virus-Scanned: avfilter /m);
});

test('tag only: infected and clean both delivered, tagged; a forged status from outside renamed', () => {
  const r = run('tag-only.toml', singlePart(eicar()));
  assert.match(r.stdout, /^200 /m);
  assert.equal(r.control, CONTROL);
  assert.match(r.data, /^X-Virus-Found: .* \(avfilter\)$/m);
  assert.match(r.data, /^X-Virus-Status: Infected \(/m);
  const forged = 'Received: x\nX-Virus-Status: Clean\nSubject: t\n\nhello\n';
  const c = run('tag-only.toml', forged);
  assert.match(c.stdout, /^200 /m);
  assert.match(c.data, /^X-Virus-Status: Clean$/m);
  assert.match(c.data, /^X-Old-X-Virus-Status: Clean$/m);
  assert.match(c.data, /\nhello\n$/);
});
