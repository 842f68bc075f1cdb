/** Waits until a process has ended (gone, or a zombie nobody reaps), else fails naming it. */
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';

export async function waitGone(pid: number, what: string, timeoutMs = 5000): Promise<void> {
  assert.ok(Number.isInteger(pid) && pid > 1, `pid ${pid}`);
  for (const end = Date.now() + timeoutMs; Date.now() < end; await new Promise((r) => setTimeout(r, 100))) {
    if (!existsSync(`/proc/${pid}`)) return;
    try {
      if (/^\d+ \(.*\) Z /.test(readFileSync(`/proc/${pid}/stat`, 'latin1'))) return;
    } catch {
      return; // gone between the two reads
    }
  }
  assert.fail(`process ${pid} outlived ${what}`);
}
