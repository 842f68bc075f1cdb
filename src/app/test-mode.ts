/**
 * `avfilter -t FILE...`: scan mail files and report like clamscan (contract.md).
 *
 *   PATH: OK | PATH: NAME FOUND (one per distinct name) | PATH: REASON ERROR
 * Exit status: 1 if any file was infected, else 2 if any error, else 0.
 * `-` reads one message from stdin (spooled to a private temp file so every engine can read it);
 * a directory scans its files (a Maildir's cur/ and new/). With -v a FOUND line also says where.
 * Besides stdout (exactly the lines above): `progress` (bin/ gives one when stderr is a terminal)
 * hears files done / total and MB before each file, and `summary` one line at the end (files,
 * OK, FOUND, ERROR, MB/s), both for stderr.
 */
import { createWriteStream, readdirSync, statSync } from 'node:fs';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import type { Finding } from '../policy/verdict.js';
import { ms, scanDepsOf, type Runtime } from './runtime.js';
import { scanMessage } from '../scan/scan-message.js';

export interface TestModeOptions {
  readonly verbose: boolean;
  readonly out: (line: string) => void;
  readonly progress?: ((line: string) => void) | undefined;
  readonly summary?: ((line: string) => void) | undefined;
}

const MB = 1e6;

export async function runTestMode(args: readonly string[], rt: Runtime, opts: TestModeOptions): Promise<number> {
  const started = Date.now();
  const count = { ok: 0, found: 0, error: 0, bytes: 0 };
  const targets = expand(args);
  let n = 0;
  for (const t of targets) {
    opts.progress?.(`[${n}/${targets.length} files, ${(count.bytes / MB).toFixed(1)} MB] ${t.label}`);
    n++;
    if (t.error) {
      opts.out(`${t.label}: ${t.error} ERROR`);
      count.error++;
      continue;
    }
    const size = { bytes: 0 };
    const lines = await scanOne(t.path!, t.label, rt, opts.verbose, size);
    for (const l of lines.out) opts.out(l);
    count.bytes += size.bytes;
    if (lines.infected) count.found++;
    else if (lines.error) count.error++;
    else count.ok++;
  }
  if (opts.summary) opts.summary(summaryLine(targets.length, count, Date.now() - started));
  return count.found > 0 ? 1 : count.error > 0 ? 2 : 0;
}

/** `avfilter: 3 files: 1 OK, 1 FOUND, 1 ERROR; 2.5 MB in 0.40 s (6.2 MB/s)` */
export function summaryLine(files: number, c: { ok: number; found: number; error: number; bytes: number }, ms: number): string {
  const s = Math.max(ms, 1) / 1000;
  return `avfilter: ${files} file${files === 1 ? '' : 's'}: ${c.ok} OK, ${c.found} FOUND, ${c.error} ERROR; ` +
    `${(c.bytes / MB).toFixed(1)} MB in ${s.toFixed(2)} s (${(c.bytes / MB / s).toFixed(1)} MB/s)`;
}

interface Target { label: string; path?: string; error?: string }

function expand(args: readonly string[]): Target[] {
  const out: Target[] = [];
  for (const a of args) {
    if (a === '-') {
      out.push({ label: 'stdin', path: '-' });
      continue;
    }
    let st;
    try {
      st = statSync(a);
    } catch (err) {
      out.push({ label: a, error: reasonOf((err as NodeJS.ErrnoException).code) });
      continue;
    }
    if (st.isDirectory()) out.push(...dirFiles(a));
    else out.push({ label: a, path: a });
  }
  return out;
}

