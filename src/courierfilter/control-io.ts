/**
 * Control-file I/O (courier-filter-protocol.md §4.3, §4.4).
 *
 * Owns: reading one control file with a size bound, and appending the I/S records that mark
 * recipients delivered (the "drop" action).
 * Inputs: paths from the request (already checked absolute by request.ts), a byte limit, a
 * ControlFile from parseControl, a reason text and the time in epoch seconds.
 * Outputs: a ControlFile; the number of recipients marked.
 * Fails with ControlError (stable code, the fs error kept as cause):
 *   ENOENT      no such file; also ENOTDIR/ENAMETOOLONG (the path names no file)
 *   ESYMLINK    the last component is a symbolic link (never followed)
 *   EACCES      EACCES, EPERM, EROFS
 *   ETOO_LARGE  bigger than maxBytes (checked by fstat before reading and again while reading)
 *   EIO         anything else, including "not a regular file" and a failed fsync
 *   ESHORT_WRITE a record was not written by one complete write()
 *   EBAD_CONTROL the bytes are not a control file (from parseControl)
 *   EINVAL      bad arguments (maxBytes, nowSec)
 *   EABORTED    the request's deadline passed while marking (the records were taken back)
 *   ECHANGED    the path names another file than the one read (replaced during the scan)
 *
 * No deadline: these are small local files in Courier's spool; a FIFO or device planted at the
 * path, the one way a read could hang, is refused (O_NONBLOCK open, then fstat must say file).
 * Reading is synchronous: open, fstat, one read and close of a few hundred local bytes cost less
 * than the hand-overs to the thread pool the asynchronous calls make (a worker whose event loop
 * a dead filesystem did stop would miss its heartbeat and be replaced).
 */
import { closeSync, constants, fstatSync, openSync, readSync } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import { ControlError, parseControl, type ControlFile } from './control.js';
import { sanitizeLine } from './reply.js';

/** Longest I-record reason: it lands in Courier's logs and DSN diagnostics, one short line. */
export const MAX_REASON_BYTES = 200;
export const DEFAULT_DROP_REASON = 'Ok - dropped by avfilter';
/** First read buffer when fstat reports 0 bytes (e.g. a device in a unit test). */
const MIN_READ_BYTES = 4096;

const { O_RDONLY, O_WRONLY, O_APPEND, O_NONBLOCK, O_NOCTTY, O_NOFOLLOW } = constants;

/** Map an fs error to our stable codes; a ControlError passes through unchanged. */
function toControlError(err: unknown, what: string): ControlError {
  if (err instanceof ControlError) return err;
  const sys = (err as NodeJS.ErrnoException | undefined)?.code;
  let code = 'EIO';
  if (sys === 'ENOENT' || sys === 'ENOTDIR' || sys === 'ENAMETOOLONG') code = 'ENOENT';
  else if (sys === 'ELOOP') code = 'ESYMLINK';
  else if (sys === 'EACCES' || sys === 'EPERM' || sys === 'EROFS') code = 'EACCES';
  const detail = err instanceof Error ? err.message : String(err);
  return new ControlError(code, `${what}: ${detail}`, { cause: err });
}

async function openRegular(path: string, flags: number, what: string): Promise<{ fh: FileHandle; size: number; identity: string }> {
  let fh: FileHandle;
  try {
    // O_NONBLOCK: opening a FIFO would otherwise block a libuv thread until a writer appears.
    // Never O_CREAT: a missing control file means the message is gone, not that we should make one.
    fh = await open(path, flags | O_NONBLOCK | O_NOCTTY);
  } catch (err) {
    throw toControlError(err, `${what} ${path}`);
  }
  try {
    const st = await fh.stat();
    if (!st.isFile()) throw new ControlError('EIO', `${what} ${path}: not a regular file`);
    return { fh, size: st.size, identity: `${st.dev}:${st.ino}` };
  } catch (err) {
    await fh.close().catch(() => undefined);
    throw toControlError(err, `${what} ${path}`);
  }
}

function tooLarge(maxBytes: number): ControlError {
  return new ControlError('ETOO_LARGE', `control file is larger than ${maxBytes} bytes`);
}

