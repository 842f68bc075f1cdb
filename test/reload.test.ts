/**
 * Reloads through avfilter_sig against a real daemon (embedded engine, private directories):
 * what each kind of reload does while requests stream, the report and exit statuses, the old
 * state kept when the new one does not load, the pipe as a lock, planted symlinks, a daemon
 * that is not there or does not answer, the stats request, and watched edits.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { appendFileSync, chownSync, copyFileSync, existsSync, lstatSync, mkdirSync, readFileSync, renameSync, symlinkSync, writeFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { daemonEnv, singlePart, stopDaemon, waitLog, workerPids, type DaemonEnv } from './helpers/daemon-env.js';
import { lookupUser, talk, waitFor, type Daemon } from './helpers/avfilter-proc.js';
import { runSig } from './helpers/sig.js';
import { eicar } from './helpers/eicar.js';

const SHIPPED_EICAR_RULE = fileURLToPath(new URL('../../rules/eicar.yar', import.meta.url));

/** A world with its own rules directory (the shipped EICAR rule) and infected = reject. */
function world(extraTop = ''): { env: DaemonEnv; rules: string; config(top?: string): void } {
  const env = daemonEnv();
  const rules = join(env.dir, 'rules');
  mkdirSync(rules);
  copyFileSync(SHIPPED_EICAR_RULE, join(rules, 'eicar.yar'));
  const config = (top = extraTop): void => env.write(`${top}\n[[engine]]\ntype = "yara"\nrules = "${rules}"\n\n[action]\ninfected = "reject"`);
  config();
  return { env, rules, config };
}

/** A world and its daemon, stopped afterwards. */
async function withWorld(fn: (w: ReturnType<typeof world>, d: Daemon) => Promise<void>, top?: string): Promise<void> {
  const w = world(top);
  const d = await w.env.up();
  try {
    await fn(w, d);
  } finally {
    await stopDaemon(d);
  }
}

/** A clean message carrying a marker no rule knows yet, and a rule that knows it. */
function marker(): { message: string; rule: string } {
  const m = `AVF-RELOAD-MARKER-${randomBytes(8).toString('hex')}`;
  return {
    message: singlePart(Buffer.from(`hello ${m} bye\n`)),
    rule: `rule Reload_Test_Marker { strings: $a = "${m}" condition: $a }\n`,
  };
}

/** Sends clean messages on `conns` connections until stopped; every reply is kept. */
function stream(env: DaemonEnv, conns = 4): { stop(): Promise<string[]> } {
  let running = true;
  const replies: string[] = [];
  const loops = Array.from({ length: conns }, async () => {
    while (running) {
      const req = env.request(singlePart(Buffer.from('just a clean message\n')));
      replies.push((await talk(env.sock, req.line, { timeoutMs: 30_000 })).reply);
    }
  });
  return {
    async stop() {
      running = false;
      await Promise.all(loops);
      return replies;
    },
  };
}

function assertAllAnsweredOnce(replies: string[]): void {
  assert.ok(replies.length > 0, 'the stream sent requests');
  for (const r of replies) assert.match(r, /^200 [^\n]*\n$/, `one 200 reply per request, got ${JSON.stringify(r)}`);
}

/** Runs `prepare`, then avfilter_sig ARGS, while clean messages stream; every reply is checked. */
async function reloadWhileStreaming(env: DaemonEnv, prepare: () => void, args: string[]): Promise<Awaited<ReturnType<typeof runSig>>> {
  const s = stream(env);
  await new Promise((r) => setTimeout(r, 300));
  prepare();
  const r = await runSig(['-f', env.cfg, ...args]);
  assertAllAnsweredOnce(await s.stop());
  assert.equal(r.code, 0, `${r.stdout}\n${r.stderr}`);
  return r;
}

const reloads = (stderr: string, re = /event=reloaded /g): number => stderr.match(re)?.length ?? 0;

test('reload virus through avfilter_sig while requests stream: none fails or is answered twice, a rule added before it catches a message that was clean, and the retired worker is not logged as holding requests (a stale heartbeat count)', async () => {
  await withWorld(async ({ env, rules }, d) => {
    const mk = marker();
    assert.match(await env.send(env.request(mk.message).line), /^200 /, 'clean before the new rule');
    const r = await reloadWhileStreaming(env, () => writeFileSync(join(rules, 'marker.yar'), mk.rule), ['reload', 'virus']);
    assert.match(r.stdout, /^reload: signatures only \(SIGUSR2\)$/m);
    assert.match(r.stdout, /^config: kept in force from /m);
    assert.match(r.stdout, new RegExp(`^signatures: yara 2 rules in ${rules}$`, 'm'));
    assert.match(r.stdout, /\nstatus: ok\n$/);
    // the answer came after the new generation serves: a request started now sees the rule
    assert.match(await env.send(env.request(mk.message).line), /^550 5\.7\.1 .*Reload_Test_Marker/);
    await waitLog(d, /event=reloaded signal=SIGUSR2 kind=virus /);
    // the retired worker finished what it held and exited: not logged as if it held requests
    await waitFor(() => workerPids(d.child.pid!).length === 1, 20_000, 'the old worker gone');
    await new Promise((r) => setTimeout(r, 200));
    assert.doesNotMatch(d.stderr(), /event=worker-exit/);
  });
});

