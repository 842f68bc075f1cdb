/**
 * action.handler (src/effects/handler.ts) with real processes: small shell scripts that record
 * their argv, environment and the copy they were given, exit 0, 75 or 3, or sleep past the
 * timeout with a child of their own (the whole group is killed). The private copy is 0600 in a
 * 0700 directory and is gone afterwards.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runHandler, type HandlerInput } from '../src/effects/handler.js';
import { AvError } from '../src/errors.js';
import { waitGone } from './helpers/gone.js';
import { runAvfilter } from './helpers/avfilter-proc.js';
import { daemonEnv, type DaemonEnv, type Request } from './helpers/daemon-env.js';
import { SAMPLE, infectedSample } from './helpers/courier-sample.js';

const dir = mkdtempSync(join(tmpdir(), 'avf-handler-'));
const work = join(dir, 'tmp');
mkdirSync(work, { mode: 0o700 });
const message = join(dir, 'data');
writeFileSync(message, 'From: a@example.com\nSubject: hi\n\nbody\n', { mode: 0o644 });
let n = 0;

function script(body: string): { path: string; out: string } {
  const out = join(dir, `run${++n}`);
  const path = `${out}.sh`;
  writeFileSync(path, `#!/bin/sh\nOUT='${out}'\nmkdir -p "$OUT"\n${body}\n`);
  chmodSync(path, 0o755);
  return { path, out };
}

function input(program: string, over: Partial<HandlerInput> = {}): HandlerInput {
  return {
    program, timeoutMs: 10_000, tmpdir: work, dataPath: message, sender: 'alice@example.com', names: ['Eicar-Signature', 'Other.Name'],
    recipients: ['bob@example.net', '-carol@example.net'], queueId: '00A1.B2', clientIp: '192.0.2.7', action: 'drop', sendmail: '/usr/sbin/sendmail', ...over,
  };
}

const RECORD = [
  `for a in "$@"; do printf '%s\\0' "$a"; done > "$OUT/argv"`,
  'env > "$OUT/env"',
  'cp "$1" "$OUT/copy"',
  `stat -c '%a' "$1" > "$OUT/mode"; stat -c '%a' "$(dirname "$1")" > "$OUT/dirmode"`,
  'pwd > "$OUT/pwd"',
].join('\n');

const envOf = (out: string): Record<string, string> =>
  Object.fromEntries(readFileSync(join(out, 'env'), 'utf8').split('\n').filter((l) => l.includes('=')).map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]));

test('exit 0: done; argv MESSAGE SENDER NAMES RECIPIENT...; the environment; a private copy, removed after', async () => {
  const s = script(`${RECORD}\nexit 0`);
  const r = await runHandler(input(s.path));
  assert.equal(r.kind, 'done');
  const argv = readFileSync(join(s.out, 'argv'), 'latin1').split('\0').slice(0, -1);
  assert.equal(argv.length, 5);
  assert.match(argv[0]!, new RegExp(`^${work}/handler-${process.pid}-[^/]+/message$`));
  assert.deepEqual(argv.slice(1), ['alice@example.com', 'Eicar-Signature,Other.Name', 'bob@example.net', '-carol@example.net']);
  assert.equal(readFileSync(join(s.out, 'copy'), 'utf8'), readFileSync(message, 'utf8'));
  assert.equal(readFileSync(join(s.out, 'mode'), 'utf8').trim(), '600');
  assert.equal(readFileSync(join(s.out, 'dirmode'), 'utf8').trim(), '700');
  const env = envOf(s.out);
  assert.equal(env['SENDMAIL'], '/usr/sbin/sendmail');
  assert.equal(env['AVFILTER_QUEUE_ID'], '00A1.B2');
  assert.equal(env['AVFILTER_CLIENT_IP'], '192.0.2.7');
  assert.equal(env['AVFILTER_VIRUS_NAMES'], 'Eicar-Signature,Other.Name');
  assert.equal(env['AVFILTER_SENDER'], 'alice@example.com');
  assert.equal(env['AVFILTER_ACTION'], 'drop');
  assert.equal(env['AVFILTER_MESSAGE'], argv[0]);
  assert.equal(env['TMPDIR'], join(argv[0]!, '..'));
  assert.equal(readFileSync(join(s.out, 'pwd'), 'utf8').trim(), env['TMPDIR']);
  assert.deepEqual(readdirSync(work), [], 'the private directory is gone');
});

test('exit 75: tempfail (the caller answers 451); another status: failed, with what it said', async () => {
  const r75 = await runHandler(input(script('echo "archive full" >&2; exit 75').path));
  assert.equal(r75.kind, 'tempfail');
  assert.equal(r75.kind === 'tempfail' && r75.output, 'archive full');
  const r3 = await runHandler(input(script('echo "cannot parse" >&2; exit 3').path));
  assert.deepEqual(r3.kind === 'failed' && [r3.code, r3.reason], ['EHANDLER_EXIT', 'exited 3: cannot parse']);
  const sig = await runHandler(input(script('kill -SEGV $$').path));
  assert.deepEqual(sig.kind === 'failed' && [sig.code, sig.reason], ['EHANDLER_EXIT', 'killed by SIGSEGV']);
  const missing = await runHandler(input(join(dir, 'no-such-handler')));
  assert.deepEqual(missing.kind === 'failed' && [missing.code, missing.reason], ['EHANDLER_SPAWN', 'cannot be started: ENOENT']);
  const noexec = join(dir, 'not-executable');
  writeFileSync(noexec, '#!/bin/sh\nexit 0\n', { mode: 0o644 });
  const r = await runHandler(input(noexec));
  assert.deepEqual(r.kind === 'failed' && [r.code, r.reason], ['EHANDLER_SPAWN', 'cannot be started: EACCES']);
  assert.deepEqual(readdirSync(work), []);
});

test('past handler_timeout: the whole process group is killed (a child of it too), reported, the copy removed', async () => {
  const s = script('sleep 300 & echo $! > "$OUT/child"; sleep 300');
  const t0 = Date.now();
  const r = await runHandler(input(s.path, { timeoutMs: 500 }));
  assert.ok(Date.now() - t0 < 5000, `${Date.now() - t0} ms`);
  assert.equal(r.kind === 'failed' && r.code, 'EHANDLER_TIMEOUT');
  await waitGone(Number(readFileSync(join(s.out, 'child'), 'utf8')), 'its handler');
  assert.deepEqual(readdirSync(work), []);
});

test('the request deadline stops the handler too (an abort, for the request to answer)', async () => {
  const ac = new AbortController();
  setTimeout(() => ac.abort(), 200);
  await assert.rejects(runHandler(input(script('sleep 300').path, { signal: ac.signal })), (e: unknown) => e instanceof AvError && e.code === 'EABORTED' && e.origin === 'abort');
  assert.deepEqual(readdirSync(work), []);
});

test('a handler that leaves a daemon holding its output is done at its own exit', async () => {
  const s = script('(sleep 3; true) & echo $! > "$OUT/child"; exit 0');
  const t0 = Date.now();
  const r = await runHandler(input(s.path));
  assert.equal(r.kind, 'done');
  assert.ok(Date.now() - t0 < 2000, `${Date.now() - t0} ms`);
});

test('hostile sender, names and recipients reach the handler escaped, never raw', async () => {
  const s = script(`${RECORD}\nexit 0`);
  const evil = 'a\u0000b\r\nc\u001b[2J\u202ed';
  const r = await runHandler(input(s.path, { sender: evil, names: [evil], recipients: [evil], queueId: evil, clientIp: evil }));
  assert.equal(r.kind, 'done');
  const argv = readFileSync(join(s.out, 'argv'), 'latin1').split('\0').slice(0, -1);
  const shown = 'a\\x00b\\x0d\\x0ac\\x1b[2J\\u202ed';
  assert.deepEqual(argv.slice(1), [shown, shown, shown]);
  const env = envOf(s.out);
  assert.equal(env['AVFILTER_QUEUE_ID'], shown);
  assert.equal(env['AVFILTER_CLIENT_IP'], shown);
});

test('tmpdir unusable: failed (EHANDLER_COPY), the action stands', async () => {
  const r = await runHandler(input(script('exit 0').path, { tmpdir: join(dir, 'no-such-dir') }));
  assert.equal(r.kind === 'failed' && r.code, 'EHANDLER_COPY');
  const r2 = await runHandler(input(script('exit 0').path, { dataPath: join(dir, 'gone') }));
  assert.deepEqual(r2.kind === 'failed' && [r2.code, r2.reason], ['EHANDLER_COPY', 'cannot copy the message: ENOENT']);
  assert.deepEqual(readdirSync(work), []);
});

// ---- through avfilter --batch-test, on the infected request of a real Courier

/** A test daemon's world whose action.handler is `program`, quarantine on, and the sample request. */
function batchWorld(program: string): { env: DaemonEnv; req: Request; qdir: string } {
  const env = daemonEnv('', 'avf-handler-batch-');
  const qdir = join(env.dir, 'quarantine');
  env.write(`quarantine_dir = "${qdir}"\n[action]\nquarantine = true\nhandler = "${program}"\nhandler_timeout = 5`);
  mkdirSync(join(env.dir, 'work'), { mode: 0o700 });
  return { env, req: infectedSample(env), qdir };
}

