/**
 * Ending a program avfilter started in a process group of its own (spawned detached): a
 * scanner, a handler, a sendmail. Killing the group reaches what the program started too, so
 * nothing of it outlives the item or the message it was run for.
 * Fails with nothing: a group that is gone already is what was wanted.
 */
export function killGroup(pid: number | undefined): void {
  if (pid === undefined) return;
  try {
    process.kill(-pid, 'SIGKILL');
  } catch {
    // the group is gone already
  }
}
