/**
 * What the container stage's CLI suites share: a private setup for `avfilter -f CFG -t FILES...` with the
 * embedded engine (a 0700 tmpdir, a rules directory holding the shipped EICAR rule plus a
 * generated MD5 rule for ClamAV's clam.exe), reading `-t` output per file, and a run that
 * measures the child's wall time and peak memory (for bombs).
 *
 * Owns: the temp directories it makes (removed by cleanup()). Inputs: extra config text, files.
 * Outputs: parsed lines and measurements. Fails with: an Error when clamav-testfiles is
 * missing (CI installs it; the suites must fail, not skip).
 */
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { copyFileSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DEFAULT_RULES_DIR } from '../../src/engines/yara/index.js';
import { AVFILTER } from './avfilter-proc.js';
import { CLAM_EXE } from './clamd.js';

/** The name the shipped rule reports for EICAR (rules/eicar.yar, meta name). */
export const EICAR_NAME = 'Eicar-Test-Signature';
/** The generated rule's identifier; without a meta name the engine reports "YARA.<identifier>". */
export const CLAM_RULE = 'ClamAV_Test_File_md5';
export const CLAM_NAME = `YARA.${CLAM_RULE}`;

export interface CliSetup {
  readonly dir: string;
  /** The config file: tmpdir plus one yara engine on `rules`, plus the caller's extra text. */
  readonly config: string;
  /** avfilter's tmpdir: must be empty after every run. */
  readonly work: string;
  /** Where the caller writes the files to scan. */
  readonly files: string;
  /** TMPDIR given to avfilter: also must stay empty (a library that writes to os.tmpdir()). */
  readonly childTmp: string;
  cleanup(): void;
}

/** A fresh setup. `extra` is appended to the config (e.g. an [action] table). */
export function cliSetup(extra = ''): CliSetup {
  const dir = mkdtempSync(join(tmpdir(), 'avf-unpack-'));
  const work = join(dir, 'work');
  mkdirSync(work, { mode: 0o700 });
  const rules = join(dir, 'rules');
  mkdirSync(rules);
  copyFileSync(join(DEFAULT_RULES_DIR, 'eicar.yar'), join(rules, 'eicar.yar'));
  const md5 = createHash('md5').update(readFileSync(CLAM_EXE)).digest('hex');
  writeFileSync(join(rules, 'clam-exe.yar'), `import "hash"\nrule ${CLAM_RULE} { condition: hash.md5(0, filesize) == "${md5}" }\n`);
  const files = join(dir, 'files');
  mkdirSync(files);
  const childTmp = join(dir, 'child-tmp');
  mkdirSync(childTmp);
  const config = join(dir, 'avfilter.toml');
  writeFileSync(config, `tmpdir = "${work}"\n\n[[engine]]\ntype = "yara"\nrules = "${rules}"\n\n${extra}`);
  return { dir, config, work, files, childTmp, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

export type Verdict = 'infected' | 'clean' | 'error' | 'missing';

export interface FileReport {
  readonly verdict: Verdict;
  /** Every line for the file (one per name when infected). */
  readonly lines: string[];
  /** The names FOUND. */
  readonly names: string[];
}

/** The lines `-t` printed for `path`, and what they say. */
export function reportFor(stdout: string, path: string): FileReport {
  const lines = stdout.split('\n').filter((l) => l.startsWith(path + ': '));
  const names: string[] = [];
  let verdict: Verdict = lines.length === 0 ? 'missing' : 'clean';
  for (const l of lines) {
    const rest = l.slice(path.length + 2);
    const found = /^(\S+) FOUND(?: \((.*)\))?$/.exec(rest);
    if (found) {
      names.push(found[1]!);
      verdict = 'infected';
    } else if (rest !== 'OK' && verdict !== 'infected') verdict = 'error';
  }
  return { verdict, lines, names };
}

/** Files left under `dir` (recursively): temp files a run forgot. */
export function leftovers(dir: string): string[] {
  return readdirSync(dir, { recursive: true }).map(String);
}

export interface MeasuredRun {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  ms: number;
  /** Peak resident memory of the child in bytes: the larger of /usr/bin/time's and the polled sum over its process tree. */
  peakRssBytes: number;
}

const POLL_MS = 25;

function treeRssKb(root: number): number {
  // children by parent from /proc/*/stat; the tree's RSS summed from /proc/PID/status
  const parent = new Map<number, number>();
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const stat = readFileSync(`/proc/${d}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      parent.set(Number(d), ppid);
    } catch {
      // gone
    }
  }
  let kb = 0;
  for (const pid of parent.keys()) {
    let p: number | undefined = pid;
    while (p !== undefined && p !== root && p > 1) p = parent.get(p);
    if (p !== root) continue;
    try {
      const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
      kb += m ? Number(m[1]) : 0;
    } catch {
      // gone
    }
  }
  return kb;
}

/**
 * Runs avfilter under /usr/bin/time -v (its "Maximum resident set size" covers every thread of
 * the node process, and short spikes a poll would miss) while polling the process tree's RSS
 * (child processes, if the code under test starts any). Killed after `timeoutMs`.
 */
export function runMeasured(args: readonly string[], opts: { timeoutMs: number; env?: NodeJS.ProcessEnv }): Promise<MeasuredRun> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const child = spawn('/usr/bin/time', ['-v', process.execPath, AVFILTER, ...args], { env: { ...process.env, ...opts.env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => { stdout += d; });
    child.stderr.setEncoding('utf8').on('data', (d: string) => { stderr += d; });
    let polledKb = 0;
    const poll = setInterval(() => {
      if (child.pid !== undefined) polledKb = Math.max(polledKb, treeRssKb(child.pid));
    }, POLL_MS);
    const killer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs);
    child.on('error', (err) => {
      clearInterval(poll);
      clearTimeout(killer);
      reject(err);
    });
    child.on('close', (code, signal) => {
      clearInterval(poll);
      clearTimeout(killer);
      const ms = performance.now() - t0;
      const timeKb = Number(/Maximum resident set size \(kbytes\): (\d+)/.exec(stderr)?.[1] ?? 0);
      // /usr/bin/time reports the command's status as its own ("Command exited with non-zero status N")
      const exited = /Command exited with non-zero status (\d+)/.exec(stderr);
      const killedBy = /Command terminated by signal (\d+)/.exec(stderr);
      resolve({
        code: killedBy ? null : exited ? Number(exited[1]) : code,
        signal: signal ?? (killedBy ? (`SIG${killedBy[1]}` as NodeJS.Signals) : null),
        stdout, stderr, ms, peakRssBytes: Math.max(timeKb, polledKb) * 1024,
      });
    });
  });
}
