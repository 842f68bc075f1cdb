/**
 * Runs one scanner process: no shell (argv as given), its own process group (spawned
 * detached), output collected up to a bound, and the whole group killed when the signal aborts
 * (a timeout, a shutdown), so that no scanner or child of it outlives its item.
 *
 * Owns: the child process from spawn until its stdio has closed.
 * Inputs: argv, an AbortSignal. Outputs: the Exit (code or signal, output text) or a failure;
 * never a rejection.
 * Fails with: { spawn: error } when the program cannot be started (ENOENT, EACCES),
 * { aborted: true } when the signal fired (the group is then killed and reaped),
 * { overflow: true } when the output passed MAX_OUTPUT_BYTES (the group is killed).
 */
import { killGroup } from '../../process-group.js';
import { spawn } from 'node:child_process';
import type { Exit } from './output.js';

/** Output kept per stream; a scanner reporting one item writes a few lines. */
export const MAX_OUTPUT_BYTES = 1024 * 1024;

export type RunResult =
  | { readonly kind: 'exit'; readonly exit: Exit }
  | { readonly kind: 'spawn-error'; readonly error: NodeJS.ErrnoException }
  | { readonly kind: 'aborted' }
  | { readonly kind: 'overflow' };

export function run(argv: readonly string[], signal: AbortSignal): Promise<RunResult> {
  if (signal.aborted) return Promise.resolve({ kind: 'aborted' });
  return new Promise((resolve) => {
    const child = spawn(argv[0]!, argv.slice(1), {
      detached: true, // a process group of its own: kill(-pid) reaches its children too
      stdio: ['ignore', 'pipe', 'pipe'],
      shell: false,
      windowsHide: true,
    });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    let outBytes = 0;
    let errBytes = 0;
    let stopped: RunResult | undefined;
    let settled = false;
    const stop = (why: RunResult): void => {
      stopped ??= why;
      killGroup(child.pid);
    };
    const onAbort = (): void => stop({ kind: 'aborted' });
    signal.addEventListener('abort', onAbort, { once: true });
    const collect = (into: Buffer[], add: (n: number) => number) => (d: Buffer): void => {
      if (add(d.length) > MAX_OUTPUT_BYTES) return stop({ kind: 'overflow' });
      into.push(d);
    };
    child.stdout.on('data', collect(out, (n) => (outBytes += n)));
    child.stderr.on('data', collect(err, (n) => (errBytes += n)));
    const finish = (r: RunResult): void => {
      if (settled) return;
      settled = true;
      signal.removeEventListener('abort', onAbort);
      resolve(r);
    };
    child.once('error', (e: NodeJS.ErrnoException) => {
      // spawn failed (no 'close' follows when there was no process)
      if (child.pid === undefined) finish({ kind: 'spawn-error', error: e });
    });
    // 'close': the process exited and its stdio is closed (a child that kept them open is in
    // the group a timeout kills)
    child.once('close', (code: number | null, sig: NodeJS.Signals | null) => {
      if (stopped !== undefined) return finish(stopped);
      finish({
        kind: 'exit',
        exit: { code, signal: sig, stdout: Buffer.concat(out).toString('utf8'), stderr: Buffer.concat(err).toString('utf8') },
      });
    });
  });
}
