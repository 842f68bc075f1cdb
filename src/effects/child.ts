/**
 * Runs one helper program of an effect (the notice's sendmail, action.handler): no shell (argv
 * as given), a process group of its own (spawned detached) that a timeout or the request's
 * abort kills whole, so no child of it outlives its message; its stdin is the given bytes or
 * nothing; what it writes is kept, the last MAX_OUTPUT_BYTES, for the log.
 *
 * Owns: the child from spawn until it has exited. A program that exits while a child of its
 * own keeps the output pipes open (a daemon it started) is done at its exit: the pipes are
 * closed on our side after OUTPUT_GRACE_MS, and its children are left alone (they were meant).
 * Inputs: argv, env, stdin bytes, a timeout in ms, an AbortSignal. Outputs: a ProgramResult;
 * never a rejection.
 */
import { killGroup } from '../process-group.js';
import { spawn, type ChildProcess } from 'node:child_process';

/** Output kept for the log line: the end of it, where programs say why they failed. */
export const MAX_OUTPUT_BYTES = 2048;
/** After the program's exit, how long its output may still arrive. */
const OUTPUT_GRACE_MS = 200;

export interface ProgramRun {
  readonly argv: readonly string[];
  readonly env: NodeJS.ProcessEnv;
  /** stdin; undefined: /dev/null. */
  readonly input?: Buffer | undefined;
  readonly timeoutMs: number;
  readonly signal?: AbortSignal | undefined;
  readonly cwd?: string | undefined;
}

export type ProgramResult =
  | { readonly kind: 'exit'; readonly code: number | null; readonly signal: NodeJS.Signals | null; readonly output: string; readonly ms: number }
  | { readonly kind: 'spawn-error'; readonly error: NodeJS.ErrnoException; readonly ms: number }
  /** the timeout passed (timeout) or the signal fired (aborted): the group was killed */
  | { readonly kind: 'timeout' | 'aborted'; readonly output: string; readonly ms: number };

export function runProgram(p: ProgramRun): Promise<ProgramResult> {
  const t0 = Date.now();
  if (p.signal?.aborted) return Promise.resolve({ kind: 'aborted', output: '', ms: 0 });
  return new Promise((resolve) => {
    let child: ChildProcess;
    try {
      child = spawn(p.argv[0]!, p.argv.slice(1), {
        detached: true, // its own process group: kill(-pid) reaches what it started
        stdio: [p.input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
        shell: false,
        env: p.env,
        cwd: p.cwd,
      });
    } catch (err) {
      // spawn throws synchronously for argv it cannot pass (a NUL byte in an argument)
      resolve({ kind: 'spawn-error', error: err as NodeJS.ErrnoException, ms: 0 });
      return;
    }
    let tail = Buffer.alloc(0);
    const keep = (d: Buffer): void => {
      tail = Buffer.concat([tail, d]);
      if (tail.length > MAX_OUTPUT_BYTES) tail = tail.subarray(tail.length - MAX_OUTPUT_BYTES);
    };
    child.stdout?.on('data', keep);
    child.stderr?.on('data', keep);
    let stopped: 'timeout' | 'aborted' | undefined;
    let exit: { code: number | null; signal: NodeJS.Signals | null } | undefined;
    let settled = false;
    const stop = (why: 'timeout' | 'aborted'): void => {
      stopped ??= why;
      killGroup(child.pid);
    };
    const timer = setTimeout(() => stop('timeout'), p.timeoutMs);
    const onAbort = (): void => stop('aborted');
    p.signal?.addEventListener('abort', onAbort, { once: true });
    let grace: NodeJS.Timeout | undefined;
    const finish = (r: ProgramResult): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      clearTimeout(grace);
      p.signal?.removeEventListener('abort', onAbort);
      resolve(r);
    };
    const done = (): void => {
      const ms = Date.now() - t0;
      const output = tail.toString('utf8');
      if (stopped !== undefined) finish({ kind: stopped, output, ms });
      else if (exit !== undefined) finish({ kind: 'exit', code: exit.code, signal: exit.signal, output, ms });
    };
    child.once('error', (e: NodeJS.ErrnoException) => {
      if (child.pid === undefined) finish({ kind: 'spawn-error', error: e, ms: Date.now() - t0 });
    });
    child.once('exit', (code, sig) => {
      exit = { code, signal: sig };
      clearTimeout(timer);
      grace = setTimeout(() => {
        child.stdout?.destroy();
        child.stderr?.destroy();
        done();
      }, OUTPUT_GRACE_MS);
    });
    child.once('close', done);
    if (child.stdin) {
      // A program that exits without reading its input (a sendmail refusing its arguments)
      // makes the write fail with EPIPE: its exit status says what happened, not this.
      child.stdin.on('error', () => {});
      child.stdin.end(p.input);
    }
  });
}