test('reload config through avfilter_sig while requests stream: the new config applies to requests that start after the answer', async () => {
  await withWorld(async ({ env }, d) => {
    const eicarMsg = (): string => env.request(singlePart(eicar())).line;
    assert.match(await env.send(eicarMsg()), /^550 /, 'reject in force');
    const r = await reloadWhileStreaming(env, () => env.write(`[[engine]]\ntype = "yara"\nrules = "${join(env.dir, 'rules')}"\n\n[action]\ninfected = "tempfail"`), ['reload', 'config']);
    assert.match(r.stdout, /^reload: config only \(SIGUSR1\)$/m);
    assert.match(r.stdout, /^config: read /m);
    assert.match(await env.send(eicarMsg()), /^451 /, 'tempfail in force after the answer');
  });
});

test('a broken config: avfilter_sig exits 1 with the reason, the old config stays in force, and the pipe is removed', async () => {
  await withWorld(async ({ env }, d) => {
    writeFileSync(env.cfg, `bogus_key = 1\n${readFileSync(env.cfg, 'utf8')}`);
    const r = await runSig(['-f', env.cfg]);
    assert.equal(r.code, 1, `${r.stdout}\n${r.stderr}`);
    assert.match(r.stdout, /^error: \S+avfilter\.toml:\d+: unknown key "bogus_key"$/m);
    assert.match(r.stdout, /^kept: previous configuration$/m);
    assert.match(r.stdout, /\nstatus: error \S+avfilter\.toml:\d+: unknown key "bogus_key" \(kept: previous configuration\)\n$/);
    assert.equal(existsSync(env.pipe), false, 'pipe removed');
    assert.match(await env.send(env.request(singlePart(eicar())).line), /^550 /, 'the old config (reject) still answers');
    await waitLog(d, /level=error event=reload-failed signal=SIGHUP kind=all reason=.*bogus_key/);
  });
});

test('a key read only at start is reported as needing a restart, and the reload still happens', async () => {
  const { env, config } = world();
  const d = await env.up();
  try {
    config(`pid_file = "${env.dir}/other.pid"`);
    const r = await runSig(['-f', env.cfg, '-p', String(d.child.pid)]);
    assert.equal(r.code, 0, `${r.stdout}\n${r.stderr}`);
    assert.match(r.stdout, /^restart needed: pid_file = "\S+other\.pid" takes effect only after a restart \(in effect: "\S+avfilter\.pid"\)$/m);
    await waitLog(d, /level=warning event=reload-warning key=pid_file/);
  } finally {
    config();
    await stopDaemon(d);
  }
});

test('two avfilter_sig at once: one reloads, the other finds the pipe busy (exit 4) and leaves it alone', async () => {
  await withWorld(async ({ env }, d) => {
    const [a, b] = await Promise.all([runSig(['-f', env.cfg]), runSig(['-f', env.cfg])]);
    assert.deepEqual([a.code, b.code].sort(), [0, 4], `${a.stdout}${a.stderr}\n---\n${b.stdout}${b.stderr}`);
    assert.match((a.code === 4 ? a : b).stderr, /pipe busy: \S+avfilter_sig\.pipe exists/);
    // a pipe left by someone else (an avfilter_sig that waits) is the lock, and is not removed
    spawnSync('mkfifo', [env.pipe]);
    const c = await runSig(['-f', env.cfg]);
    assert.equal(c.code, 4);
    assert.ok(lstatSync(env.pipe).isFIFO(), 'the other pipe is still there');
  });
});

test('no daemon: no pid file, or a stale one, exits 3 and makes no pipe', async () => {
  const { env } = world();
  const r = await runSig(['-f', env.cfg]);
  assert.equal(r.code, 3);
  assert.match(r.stderr, /avfilter is not running: no pid file \S+avfilter\.pid/);
  const gone = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' });
  writeFileSync(env.pidFile, `${gone.stdout}\n`);
  const s = await runSig(['-f', env.cfg]);
  assert.equal(s.code, 3);
  assert.match(s.stderr, /no process \d+ \(stale pid file\?\)/);
  assert.equal(existsSync(env.pipe), false);
  const u = await runSig(['-f', env.cfg, 'reload', 'everything']);
  assert.equal(u.code, 2);
  assert.match(u.stderr, /unknown command "reload everything"/);
});

