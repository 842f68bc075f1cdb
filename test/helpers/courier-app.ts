/**
 * The programs the E2E tests install as Courier global filters, placed where the `courier` user
 * (which courierfilter runs filters as) can read and execute them.
 *
 * probeFilterProgram(): a copy of test/helpers/probe-filter.mjs in the harness's runtime dir.
 * avfilterProgram(): dist/bin/avfilter.js of the checkout, used in place when courier can reach
 * it, else from a copy of dist/, node_modules/, rules/ and package.json in the runtime dir.
 * Both must be started through their own path (no wrapper): the filter's name is the basename
 * of the path courierfilter runs, /etc/courier/filters/active/NAME.
 *
 * Fails with HarnessError E2E_MISSING (not built) or E2E_ACCESS.
 */
import fs from 'node:fs';
import path from 'node:path';
import { HarnessError, repoRoot, type CourierHarness } from './courier.js';
import { courierCan, run } from './courier-proc.js';

const COPY_TIMEOUT_MS = 60_000;

export function probeFilterProgram(h: CourierHarness): string {
  const src = path.join(repoRoot(), 'test', 'helpers', 'probe-filter.mjs');
  const dst = path.join(h.runtimeDir, 'probe-filter.mjs');
  fs.copyFileSync(src, dst);
  fs.chmodSync(dst, 0o755);
  return dst;
}

async function reachable(root: string, program: string): Promise<boolean> {
  for (const p of [path.join(root, 'package.json'), program]) if (!(await courierCan('-r', p))) return false;
  for (const d of ['node_modules', 'dist', 'rules']) {
    const p = path.join(root, d);
    if (fs.existsSync(p) && !(await courierCan('-x', p))) return false;
  }
  return true;
}

/** Path of an executable avfilter.js the courier user can run (see the module header). */
export async function avfilterProgram(h: CourierHarness, checkout?: string): Promise<string> {
  const root = checkout ?? repoRoot();
  const program = path.join(root, 'dist', 'bin', 'avfilter.js');
  if (!fs.existsSync(program)) {
    throw new HarnessError('E2E_MISSING', `${program} does not exist: build first (npx tsc -p tsconfig.json)`);
  }
  if (await reachable(root, program)) {
    // tsc writes 0644; `npm run build` makes it 0755 — the same here, courierfilter execs it
    if ((fs.statSync(program).mode & 0o111) !== 0o111) fs.chmodSync(program, 0o755);
    return program;
  }
  const app = path.join(h.runtimeDir, checkout === undefined ? 'app' : `app-${path.basename(root)}`);
  fs.rmSync(app, { recursive: true, force: true });
  fs.mkdirSync(app, { mode: 0o755 });
  for (const entry of ['dist', 'node_modules', 'rules', 'package.json']) {
    const src = path.join(root, entry);
    if (fs.existsSync(src)) fs.cpSync(src, path.join(app, entry), { recursive: true, dereference: true });
  }
  await run('chmod', ['-R', 'a+rX', app], COPY_TIMEOUT_MS);
  const copied = path.join(app, 'dist', 'bin', 'avfilter.js');
  fs.chmodSync(copied, 0o755);
  if (!(await courierCan('-x', copied))) throw new HarnessError('E2E_ACCESS', `the courier user cannot execute ${copied}`);
  return copied;
}

/** The lines of avfilter.toml that put a filter's own files (pid file, pipe, tmpdir, quarantine) in `dir`. */
export function avfilterFileKeys(dir: string): string[] {
  const q = (s: string): string => JSON.stringify(s); // a TOML basic string for plain paths
  return [`pid_file = ${q(`${dir}/avfilter.pid`)}`, `pipe = ${q(`${dir}/avfilter_sig.pipe`)}`, `tmpdir = ${q(`${dir}/tmp`)}`, `quarantine_dir = ${q(`${dir}/quarantine`)}`];
}
