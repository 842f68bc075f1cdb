/**
 * Which files a request may name. Any client of the filter socket can send any paths, and the
 * worker reads the data file and appends records to the control files: without these checks a
 * client could have it read any file it can read and append "I/S" lines to any file that looks
 * like a control file.
 *
 * Owns: the path rules. A path must be normalised (no ".", "..", "//" or trailing "/"), inside
 * one of spool_dirs (Courier's /var/lib/courier/tmp by default; [] allows any path) — also
 * after resolving symlinks in its directory — and the final component is opened without
 * following a symlink (data-file.ts, control-io.ts). The same control file named twice in one
 * request is used once.
 * Inputs: a CourierRequest and the spool directories (already resolved). Outputs: the checked
 * request, or an AvError with origin "input" and code EPATH_*.
 */
import { realpathSync } from 'node:fs';
import { dirname, posix } from 'node:path';
import { AvError } from '../errors.js';
import type { CourierRequest } from '../courierfilter/request.js';

export interface CheckedRequest {
  readonly dataPath: string;
  /** Distinct control paths, in request order. */
  readonly controlPaths: readonly string[];
  /** How many control paths were dropped as repeats. */
  readonly repeated: number;
}

export async function checkRequestPaths(req: CourierRequest, spoolDirs: readonly string[]): Promise<CheckedRequest> {
  const all = [req.dataPath, ...req.controlPaths];
  for (const p of all) checkShape(p);
  const controlPaths = [...new Set(req.controlPaths)];
  if (controlPaths.includes(req.dataPath)) {
    throw new AvError('EPATH_SAME', 'input', 'the data file is also named as a control file');
  }
  if (spoolDirs.length > 0) {
    const dirs = [...new Set(all.map((p) => dirname(p)))];
    for (const d of dirs) {
      if (!inside(d, spoolDirs)) throw new AvError('EPATH_OUTSIDE', 'input', `${d} is not inside spool_dirs (${spoolDirs.join(', ')})`);
      let real: string;
      try {
        // synchronous: a local metadata lookup, cheaper than the thread pool's hand-over; the
        // native call (realpath(3)) costs a third of Node's own resolution, which lstats each
        // component from JavaScript (under load it was 1-2% of the worker's CPU per message)
        real = realpathSync.native(d);
      } catch (err) {
        throw new AvError('EPATH_MISSING', 'input', `${d}: ${(err as NodeJS.ErrnoException).code ?? 'cannot be resolved'}`, { cause: err });
      }
      if (!inside(real, spoolDirs)) throw new AvError('EPATH_OUTSIDE', 'input', `${d} resolves to ${real}, outside spool_dirs`);
    }
  }
  return { dataPath: req.dataPath, controlPaths, repeated: req.controlPaths.length - controlPaths.length };
}

function checkShape(p: string): void {
  if (!p.startsWith('/') || p.length < 2 || p.endsWith('/') || posix.normalize(p) !== p) {
    throw new AvError('EPATH_FORM', 'input', `path ${JSON.stringify(p)} is not a normalised absolute file path`);
  }
}

function inside(dir: string, roots: readonly string[]): boolean {
  return roots.some((r) => dir === r || dir.startsWith(r.endsWith('/') ? r : `${r}/`));
}
