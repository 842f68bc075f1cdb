/**
 * The quarantine store: infected mail kept in quarantine_dir, one directory per message, under an
 * id avfilter makes (never a name taken from the message or its envelope):
 *
 *   quarantine_dir/                 0700
 *     .release-key                  0600, the release marker's HMAC key (release.ts)
 *     20261207-004512-3f9a1c2b7d4e/ 0700, one entry
 *       message.eml                 0600, the data file as Courier handed it to the filter
 *       control-1 ...               0600, the control files (envelope, as Courier wrote them)
 *       record.json                 0600, what was found and what became of it (QuarantineRecord)
 *       release.lock                0600, present once a release has begun (release.ts)
 *
 * An entry is written into `.tmp-ID`, every file and the directory fsynced, then renamed into
 * place and quarantine_dir fsynced: a crash leaves a whole entry or a `.tmp-` directory that
 * list() ignores and expire() removes, never half an entry under a real id.
 * The record is replaced the same way (written beside it, fsynced, renamed).
 *
 * Owns: the layout, ids, the record format, listing, reading, deleting and expiring entries.
 * Fails with AvError: EQUARANTINE_ID (input: an id not of our form), EQUARANTINE_NOT_FOUND,
 * EQUARANTINE_DIR (quarantine_dir is not a private directory), EQUARANTINE_RECORD (unreadable
 * record); I/O errors keep their errno code. The caller of writeEntry() answers 4xx on any.
 */