/** A Maildir's cur/ and new/, else the regular files directly in the directory, sorted. */
function dirFiles(dir: string): Target[] {
  const subdirs = ['cur', 'new'].map((s) => join(dir, s)).filter((d) => isDir(d));
  const dirs = subdirs.length > 0 ? subdirs : [dir];
  const out: Target[] = [];
  for (const d of dirs) {
    let names: string[];
    try {
      names = readdirSync(d).sort();
    } catch (err) {
      out.push({ label: d, error: reasonOf((err as NodeJS.ErrnoException).code) });
      continue;
    }
    for (const name of names) {
      const p = join(d, name);
      try {
        if (statSync(p).isFile()) out.push({ label: p, path: p });
      } catch {
        // Vanished between readdir and stat (a Maildir being delivered to): not ours to report.
      }
    }
  }
  return out;
}

function isDir(p: string): boolean {
  try {
    return statSync(p).isDirectory();
  } catch {
    return false;
  }
}

/** `size.bytes`: set to the size of what was scanned (for -t -, the message read from stdin). */
async function scanOne(path: string, label: string, rt: Runtime, verbose: boolean, size: { bytes: number }): Promise<{ out: string[]; infected: boolean; error: boolean }> {
  let spool: string | undefined;
  try {
    if (path === '-') {
      spool = await mkdtemp(join(rt.config.tmpdir, 'stdin-'));
      path = join(spool, 'message');
      await pipeline(process.stdin, createWriteStream(path, { mode: 0o600 }));
    }
    size.bytes = await stat(path).then((st) => st.size, () => 0);
    const signal = AbortSignal.timeout(ms(rt.config.request_timeout));
    const { verdict } = await scanMessage(path, scanDepsOf(rt), signal);
    switch (verdict.kind) {
      case 'clean':
        return { out: [`${label}: OK`], infected: false, error: false };
      case 'infected':
        return {
          out: verdict.names.map((name) => `${label}: ${name} FOUND${verbose ? ` (${where(verdict.findings.filter((f) => f.name === name))})` : ''}`),
          infected: true, error: false,
        };
      case 'encrypted':
        // reported as clamscan --alert-encrypted does: a find, whatever action.encrypted says
        return { out: [`${label}: ${verdict.name} FOUND${verbose ? ` (${oneLine(verdict.path)}, cannot be scanned)` : ''}`], infected: true, error: false };
      case 'banned':
        return { out: [`${label}: Banned.Attachment FOUND${verbose ? ` (${oneLine(verdict.path)}, ${oneLine(verdict.rule)})` : ''}`], infected: true, error: false };
      case 'error':
      case 'limit':
      case 'damaged':
        return { out: [`${label}: ${oneLine(verdict.reason)} ERROR`], infected: false, error: true };
      case 'busy':
        return { out: [`${label}: ${oneLine(verdict.reason)} ERROR`], infected: false, error: true };
    }
    return { out: [`${label}: unknown verdict ERROR`], infected: false, error: true };
  } catch (err) {
    return { out: [`${label}: ${oneLine(err instanceof Error ? err.message : String(err))} ERROR`], infected: false, error: true };
  } finally {
    if (spool) await rm(spool, { recursive: true, force: true });
  }
}

function where(fs: readonly Finding[]): string {
  return fs.map((f) => {
    if (f.container !== undefined) return `member ${oneLine(f.itemId)} of a ${f.container}, ${f.engine}`;
    const place = f.itemId === 'raw' ? 'whole message' : `part ${f.itemId}`;
    const name = f.filename ? ` "${oneLine(f.filename)}"` : '';
    const bits = [`${place}${name}`, f.encoding, f.reading && f.reading !== 'raw' ? `${f.reading} reading` : undefined, f.engine];
    return bits.filter(Boolean).join(', ');
  }).join('; ');
}

function reasonOf(code: string | undefined): string {
  switch (code) {
    case 'ENOENT': return 'No such file or directory';
    case 'EACCES': return 'Permission denied';
    case 'ENOTDIR': return 'Not a directory';
    default: return code ?? 'Cannot read';
  }
}

function oneLine(s: string): string {
  return s.replace(/[\x00-\x1f\x7f]+/g, ' ').trim();
}