test('a symlink planted at the pipe path is refused by avfilter_sig (exit 4) and never written through by the daemon', async () => {
  await withWorld(async ({ env }, d) => {
    const target = join(env.dir, 'target');
    writeFileSync(target, '');
    symlinkSync(target, env.pipe);
    const r = await runSig(['-f', env.cfg]);
    assert.equal(r.code, 4);
    assert.match(r.stderr, /avfilter_sig\.pipe is a symbolic link: refusing to use it/);
    assert.ok(lstatSync(env.pipe).isSymbolicLink(), 'left as it was');
    // the daemon, signalled directly, does not follow it either
    d.child.kill('SIGHUP');
    await waitLog(d, /event=reloaded /, 30_000);
    await waitLog(d, /level=warning event=pipe-refused path=\S+avfilter_sig\.pipe reason="\S+ is a symbolic link"/);
    assert.equal(readFileSync(target, 'utf8'), '', 'nothing written through the link');
  });
});

test('a daemon that does not answer: avfilter_sig gives up after -t (exit 5) and removes the pipe; SIGTERM to avfilter_sig removes it too (exit 6)', async () => {
  const { env } = world();
  const d = await env.up();
  try {
    d.child.kill('SIGSTOP');
    const r = await runSig(['-f', env.cfg, '-t', '1']);
    assert.equal(r.code, 5, r.stderr);
    assert.match(r.stderr, /no answer from avfilter \(pid \d+\) within 1 s/);
    assert.equal(existsSync(env.pipe), false);
    const s = await runSig(['-f', env.cfg, '-t', '60'], {
      onSpawn: (pid) => void waitFor(() => existsSync(env.pipe), 10_000, 'pipe').then(() => process.kill(pid, 'SIGTERM')),
    });
    assert.equal(s.code, 6, s.stderr);
    assert.match(s.stderr, /interrupted by SIGTERM/);
    assert.equal(existsSync(env.pipe), false);
  } finally {
    d.child.kill('SIGCONT');
    await stopDaemon(d);
  }
});

test('regression: a SIGTERM while avfilter_sig makes its pipe left the pipe behind (every later avfilter_sig: pipe busy); at any moment, no pipe stays', async () => {
  const { env } = world();
  const d = await env.up();
  try {
    d.child.kill('SIGSTOP'); // no answer: avfilter_sig waits, so the signal is what ends it
    for (const delayMs of [0, 40, 80, 120, 160, 200, 240, 280, 320, 400]) {
      const r = await runSig(['-f', env.cfg, '-t', '30'], { onSpawn: (pid) => void setTimeout(() => { try { process.kill(pid, 'SIGTERM'); } catch { /* gone */ } }, delayMs) });
      assert.equal(existsSync(env.pipe), false, `after a SIGTERM ${delayMs} ms in (exit ${r.code ?? r.signal}), the pipe is still there`);
      assert.ok(r.code === 6 || r.signal === 'SIGTERM', `exit ${r.code ?? r.signal}: ${r.stderr}`);
    }
  } finally {
    d.child.kill('SIGCONT');
    await stopDaemon(d);
  }
});

test('stats: avfilter_sig stats prints the daemon\'s uptime, workers, generation and reloads', async () => {
  await withWorld(async ({ env }, d) => {
    assert.equal((await runSig(['-f', env.cfg, 'reload', 'config'])).code, 0);
    const r = await runSig(['-f', env.cfg, 'stats']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, new RegExp(`^pid: ${d.child.pid}$`, 'm'));
    assert.match(r.stdout, /^uptime_seconds: \d+$/m);
    assert.match(r.stdout, /^service: scanning$/m);
    assert.match(r.stdout, /^generation: 2$/m);
    assert.match(r.stdout, /^reloads_done: 1$/m);
    assert.match(r.stdout, /\nstatus: ok\n$/);
  });
});

test('a reload leaves the number of workers it logs running: workers=N in the log and the report is the live count', async () => {
  const { env, config } = world();
  config('workers = 1');
  const d = await env.up();
  try {
    for (const kind of ['config', 'virus', 'config']) {
      const r = await runSig(['-f', env.cfg, 'reload', kind]);
      assert.equal(r.code, 0, r.stdout);
      const said = Number(/^workers: (\d+) in generation/m.exec(r.stdout)?.[1]);
      assert.equal(said, 1);
      // the previous generation is gone once it has nothing in hand
      await waitFor(() => workerPids(d.child.pid!).length === 1, 20_000, `one worker, not ${workerPids(d.child.pid!).length}`);
    }
    assert.equal(reloads(d.stderr(), /event=reloaded [^\n]*workers=1 /g), 3, d.stderr());
  } finally {
    await stopDaemon(d);
  }
});

