#!/usr/bin/env node
// Runs every compiled test file under dist/test with node's test runner.
// Under CI=true the suites that need clamd or Courier fail (never skip) when those are missing.
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

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
try {
  const r = spawnSync(process.execPath, ['--test', '--test-concurrency=2', ...files], {
    stdio: 'inherit',
    env: { ...process.env, TMPDIR: root, AVFILTER_CLAMD_CONF: clamdConf },
  });
  status = r.status ?? 1;
} finally {
  rmSync(root, { recursive: true, force: true });
}
process.exit(status);
