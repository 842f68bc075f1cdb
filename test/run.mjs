#!/usr/bin/env node
// Runs every compiled test file under dist/test with node's test runner.
// Under CI=true the suites that need clamd or Courier fail (never skip) when those are missing.
// On SIGINT/SIGTERM/SIGHUP the runner passes the signal on to its test processes; this waits
// until they have finished cleaning up (the Courier tests give the host back its Courier,
// /etc/courier and /dev/log), ends what the run left behind (a clamd of a test process that died
// of the signal), removes the temp directory and ends with that signal.
import { spawn } from 'node:child_process';
import { chmodSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

// How long test processes may take to clean up after a signal (stopping Courier's filters can take 15 s each).
const CLEANUP_TIMEOUT_MS = 120_000;

function collect(dir) {
  const out = [];
  for (const name of readdirSync(dir).sort()) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) {
      if (name !== 'helpers') out.push(...collect(p));
    } else if (name.endsWith('.test.js')) out.push(p);
  }
  return out;
}

/**
 * Live processes other than this one whose environment has TMPDIR=dir (everything the run
 * started has, unless it set its own environment); `file` is set for the test files' processes.
 */
function runProcesses(dir) {
  const mark = `\0TMPDIR=${dir}\0`;
  const out = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name) || Number(name) === process.pid) continue;
    try {
      if (/^\d+ \(.*\) Z /.test(readFileSync(`/proc/${name}/stat`, 'latin1'))) continue;
      if (!`\0${readFileSync(`/proc/${name}/environ`, 'latin1')}`.includes(mark)) continue;
      const file = readFileSync(`/proc/${name}/cmdline`, 'latin1').split('\0').some((a) => a.endsWith('.test.js'));
      out.push({ pid: Number(name), file });
    } catch {
      // gone, or not ours to read
    }
  }
  return out;
}

/** After a signal: waits for the test files' processes to clean up, then ends what is left. */
async function afterSignal(sig, dir) {
  const deadline = Date.now() + CLEANUP_TIMEOUT_MS;
  let said = false;
  for (let left = runProcesses(dir).filter((p) => p.file); left.length > 0 && Date.now() < deadline; left = runProcesses(dir).filter((p) => p.file)) {
    if (!said) console.error(`${sig}: waiting for test processes ${left.map((p) => p.pid).join(' ')} to clean up`);
    said = true;
    await sleep(200);
  }
  for (const [kill, wait] of [['SIGTERM', 5_000], ['SIGKILL', 1_000]]) {
    const left = runProcesses(dir);
    if (left.length === 0) return;
    console.error(`${sig}: ending processes the tests left: ${left.map((p) => p.pid).join(' ')}`);
    for (const p of left) {
      try {
        process.kill(p.pid, kill);
      } catch {
        // gone meanwhile
      }
    }
    const until = Date.now() + wait;
    while (runProcesses(dir).length > 0 && Date.now() < until) await sleep(100);
  }
}

const filter = process.argv.slice(2);
let files = collect('dist/test');
if (filter.length) files = files.filter((f) => filter.some((s) => f.includes(s)));
if (files.length === 0) {
  console.error('no test files found under dist/test (did the build run?)');
  process.exit(1);
}
// Every temp file of the tests (and of the avfilter processes they start) goes under one
// directory that is removed at the end, whatever the tests left. Like /tmp it is 1777: some
// tests run pieces as other users (Courier's, nobody).
const root = mkdtempSync(join(tmpdir(), 'avfilter-tests-'));
chmodSync(root, 0o1777);
// With no [[engine]], avfilter uses the host's clamd when one answers at the socket its
// clamd.conf names: point that at a socket nobody serves, so the tests' daemons never scan with
// (or depend on) a clamd of the machine they run on. Tests of that choice set their own.
const clamdConf = join(root, 'clamd.conf');
writeFileSync(clamdConf, `# no clamd listens here\nLocalSocket ${join(root, 'no-clamd.ctl')}\n`, { mode: 0o644 });
let status = 1;
let signal;
const SIGNALS = ['SIGINT', 'SIGTERM', 'SIGHUP'];
try {
  const child = spawn(process.execPath, ['--test', '--test-concurrency=2', ...files], {
    stdio: 'inherit',
    env: { ...process.env, TMPDIR: root, AVFILTER_CLAMD_CONF: clamdConf },
  });
  const onSignal = (sig) => {
    signal ??= sig;
    child.kill(sig);
  };
  for (const sig of SIGNALS) process.on(sig, onSignal);
  status = await new Promise((resolve) => {
    child.on('error', (err) => {
      console.error(`cannot run the tests: ${err.message}`);
      resolve(1);
    });
    child.on('exit', (code) => resolve(code ?? 1));
  });
  if (signal) await afterSignal(signal, root);
} finally {
  rmSync(root, { recursive: true, force: true });
}
if (signal) {
  process.removeAllListeners(signal);
  process.kill(process.pid, signal);
}
process.exit(status);
