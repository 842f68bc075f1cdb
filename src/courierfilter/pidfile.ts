/**
 * The pid file avfilter_sig reads. Written atomically (temp file + rename) so a reader never sees
 * half a number; removed on exit only if it still names this process.
 */
import { readFileSync, renameSync, unlinkSync, writeFileSync } from 'node:fs';

export function writePidFile(path: string, pid: number = process.pid): void {
  const tmp = `${path}.${pid}.tmp`;
  writeFileSync(tmp, `${pid}\n`, { mode: 0o644 });
  renameSync(tmp, path);
}

export function removePidFile(path: string, pid: number = process.pid): void {
  try {
    if (readFileSync(path, 'utf8').trim() === String(pid)) unlinkSync(path);
  } catch {
    // Already gone or unreadable: nothing of ours to remove.
  }
}
