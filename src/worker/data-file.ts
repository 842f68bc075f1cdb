/**
 * The data file of a request, opened once and checked on the open descriptor.
 *
 * Owns: the descriptor's life. Opened O_NONBLOCK (a FIFO planted at the path cannot block a
 * thread), O_NOFOLLOW (a symlink as the last component is refused) and O_NOCTTY, then fstat on
 * the descriptor must say "regular file": a check on the path followed by a second open can be
 * raced (the path flipped to a FIFO in between left thread-pool threads stuck on it for good).
 * Everything that reads the message afterwards opens /proc/self/fd/N, which reaches the very
 * inode that was checked, whatever happens to the path.
 * Courier never touches the data file while a filter runs; a file that changed under the scan
 * (grown, cut, rewritten, or another file renamed over the path) is not what was scanned, and
 * Courier delivers what is at the path: changed() tells, and the request answers 451.
 * The open, the checks and the read of a small message are synchronous: a few local system
 * calls cost less than the thread pool's hand-overs (the scan reads a large one in place).
 * Inputs: an absolute path. Outputs: a DataFile. Fails with AvError (origin "input"):
 * EDATA_MISSING, EDATA_ACCESS, EDATA_SYMLINK, EDATA_NOT_FILE, EDATA_IO.
 */
import { closeSync, constants, existsSync, fstatSync, lstatSync, openSync, readSync, type BigIntStats } from 'node:fs';
import { AvError } from '../errors.js';

export interface DataFile {
  /** The path to read the message by: /proc/self/fd/N (or the path itself without /proc). */
  readonly readPath: string;
  readonly size: number;
  /** Why the file is no longer what was opened (size, times, or the inode at the path), or undefined. */
  changed(): Promise<string | undefined>;
  /** All its bytes, read through the checked descriptor (for a small message). */
  readAll(): Promise<Buffer>;
  close(): Promise<void>;
}

const { O_RDONLY, O_NONBLOCK, O_NOFOLLOW, O_NOCTTY } = constants;
const HAVE_PROC_FD = existsSync('/proc/self/fd');

export async function openDataFile(path: string): Promise<DataFile> {
  let fd: number;
  try {
    fd = openSync(path, O_RDONLY | O_NONBLOCK | O_NOFOLLOW | O_NOCTTY);
  } catch (err) {
    const sys = (err as NodeJS.ErrnoException).code;
    const code = sys === 'ENOENT' || sys === 'ENOTDIR' ? 'EDATA_MISSING'
      : sys === 'EACCES' || sys === 'EPERM' ? 'EDATA_ACCESS'
        : sys === 'ELOOP' ? 'EDATA_SYMLINK' : 'EDATA_IO';
    throw new AvError(code, 'input', `cannot open data file: ${sys ?? String(err)}`, { cause: err });
  }
  const close = (): void => {
    try {
      closeSync(fd);
    } catch {
      // read-only: nothing to lose
    }
  };
  try {
    const st = fstatSync(fd, { bigint: true });
    if (!st.isFile()) throw new AvError('EDATA_NOT_FILE', 'input', 'data file is not a regular file');
    let closed = false;
    return {
      readPath: HAVE_PROC_FD ? `/proc/self/fd/${fd}` : path,
      size: Number(st.size),
      changed: async () => changedSince(path, st),
      readAll: async () => readWhole(fd, Number(st.size)),
      close: async () => {
        if (closed) return;
        closed = true;
        close();
      },
    };
  } catch (err) {
    close();
    if (err instanceof AvError) throw err;
    throw new AvError('EDATA_IO', 'input', `cannot check data file: ${(err as NodeJS.ErrnoException).code ?? String(err)}`, { cause: err });
  }
}

function readWhole(fd: number, size: number): Buffer {
  const buf = Buffer.allocUnsafe(size);
  let off = 0;
  while (off < size) {
    const bytesRead = readSync(fd, buf, off, size - off, off);
    if (bytesRead === 0) break;
    off += bytesRead;
  }
  // shorter than at open: changed() reports it after the scan; scan what is there
  return off === size ? buf : buf.subarray(0, off);
}

function changedSince(path: string, was: BigIntStats): string | undefined {
  try {
    // One lstat of the path answers both questions: if it still names the inode we opened,
    // its size and times are that inode's (a rewrite in place changes them); if not, another
    // file was put at the path.
    const now = lstatSync(path, { bigint: true });
    if (now.ino !== was.ino || now.dev !== was.dev) return 'another file was put at its path';
    if (now.size !== was.size) return `its size went from ${was.size} to ${now.size} bytes`;
    // ctime too: a rewrite that keeps the size and resets the mtime cannot reset the ctime
    if (now.mtimeNs !== was.mtimeNs || now.ctimeNs !== was.ctimeNs) return 'it was written to';
    return undefined;
  } catch (err) {
    return `it cannot be checked again: ${(err as NodeJS.ErrnoException).code ?? String(err)}`;
  }
}
