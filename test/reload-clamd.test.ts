/**
 * `reload virus` with reload_clamd = true against a REAL clamd (test/helpers/clamd.ts, a
 * generated database): avfilter sends RELOAD, clamd loads the signature added to its database
 * directory, and a message that was clean is found. Also the command line freshclam runs after
 * an update (OnUpdateExecute, through /bin/sh as freshclam's system() does), and a clamd that
 * cannot be reached making the reload report an error.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { spawn } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { startClamd, type RunningClamd } from './helpers/clamd.js';
import { daemonEnv, singlePart, stopDaemon, waitLog, type DaemonEnv } from './helpers/daemon-env.js';
import type { Daemon } from './helpers/avfilter-proc.js';
import { waitFor } from './helpers/avfilter-proc.js';
import { AVFILTER_SIG, runSig } from './helpers/sig.js';

const log = (c: RunningClamd): string => {
  try {
    return readFileSync(join(c.dir, 'clamd.log'), 'utf8');
  } catch {
    return '';
  }
};
const activations = (c: RunningClamd): number => log(c).match(/Activating the newly loaded database/g)?.length ?? 0;
/** The signature counts clamd logged: at start ("Loaded N signatures") and after each reload. */
const signatureCounts = (c: RunningClamd): number[] =>
  [...log(c).matchAll(/(?:Loaded (\d+) signatures|Database correctly reloaded \((\d+) signatures\))/g)].map((m) => Number(m[1] ?? m[2]));

/** A marker only a signature added at test time knows, as a message, and that signature (.ndb). */
function marker(): { message: string; ndb: string; name: string } {
  const m = `AVF-CLAMD-RELOAD-${randomBytes(8).toString('hex')}`;
  const name = `Avfilter.Test.Marker${randomBytes(3).toString('hex')}`;
  return { message: singlePart(Buffer.from(`hello ${m} bye\n`)), ndb: `${name}:0:*:${Buffer.from(m).toString('hex')}\n`, name };
}


/** A real clamd and a daemon scanning with it (reload_clamd = true); both stopped afterwards. */
async function withDaemon(fn: (clamd: RunningClamd, env: DaemonEnv, d: Daemon) => Promise<void>, servers?: (clamd: RunningClamd, env: DaemonEnv) => string[]): Promise<void> {
  const clamd = await startClamd();
  const env = daemonEnv();
  const list = servers?.(clamd, env) ?? [`unix:${clamd.socketPath}`];
  env.write(`[[engine]]\ntype = "clamd"\nservers = ${JSON.stringify(list)}\nreload_clamd = true\nconnect_timeout = 1\n\n[action]\ninfected = "reject"`);
  const d = await env.up();
  try {
    await fn(clamd, env, d);
  } finally {
    await stopDaemon(d);
    await clamd.stop();
  }
}

/** Waits until clamd put a reloaded database in service (its log says so) after `before` activations. */
async function reloadedDatabase(c: RunningClamd, before: number): Promise<void> {
  await waitFor(() => activations(c) > before, 60_000, `clamd reload\n${log(c)}`);
}

test('reload virus with reload_clamd = true: clamd reloads its database (more signatures) and a message that was clean is found', async () => {
  await withDaemon(async (clamd, env, d) => {
    const mk = marker();
    assert.match(await env.send(env.request(mk.message).line), /^200 /, 'clean before the signature');
    const counts = signatureCounts(clamd);
    const before = activations(clamd);
    writeFileSync(join(clamd.dbDir, 'marker.ndb'), mk.ndb);
    const r = await runSig(['-f', env.cfg, 'reload', 'virus']);
    assert.equal(r.code, 0, `${r.stdout}\n${r.stderr}`);
    assert.match(r.stdout, new RegExp(`^clamd at unix:${clamd.socketPath}: RELOAD answered RELOADING`, 'm'));
    assert.match(r.stdout, /^signatures: clamd ClamAV \S+ at unix:/m);
    assert.match(r.stdout, /\nstatus: ok\n$/);
    await reloadedDatabase(clamd, before);
    const after = signatureCounts(clamd);
    assert.ok(after.length > counts.length && after.at(-1)! === counts.at(-1)! + 1, `one signature more: ${counts} -> ${after}`);
    assert.match(await env.send(env.request(mk.message).line), new RegExp(`^550 .*${mk.name}`));
    await waitLog(d, new RegExp(`event=clamd-reload server=unix:${clamd.socketPath.replace(/[.]/g, '\\.')} reply=RELOADING`));
  });
});