const quarantined = (qdir: string): string[] => (existsSync(qdir) ? readdirSync(qdir).filter((n) => !n.startsWith('.')) : []);

test('batch-test: exit 75 answers 451, nothing is dropped, the quarantine copy is taken back', () => {
  const s = script(`${RECORD}\necho "archive busy" >&2\nexit 75`);
  const { env, req, qdir } = batchWorld(s.path);
  const r = runAvfilter(['-f', env.cfg, '--batch-test'], { input: req.line });
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /^451 4\.7\.1 Virus found, the message is held by the virus filter's handler, try again later\n$/);
  assert.doesNotMatch(readFileSync(req.controlPaths[0]!, 'utf8'), /^S0 /m, 'the recipient is not marked delivered');
  assert.deepEqual(quarantined(qdir), [], 'the quarantine copy made before the handler is removed');
  assert.match(r.stderr, /level=warning event=handler-tempfail .*text="archive busy"/);
  assert.match(r.stderr, /verdict=infected .*handler_error=EHANDLER_TEMPFAIL/);
  // the handler saw the real envelope and the names
  const argv = readFileSync(join(s.out, 'argv'), 'latin1').split('\0').slice(0, -1);
  assert.deepEqual([argv[1], argv[3]], [SAMPLE.sender, SAMPLE.recipient]);
  assert.match(argv[2]!, /EICAR/i);
  assert.equal(envOf(s.out)['AVFILTER_QUEUE_ID'], SAMPLE.queueId);
  assert.equal(envOf(s.out)['AVFILTER_CLIENT_IP'], SAMPLE.clientIp);
  assert.equal(envOf(s.out)['AVFILTER_ACTION'], 'drop');
  assert.match(readFileSync(join(s.out, 'copy'), 'utf8'), /filename="eicar\.com"/, 'the copy is the message');
});

test('batch-test: exit 0 and any other failure leave the action (drop) as it was', () => {
  for (const [body, log] of [['exit 0', /handler=done/], ['echo broken >&2; exit 2', /level=error event=handler-failed .*code=EHANDLER_EXIT reason="exited 2: broken"/]] as const) {
    const { env, req, qdir } = batchWorld(script(body).path);
    const r = runAvfilter(['-f', env.cfg, '--batch-test'], { input: req.line });
    assert.match(r.stdout, /^2\d\d /, r.stderr);
    assert.match(readFileSync(req.controlPaths[0]!, 'utf8'), /^S0 /m, 'dropped');
    assert.equal(quarantined(qdir).length, 1);
    assert.match(r.stderr, log);
    assert.deepEqual(readdirSync(join(env.dir, 'work')).filter((n) => n.startsWith('handler-')), [], 'no private directory left');
  }
});
