/**
 * The data file of a request, opened once and checked on the open descriptor.
 *
 * Owns: the descriptor's life. Opened O_NONBLOCK (a FIFO planted at the path cannot block a
 * thread), O_NOFOLLOW (a symlink as the last component is refused) and O_NOCTTY, then fstat on
 * the descriptor must say "regular file": a check on the path followed by a second open can be
 * raced (the path flipped to a FIFO in between left thread-pool threads stuck on it for good).
 * Everything that reads the message afterwards opens /proc/self/fd/N, which reaches the very
 * inode that was checked, whatever happens to the path.
 * Inputs: an absolute path. Outputs: a DataFile. Fails with AvError (origin "input"):
 * EDATA_MISSING, EDATA_ACCESS, EDATA_SYMLINK, EDATA_NOT_FILE, EDATA_IO.
 */
import { constants, existsSync } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import { AvError } from '../errors.js';

export interface DataFile {
  /** The path to read the message by: /proc/self/fd/N (or the path itself without /proc). */
  readonly readPath: string;
  readonly size: number;
  close(): Promise<void>;
}

const { O_RDONLY, O_NONBLOCK, O_NOFOLLOW, O_NOCTTY } = constants;
const HAVE_PROC_FD = existsSync('/proc/self/fd');

export async function openDataFile(path: string): Promise<DataFile> {
  let fh: FileHandle;
  try {
    fh = await open(path, O_RDONLY | O_NONBLOCK | O_NOFOLLOW | O_NOCTTY);
  } catch (err) {
    const sys = (err as NodeJS.ErrnoException).code;
    const code = sys === 'ENOENT' || sys === 'ENOTDIR' ? 'EDATA_MISSING'
      : sys === 'EACCES' || sys === 'EPERM' ? 'EDATA_ACCESS'
        : sys === 'ELOOP' ? 'EDATA_SYMLINK' : 'EDATA_IO';
    throw new AvError(code, 'input', `cannot open data file: ${sys ?? String(err)}`, { cause: err });
  }
  try {
    const st = await fh.stat();
    if (!st.isFile()) throw new AvError('EDATA_NOT_FILE', 'input', 'data file is not a regular file');
    return {
      readPath: HAVE_PROC_FD ? `/proc/self/fd/${fh.fd}` : path,
      size: st.size,
      close: () => fh.close().catch(() => undefined),
    };
  } catch (err) {
    await fh.close().catch(() => undefined);
    if (err instanceof AvError) throw err;
    throw new AvError('EDATA_IO', 'input', `cannot check data file: ${(err as NodeJS.ErrnoException).code ?? String(err)}`, { cause: err });
  }
}