/**
 * Read from the handle's current position to EOF, holding at most maxBytes + 1 bytes: a file
 * can grow after fstat, so the bound is enforced on what read() really returns.
 */
export async function readBounded(fh: FileHandle, maxBytes: number, sizeHint = 0): Promise<Buffer> {
  const hint = Math.max(MIN_READ_BYTES, Number.isSafeInteger(sizeHint) ? sizeHint + 1 : 0);
  let buf = Buffer.alloc(Math.min(hint, maxBytes + 1));
  let total = 0;
  for (;;) {
    if (total === buf.length) {
      const next = Buffer.alloc(Math.min(buf.length * 2, maxBytes + 1));
      buf.copy(next, 0, 0, total);
      buf = next;
    }
    const { bytesRead } = await fh.read(buf, total, buf.length - total, null);
    if (bytesRead === 0) return buf.subarray(0, total);
    total += bytesRead;
    if (total > maxBytes) throw tooLarge(maxBytes);
  }
}

export async function readControlFile(path: string, maxBytes: number): Promise<ControlFile> {
  return readControlFileSync(path, maxBytes);
}

/** readControlFile, synchronously (see the module header). */
export function readControlFileSync(path: string, maxBytes: number): ControlFile {
  if (!Number.isSafeInteger(maxBytes) || maxBytes < 1) {
    throw new ControlError('EINVAL', `readControlFile: maxBytes must be a positive integer, got ${String(maxBytes)}`);
  }
  let fd: number;
  try {
    fd = openSync(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY);
  } catch (err) {
    throw toControlError(err, `read ${path}`);
  }
  try {
    const st = fstatSync(fd);
    if (!st.isFile()) throw new ControlError('EIO', `read ${path}: not a regular file`);
    if (st.size > maxBytes) throw tooLarge(maxBytes);
    const bytes = readBoundedSync(fd, maxBytes, st.size);
    const file = parseControl(path, bytes);
    identities.set(file, `${st.dev}:${st.ino}`);
    return file;
  } catch (err) {
    throw toControlError(err, `read ${path}`);
  } finally {
    try {
      closeSync(fd); // read-only: nothing to lose on a failed close
    } catch {
      // nothing to do
    }
  }
}

/**
 * The control file `file` was read from, read again as it is now (another request may have
 * marked recipients meanwhile). ECHANGED when another file sits at the path now.
 */
export function rereadControlFile(file: ControlFile, maxBytes: number): ControlFile {
  const now = readControlFileSync(file.path, maxBytes);
  const was = identities.get(file);
  if (was !== undefined && was !== identities.get(now)) {
    throw new ControlError('ECHANGED', `read ${file.path}: not the control file that was read (replaced during the scan)`);
  }
  return now;
}

/** readBounded on a descriptor, synchronously. */
function readBoundedSync(fd: number, maxBytes: number, sizeHint: number): Buffer {
  const hint = Math.max(MIN_READ_BYTES, Number.isSafeInteger(sizeHint) ? sizeHint + 1 : 0);
  let buf = Buffer.allocUnsafe(Math.min(hint, maxBytes + 1));
  let total = 0;
  for (;;) {
    if (total === buf.length) {
      const next = Buffer.allocUnsafe(Math.min(buf.length * 2, maxBytes + 1));
      buf.copy(next, 0, 0, total);
      buf = next;
    }
    const n = readSync(fd, buf, total, buf.length - total, null);
    if (n === 0) return buf.subarray(0, total);
    total += n;
    if (total > maxBytes) throw tooLarge(maxBytes);
  }
}

/** The file (device:inode) each ControlFile was read from: a drop must append to that one. */
const identities = new WeakMap<ControlFile, string>();

/** What appendRecord needs from a FileHandle (a seam so tests can force a short write). */
export interface RecordWriter {
  write(buffer: Buffer, offset: number, length: number, position: null): Promise<{ bytesWritten: number }>;
}

/**
 * Append one record with exactly one write(): with O_APPEND each record lands whole at the end,
 * and Courier itself treats a short append as fatal ("not atomic", comctlfile.c).
 */
