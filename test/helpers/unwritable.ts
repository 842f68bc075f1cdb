/**
 * A data file nobody may write, for the tests of effects that must leave it as it was when
 * they cannot write: immutable (chattr +i) when the tests run as root, whom a mode does not
 * stop; read-only by its mode otherwise.
 */
import { execFileSync } from 'node:child_process';
import { chmodSync } from 'node:fs';

/** Makes `p` unwritable; returns the undo. */
export function unwritable(p: string): () => void {
  if (process.getuid?.() === 0) {
    execFileSync('chattr', ['+i', p]);
    return () => execFileSync('chattr', ['-i', p]);
  }
  chmodSync(p, 0o444);
  return () => chmodSync(p, 0o644);
}