test('reload config does not ask clamd to reload', async () => {
  await withDaemon(async (clamd, env, d) => {
    const reads = (): number => log(clamd).match(/Reading databases from/g)?.length ?? 0;
    const before = reads();
    const r = await runSig(['-f', env.cfg, 'reload', 'config']);
    assert.equal(r.code, 0, `${r.stdout}\n${r.stderr}`);
    assert.doesNotMatch(r.stdout, /RELOAD/);
    await new Promise((res) => setTimeout(res, 1000));
    assert.equal(reads(), before, 'clamd did not read its database again');
    assert.equal(activations(clamd), 0);
    assert.doesNotMatch(d.stderr(), /event=clamd-reload/);
  });
});

test('freshclam\'s OnUpdateExecute command line, run through /bin/sh with no terminal as freshclam runs it, reloads avfilter and clamd and prints nothing', async () => {
  await withDaemon(async (clamd, env, d) => {
    const mk = marker();
    writeFileSync(join(clamd.dbDir, 'marker.ndb'), mk.ndb);
    const before = activations(clamd);
    // freshclam.conf: OnUpdateExecute /path/to/avfilter_sig -f FILE -l reload virus
    const line = `${AVFILTER_SIG} -f ${env.cfg} -l reload virus`;
    const r = await new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
      const child = spawn('/bin/sh', ['-c', line], {
        stdio: ['ignore', 'pipe', 'pipe'],
        // the environment a freshclam daemon has: a plain PATH that finds node
        env: { PATH: `${dirname(process.execPath)}:/usr/sbin:/usr/bin:/sbin:/bin`, TMPDIR: process.env['TMPDIR'] ?? '/tmp' },
      });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (b: Buffer) => { stdout += b.toString(); });
      child.stderr.on('data', (b: Buffer) => { stderr += b.toString(); });
      child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, '', 'with -l the answer goes to syslog, not stdout');
  // without a syslog daemon logger(1) fails and the lines land on stderr instead of being lost
  if (r.stderr !== '') assert.match(r.stderr, /logger failed .*status: ok/s);
  await reloadedDatabase(clamd, before);
  await waitLog(d, /event=reloaded signal=SIGUSR2 kind=virus /);
  assert.match(await env.send(env.request(mk.message).line), new RegExp(`^550 .*${mk.name}`));
  });
});

test('a clamd that cannot be reached for RELOAD: avfilter reloads, the report names the server, avfilter_sig exits 1', async () => {
  await withDaemon(async (clamd, env, d) => {
    const nowhere = join(env.dir, 'no-clamd.sock');
    const r = await runSig(['-f', env.cfg, 'reload', 'virus']);
    assert.equal(r.code, 1, `${r.stdout}\n${r.stderr}`);
    assert.match(r.stdout, new RegExp(`^clamd at unix:${clamd.socketPath}: RELOAD answered RELOADING`, 'm'));
    assert.match(r.stdout, new RegExp(`^error: clamd at unix:${nowhere} did not reload: `, 'm'));
    assert.match(r.stdout, /^workers: \d+ in generation 2/m, 'avfilter itself reloaded');
    assert.match(r.stdout, /\nstatus: error avfilter reloaded, but clamd at \S+ did not reload: .*\n$/);
    await waitLog(d, /level=error event=clamd-reload server=unix:\S+no-clamd\.sock /);
  }, (clamd, env) => [`unix:${clamd.socketPath}`, `unix:${join(env.dir, 'no-clamd.sock')}`]);
});