import { randomBytes } from 'node:crypto';
import { constants } from 'node:fs';
import { chown, copyFile, lstat, mkdir, open, readdir, readFile, rename, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { AvError, codeOf } from '../errors.js';

/** What the CLI accepts as an id: letters, digits and '-', so it can never name a path elsewhere. */
export const QUARANTINE_ID_RE = /^[A-Za-z0-9][A-Za-z0-9-]{0,63}$/;
export const MESSAGE_FILE = 'message.eml';
export const RECORD_FILE = 'record.json';
export const LOCK_FILE = 'release.lock';
const TMP_PREFIX = '.tmp-';
/** A `.tmp-` entry older than this is left over from a crash (a write takes milliseconds). */
const STALE_TMP_MS = 3600_000;

export type QuarantineState = 'held' | 'releasing' | 'released';

export interface QuarantineFinding {
  readonly name: string;
  readonly engine: string;
  /** "raw" or the MIME path ("1.2"), as in the log line's where=. */
  readonly part: string;
  readonly filename?: string | undefined;
  readonly container?: string | undefined;
}

export interface QuarantineRecord {
  readonly version: 1;
  readonly id: string;
  /** When it was quarantined (ISO 8601, UTC). */
  readonly time: string;
  readonly queue_id: string;
  readonly sender: string;
  /** The recipients no S/F record had completed: the ones the message was kept from. */
  readonly recipients: readonly string[];
  readonly client_ip?: string | undefined;
  readonly names: readonly string[];
  readonly findings: readonly QuarantineFinding[];
  /** What avfilter did with the message (drop, reject, pass, ...). */
  readonly action: string;
  readonly size: number;
  readonly controls: number;
  readonly state: QuarantineState;
  readonly releasing?: { readonly time: string; readonly to: readonly string[] } | undefined;
  readonly released?: { readonly time: string; readonly to: readonly string[] } | undefined;
  /** The last release that failed (the entry stayed releasable). */
  readonly release_error?: { readonly time: string; readonly reason: string } | undefined;
}

export type NewRecord = Omit<QuarantineRecord, 'version' | 'id' | 'time' | 'size' | 'controls' | 'state'>;

export interface QuarantineEntry {
  readonly id: string;
  readonly dir: string;
  readonly record: QuarantineRecord;
}

/** A new id: UTC time (sortable, readable) and 48 random bits. */
export function newId(now = new Date()): string {
  const t = now.toISOString();
  return `${t.slice(0, 10).replace(/-/g, '')}-${t.slice(11, 19).replace(/:/g, '')}-${randomBytes(6).toString('hex')}`;
}

/** The id as it is, or EQUARANTINE_ID: nothing else ever reaches a path. */
export function checkId(id: string): string {
  if (!QUARANTINE_ID_RE.test(id)) {
    throw new AvError('EQUARANTINE_ID', 'input', `not a quarantine id: ${JSON.stringify(id.slice(0, 80))} (letters, digits and '-' only)`);
  }
  return id;
}

export function entryDir(qdir: string, id: string): string {
  return join(qdir, checkId(id));
}

/**
 * quarantine_dir made 0700 when missing; an existing one must be a real directory (not a
 * symlink) that neither group nor others can enter: quarantined mail is someone's mail, and a
 * virus.
 */
export async function ensureQuarantineDir(qdir: string): Promise<void> {
  await mkdir(qdir, { recursive: true, mode: 0o700 });
  const st = await lstat(qdir);
  if (!st.isDirectory()) throw new AvError('EQUARANTINE_DIR', 'internal', `quarantine_dir ${qdir} is not a directory`);
  if ((st.mode & 0o077) !== 0) {
    throw new AvError('EQUARANTINE_DIR', 'internal', `quarantine_dir ${qdir} has mode ${(st.mode & 0o777).toString(8)}: it must be 0700`);
  }
}

/**
 * Files made by root (the command line) belong to quarantine_dir's owner, so the daemon (Courier's
 * user) can go on reading and writing them.
 */
export async function ownLikeDir(qdir: string, path: string): Promise<void> {
  if (typeof process.geteuid !== 'function' || process.geteuid() !== 0) return;
  const st = await stat(qdir);
  if (st.uid !== 0) await chown(path, st.uid, st.gid);
}

export async function fsyncPath(path: string): Promise<void> {
  const fh = await open(path, constants.O_RDONLY);
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/** A new file (never an existing one: O_EXCL), mode 0600, its bytes on disk before it returns. */
export async function writeNewFile(path: string, data: string | Buffer): Promise<void> {
  const fh = await open(path, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o600);
  try {
    await fh.writeFile(data);
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/** Copies src to a new file dst (0600, fsynced); returns its size. */
async function copySynced(src: string, dst: string): Promise<number> {
  await copyFile(src, dst, constants.COPYFILE_EXCL);
  const fh = await open(dst, constants.O_RDWR | constants.O_NOFOLLOW);
  try {
    await fh.chmod(0o600);
    await fh.sync();
    return (await fh.stat()).size;
  } finally {
    await fh.close();
  }
}

function recordText(rec: QuarantineRecord): string {
  return `${JSON.stringify(rec, null, 2)}\n`;
}

/**
 * Keeps a message: its data file and control files and the record, under a new id.
 * `dataPath` is read as it is (the worker passes its checked /proc/self/fd path).
 */
export async function writeEntry(
  qdir: string, input: { dataPath: string; controlPaths: readonly string[]; record: NewRecord }, now = new Date(),
): Promise<QuarantineEntry> {
  await ensureQuarantineDir(qdir);
  const id = newId(now);
  const tmp = join(qdir, `${TMP_PREFIX}${id}`);
  const dir = join(qdir, id);
  await mkdir(tmp, { mode: 0o700 });
  try {
    const size = await copySynced(input.dataPath, join(tmp, MESSAGE_FILE));
    for (const [i, p] of input.controlPaths.entries()) await copySynced(p, join(tmp, `control-${i + 1}`));
    const record: QuarantineRecord = {
      version: 1, id, time: now.toISOString(), ...input.record, size, controls: input.controlPaths.length, state: 'held',
    };
    await writeNewFile(join(tmp, RECORD_FILE), recordText(record));
    await fsyncPath(tmp);
    await rename(tmp, dir);
    await fsyncPath(qdir);
    return { id, dir, record };
  } catch (err) {
    await rm(tmp, { recursive: true, force: true }).catch(() => undefined);
    throw err;
  }
}

/** Replaces an entry's record: written beside it, fsynced, renamed over it, the directory fsynced. */
export async function replaceRecord(qdir: string, record: QuarantineRecord): Promise<void> {
  const dir = entryDir(qdir, record.id);
  const tmp = join(dir, `${RECORD_FILE}.${process.pid}.${randomBytes(4).toString('hex')}`);
  try {
    await writeNewFile(tmp, recordText(record));
    await ownLikeDir(qdir, tmp);
    await rename(tmp, join(dir, RECORD_FILE));
  } catch (err) {
    await rm(tmp, { force: true }).catch(() => undefined);
    throw err;
  }
  await fsyncPath(dir);
}

export async function readEntry(qdir: string, id: string): Promise<QuarantineEntry> {
  const dir = entryDir(qdir, id);
  let text: string;
  try {
    text = await readFile(join(dir, RECORD_FILE), 'utf8');
  } catch (err) {
    if (codeOf(err) === 'ENOENT' || codeOf(err) === 'ENOTDIR') {
      throw new AvError('EQUARANTINE_NOT_FOUND', 'input', `no quarantine entry ${id} in ${qdir}`, { cause: err });
    }
    throw err;
  }
  let record: QuarantineRecord;
  try {
    record = JSON.parse(text) as QuarantineRecord;
  } catch (err) {
    throw new AvError('EQUARANTINE_RECORD', 'internal', `${join(dir, RECORD_FILE)}: not a quarantine record: ${(err as Error).message}`, { cause: err });
  }
  if (record.id !== id || record.version !== 1) {
    throw new AvError('EQUARANTINE_RECORD', 'internal', `${join(dir, RECORD_FILE)}: the record is of another entry or version`);
  }
  return { id, dir, record };
}

/** Every entry, oldest first; entries whose record cannot be read are returned in `broken`. */
export async function listEntries(qdir: string): Promise<{ entries: QuarantineEntry[]; broken: { id: string; reason: string }[] }> {
  let names: string[];
  try {
    names = await readdir(qdir);
  } catch (err) {
    if (codeOf(err) === 'ENOENT') return { entries: [], broken: [] };
    throw err;
  }
  const entries: QuarantineEntry[] = [];
  const broken: { id: string; reason: string }[] = [];
  for (const name of names.filter((n) => QUARANTINE_ID_RE.test(n)).sort()) {
    try {
      entries.push(await readEntry(qdir, name));
    } catch (err) {
      broken.push({ id: name, reason: (err as Error).message });
    }
  }
  entries.sort((a, b) => a.record.time.localeCompare(b.record.time) || a.id.localeCompare(b.id));
  return { entries, broken };
}

/** Removes one entry; EQUARANTINE_NOT_FOUND when there is none. */
export async function deleteEntry(qdir: string, id: string): Promise<void> {
  const dir = entryDir(qdir, id);
  try {
    const st = await lstat(dir);
    if (!st.isDirectory()) throw new AvError('EQUARANTINE_NOT_FOUND', 'input', `no quarantine entry ${id} in ${qdir}`);
  } catch (err) {
    if (codeOf(err) === 'ENOENT') throw new AvError('EQUARANTINE_NOT_FOUND', 'input', `no quarantine entry ${id} in ${qdir}`, { cause: err });
    throw err;
  }
  // renamed out of the way first, so no reader ever sees half an entry under its id
  const gone = join(qdir, `${TMP_PREFIX}${id}-deleted-${randomBytes(4).toString('hex')}`);
  await rename(dir, gone);
  await rm(gone, { recursive: true, force: true });
  await fsyncPath(qdir);
}

/**
 * Removes the entries quarantined more than `days` days before `now` (and `.tmp-` leftovers of
 * writes that crashed); returns the ids removed.
 */
export async function expireEntries(qdir: string, days: number, now = new Date()): Promise<string[]> {
  const cutoff = now.getTime() - days * 86_400_000;
  const { entries, broken } = await listEntries(qdir);
  const removed: string[] = [];
  for (const e of entries) {
    if (Date.parse(e.record.time) < cutoff) {
      await deleteEntry(qdir, e.id);
      removed.push(e.id);
    }
  }
  // an entry without a readable record goes by its directory's time
  for (const b of broken) {
    const st = await lstat(join(qdir, b.id)).catch(() => undefined);
    if (st?.isDirectory() && st.mtimeMs < cutoff) {
      await deleteEntry(qdir, b.id);
      removed.push(b.id);
    }
  }
  let names: string[] = [];
  try {
    names = await readdir(qdir);
  } catch {
    // no directory, nothing left over
  }
  for (const name of names.filter((n) => n.startsWith(TMP_PREFIX))) {
    const st = await lstat(join(qdir, name)).catch(() => undefined);
    if (st?.isDirectory() && st.mtimeMs < now.getTime() - STALE_TMP_MS) await rm(join(qdir, name), { recursive: true, force: true });
  }
  return removed;
}
