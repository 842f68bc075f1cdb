/**
 * The pid file avfilter_sig reads. Written atomically (a new file, then rename) so a reader never
 * sees half a number, and without following symlinks: the temporary file is created with
 * O_EXCL|O_NOFOLLOW (a link planted at its name is refused, never written through) and rename()
 * replaces a link at the final name instead of writing to its target. Removed on exit only if
 * it still names this process.
 */
import { closeSync, constants, openSync, readFileSync, renameSync, unlinkSync, writeSync } from 'node:fs';

const { O_WRONLY, O_CREAT, O_EXCL, O_NOFOLLOW } = constants;

export function writePidFile(path: string, pid: number = process.pid): void {
  const tmp = `${path}.${pid}.tmp`;
  try {
    unlinkSync(tmp); // a leftover (or a planted link): unlink removes the name, not its target
  } catch {
    // not there
  }
  const fd = openSync(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, 0o644);
  try {
    writeSync(fd, `${pid}\n`);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, path);
}

export function removePidFile(path: string, pid: number = process.pid): void {
  try {
    if (readFileSync(path, 'utf8').trim() === String(pid)) unlinkSync(path);
  } catch {
    // Already gone or unreadable: nothing of ours to remove.
  }
}