export async function appendRecord(fh: RecordWriter, record: string): Promise<void> {
  const bytes = Buffer.from(record, 'latin1');
  const { bytesWritten } = await fh.write(bytes, 0, bytes.length, null);
  if (bytesWritten !== bytes.length) {
    throw new ControlError('ESHORT_WRITE', `short write: ${bytesWritten} of ${bytes.length} bytes of a control record`);
  }
}

/** Records gathered into one write() (whole records only): 100,000 recipients in ~90 writes. */
const RECORD_BATCH_BYTES = 64 * 1024;

export interface MarkOptions {
  /** Stops between batches: the records written so far are taken back (EABORTED). */
  readonly signal?: AbortSignal | undefined;
  /** Test seam: what the records are written through (a short or failing write). */
  readonly writer?: ((fh: FileHandle) => RecordWriter) | undefined;
  /** Recipients left pending (they get the message): true for an address not to mark. */
  readonly keep?: ((address: string) => boolean) | undefined;
}

/**
 * Mark every recipient of this file that is not done yet as delivered: "I<n> R <reason>" then
 * "S<n> <nowSec>" (no l/r flag, so never a success DSN; never F, which would bounce).
 * Returns how many were marked; after fsync the recipients' `done` flags are set, so calling
 * again with the same value appends nothing.
 *
 * All or nothing: the records go in batches of whole records (nobody reads the file while
 * submit waits for our reply), and if a write fails (a full disk: a half record) or the
 * request's deadline passes, the file is cut back to the size it had before we started, so no
 * half record and no record written after our 4xx stays behind.
 */
export async function markDelivered(file: ControlFile, reason: string, nowSec: number, opts: MarkOptions = {}): Promise<number> {
  if (!Number.isSafeInteger(nowSec) || nowSec < 0) {
    throw new ControlError('EINVAL', `markDelivered: nowSec must be a non-negative integer, got ${String(nowSec)}`);
  }
  const pending = file.recipients.filter((r) => !r.done && !(opts.keep?.(r.address) ?? false));
  if (pending.length === 0) return 0;
  const text = sanitizeLine(reason, MAX_REASON_BYTES) || DEFAULT_DROP_REASON;

  const { fh, size: before, identity } = await openRegular(file.path, O_WRONLY | O_APPEND | O_NOFOLLOW, 'append to');
  const read = identities.get(file);
  if (read !== undefined && read !== identity) {
    // Another file now sits at the path (the one we read was removed and the name reused):
    // its recipients are not the ones we counted, so none of our records belong in it.
    await fh.close().catch(() => undefined);
    throw new ControlError('ECHANGED', `append to ${file.path}: not the control file that was read (replaced during the scan)`);
  }
  const writer = opts.writer ? opts.writer(fh) : fh;
  let failure: ControlError | undefined;
  let wrote = false;
  try {
    let batch = '';
    for (const r of pending) {
      batch += `I${r.index} R ${text}\nS${r.index} ${nowSec}\n`;
      if (batch.length >= RECORD_BATCH_BYTES) {
        if (opts.signal?.aborted) throw new ControlError('EABORTED', 'request deadline reached while marking recipients');
        wrote = true;
        await appendRecord(writer, batch);
        batch = '';
      }
    }
    if (batch !== '') {
      if (opts.signal?.aborted) throw new ControlError('EABORTED', 'request deadline reached while marking recipients');
      wrote = true;
      await appendRecord(writer, batch);
    }
    // The 2xx we answer next tells the client the message is handled; the records must be on
    // disk before that, or a crash could deliver the message we meant to drop.
    await fh.sync();
  } catch (err) {
    failure = toControlError(err, `append to ${file.path}`);
    if (wrote) {
      try {
        await fh.truncate(before);
        await fh.sync();
      } catch (e) {
        failure = new ControlError(failure.code, `${failure.message}; and the records could not be taken back: ${String(e)}`, { cause: err });
      }
    }
  }
  try {
    await fh.close();
  } catch (err) {
    failure ??= toControlError(err, `close ${file.path}`);
  }
  if (failure) throw failure;
  for (const r of pending) r.done = true;
  return pending.length;
}
