/**
 * Runs the built avfilter_sig (dist/bin/avfilter_sig.js) as a child process, without blocking
 * the test's event loop (a stream of requests runs meanwhile).
 */
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

export const AVFILTER_SIG = fileURLToPath(new URL('../../bin/avfilter_sig.js', import.meta.url));

export interface SigRun {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** avfilter_sig ARGS; `onSpawn` gets the child (to signal it). */
export function runSig(args: string[], opts: { env?: NodeJS.ProcessEnv; onSpawn?: (pid: number) => void; timeoutMs?: number } = {}): Promise<SigRun> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [AVFILTER_SIG, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...opts.env } });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => { stdout += d.toString(); });
    child.stderr.on('data', (d: Buffer) => { stderr += d.toString(); });
    const t = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 120_000);
    child.on('error', reject);
    child.on('spawn', () => opts.onSpawn?.(child.pid!));
    child.on('close', (code, signal) => {
      clearTimeout(t);
      resolve({ code, signal, stdout, stderr });
    });
  });
}
