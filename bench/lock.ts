/**
 * Holding a lock file around the part of the benchmark that starts Courier, so the Courier
 * end-to-end tests of other people on a shared machine (which run under `flock FILE`) never
 * overlap with it. The lock is held by a `flock FILE cat` child: acquired when it prints, released
 * when its stdin closes (or the benchmark dies, since the pipe closes then too).
 *
 * Fails with an Error when flock is missing or exits before taking the lock.
 */
import { spawn } from 'node:child_process';

export async function withFileLock<T>(file: string | undefined, log: (s: string) => void, fn: () => Promise<T>): Promise<T> {
  if (!file) return fn();
  log(`waiting for the lock ${file}`);
  const child = spawn('flock', ['-x', file, 'sh', '-c', 'echo locked; exec cat >/dev/null'], { stdio: ['pipe', 'pipe', 'inherit'] });
  await new Promise<void>((resolve, reject) => {
    child.once('error', (e) => reject(new Error(`flock ${file}: ${e.message}`)));
    child.once('exit', (code) => reject(new Error(`flock ${file} exited (${code}) before taking the lock`)));
    child.stdout!.on('data', (d: Buffer) => d.toString().includes('locked') && resolve());
  });
  child.removeAllListeners('exit');
  log(`holding the lock ${file}`);
  try {
    return await fn();
  } finally {
    child.stdin!.end();
    await new Promise((r) => child.once('exit', r));
  }
}