test('watch = true: an edit of the config reloads exactly once after the files are quiet, so does an editor\'s write-then-rename and a new rule file; a broken rule file is a failed reload that keeps the old rules', async () => {
  await withWorld(async ({ env, rules, config }, d) => {
    // an in-place edit in two writes (a half-written file first)
    appendFileSync(env.cfg, '\n# edited');
    await new Promise((r) => setTimeout(r, 300));
    appendFileSync(env.cfg, ' twice\n');
    await waitLog(d, /event=watch-reload path=\S+avfilter\.toml\n/, 15_000);
    await waitFor(() => reloads(d.stderr()) === 1, 15_000, 'first reload');
    await new Promise((r) => setTimeout(r, 3000));
    assert.equal(reloads(d.stderr()), 1, 'exactly one reload for one edit');
    // write-then-rename (daemonEnv.write renames a whole new file into place)
    config('watch = true\nrequest_timeout = 100');
    await waitFor(() => reloads(d.stderr()) === 2, 15_000, `second reload\n${d.stderr()}`);
    // a new rule file: the rule applies
    const mk = marker();
    writeFileSync(join(rules, 'marker.yar'), mk.rule);
    await waitFor(() => reloads(d.stderr()) === 3, 15_000, 'third reload');
    assert.match(await env.send(env.request(mk.message).line), /^550 .*Reload_Test_Marker/);
    // a broken rule file: reload-failed, the rules in force still answer
    writeFileSync(join(rules, 'broken.yar'), 'rule {\n');
    await waitLog(d, /level=error event=reload-failed signal=watch kind=all reason=.*broken\.yar/, 15_000);
    assert.match(await env.send(env.request(mk.message).line), /^550 .*Reload_Test_Marker/);
    // editor swap files and other names in a watched directory do not count
    writeFileSync(join(rules, '.marker.yar.swp'), 'x');
    writeFileSync(join(env.dir, 'avfilter.toml~'), 'x');
    await new Promise((r) => setTimeout(r, 3000));
    assert.equal(reloads(d.stderr(), /event=watch-reload/g), 4, d.stderr());
    renameSync(join(rules, 'broken.yar'), join(rules, 'broken.disabled'));
    await waitFor(() => reloads(d.stderr()) === 4, 15_000, 'reload after the fix');
  }, 'watch = true');
});

test('watch = false: edits do not reload', async () => {
  await withWorld(async ({ env }, d) => {
    appendFileSync(env.cfg, '\n# edited\n');
    await new Promise((r) => setTimeout(r, 3500));
    assert.equal(reloads(d.stderr()), 0);
    assert.doesNotMatch(d.stderr(), /watch-reload/);
  });
});

test('run as root, avfilter_sig gives the pipe to the daemon\'s group (mode 0620): a daemon running as courier writes its answer into it', { skip: process.getuid?.() !== 0 ? 'needs root to run the daemon as courier (CI runs as root)' : false }, async () => {
  const courier = lookupUser('courier');
  assert.ok(courier, 'user courier (courier-mta)');
  const env = daemonEnv('', 'avf-env-', { owner: courier });
  const work = join(env.dir, 'work');
  mkdirSync(work, { mode: 0o700 });
  chownSync(work, courier.uid, courier.gid);
  const d = await env.up();
  try {
    // the pipe as it is last seen before avfilter_sig removes it: it is made, then given its
    // group, then the daemon is asked to write into it (a look right after it appears can
    // catch it between the first two steps)
    let seen: { mode: number; uid: number; gid: number } | undefined;
    let watching: Promise<void> | undefined;
    let sigEnded = 0;
    const r = await runSig(['-f', env.cfg, 'reload', 'config'], {
      onSpawn: () => {
        watching = waitFor(() => existsSync(env.pipe), 10_000, 'pipe').then(async () => {
          // (avfilter_sig removes it before it ends; a pipe left behind stops the look 2 s later)
          while (sigEnded === 0 || Date.now() - sigEnded < 2000) {
            let st;
            try {
              st = lstatSync(env.pipe);
            } catch {
              return;
            }
            seen = { mode: st.mode & 0o777, uid: st.uid, gid: st.gid };
            await new Promise((res) => setTimeout(res, 2));
          }
        });
      },
    });
    sigEnded = Date.now();
    await watching;
    assert.equal(r.code, 0, `${r.stdout}\n${r.stderr}`);
    assert.match(r.stdout, /\nstatus: ok\n$/);
    assert.deepEqual(seen, { mode: 0o620, uid: 0, gid: courier.gid });
  } finally {
    await stopDaemon(d);
  }
});
