/**
 * Releasing a quarantined message, exactly once: the message is handed to sendmail
 * (quarantine_sendmail, run without a shell) with the release marker (marker.ts) put first, to
 * the recipients it was kept from or to `--to` addresses; and, in the filter, recognising such a
 * message so it is accepted without being scanned again.
 *
 * Exactly once: the release claims the entry by creating `release.lock` with O_EXCL (a second
 * release, at the same moment or later, finds it and stops), then records state "releasing"
 * (atomically, fsynced) before sendmail runs, and "released" with the time and the addresses
 * after it exits 0. The lock stays: a released entry is never sent again. A sendmail that
 * fails puts the entry back to "held" with the reason and removes the lock, so it can be
 * released again. A release killed while sendmail ran leaves "releasing" and the lock: whether
 * the mail went out is then a question for the mail log, and the entry is not sent twice.
 *
 * The filter accepts a marked message only while its entry is "releasing" and the MAC verifies
 * for the body it got: a marked copy that comes in at another time, or with another body, is
 * scanned like any other message.
 *
 * Fails with AvError: EQUARANTINE_RELEASED (already released), EQUARANTINE_BUSY (a release has
 * begun and not ended), EQUARANTINE_ADDRESS (an address sendmail would take as an option),
 * EQUARANTINE_SEND (sendmail failed: the entry stays releasable), and store.ts's codes.
 */
import { spawn } from 'node:child_process';
import { createReadStream } from 'node:fs';
import { open, readFile, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { AvError, codeOf, messageOf } from '../errors.js';
import { BodyDigest, bodyDigestOf, findMarker, macMatches, markerLine, readKey, ensureKey, splitHead, stripMarkers } from './marker.js';
import { LOCK_FILE, MESSAGE_FILE, ownLikeDir, readEntry, replaceRecord, writeNewFile, type QuarantineRecord } from './store.js';

export { verifyReleaseMarker, MARKER_HEADER } from './marker.js';

/** Largest header block a stored message may have (mime.max_header_size's upper bound). */
const MAX_HEADER_BYTES = 64 * 1024 * 1024;
/** How far into a message the filter looks for the marker: ours is put first, Courier adds a few Received lines above. */
const MARKER_WINDOW_BYTES = 64 * 1024;
/** sendmail's stderr kept for the error message. */
const MAX_STDERR_CHARS = 2000;

export interface ReleaseOptions {
  /** The addresses to send to; empty: the recipients it was kept from. */
  readonly to: readonly string[];
  /** quarantine_sendmail: program and arguments, {sender} replaced, recipients appended. */
  readonly sendmail: readonly string[];
  readonly sendTimeoutMs?: number;
  readonly now?: () => Date;
}

export interface ReleaseResult {
  readonly record: QuarantineRecord;
  readonly to: readonly string[];
}

/** The header block of a stored message, read up to its blank line. */
async function readHead(path: string): Promise<{ head: Buffer; bodyStart: number; sep: Buffer }> {
  const fh = await open(path, 'r');
  try {
    let buf = Buffer.alloc(0);
    for (;;) {
      const chunk = Buffer.alloc(64 * 1024);
      const { bytesRead } = await fh.read(chunk, 0, chunk.length, buf.length);
      buf = Buffer.concat([buf, chunk.subarray(0, bytesRead)]);
      const split = splitHead(buf);
      if (split) return { head: buf.subarray(0, split.headerEnd), bodyStart: split.bodyStart, sep: buf.subarray(split.headerEnd, split.bodyStart) };
      if (bytesRead === 0) return { head: buf, bodyStart: buf.length, sep: Buffer.from('\n') };
      if (buf.length > MAX_HEADER_BYTES) throw new AvError('EQUARANTINE_MESSAGE', 'input', `${path}: a header block over ${MAX_HEADER_BYTES} bytes`);
    }
  } finally {
    await fh.close();
  }
}

/** The canonical body digest (marker.ts) of a file's bytes from `start`. */
async function bodyDigest(path: string, start: number): Promise<Buffer> {
  const d = new BodyDigest();
  for await (const chunk of createReadStream(path, { start })) d.update(chunk as Buffer);
  return d.digest();
}

/** The sendmail command for one release: {sender} replaced in every argument, the recipients appended. */
export function sendmailArgv(template: readonly string[], sender: string, to: readonly string[]): string[] {
  for (const a of to) {
    if (a === '' || a.startsWith('-') || /[\s\p{Cc}]/u.test(a)) {
      throw new AvError('EQUARANTINE_ADDRESS', 'input', `not an address to release to: ${JSON.stringify(a)}`);
    }
  }
  return [...template.map((a) => a.split('{sender}').join(sender)), ...to];
}

async function runSendmail(argv: readonly string[], head: Buffer, bodyPath: string, bodyStart: number, timeoutMs: number): Promise<void> {
  const child = spawn(argv[0]!, argv.slice(1), { stdio: ['pipe', 'ignore', 'pipe'], timeout: timeoutMs, killSignal: 'SIGKILL' });
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (s: string) => {
    if (stderr.length < MAX_STDERR_CHARS) stderr += s;
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve, reject) => {
    child.once('error', reject);
    child.once('close', (code, signal) => resolve({ code, signal }));
  });
  const fed = (async () => {
    child.stdin.write(head);
    await pipeline(createReadStream(bodyPath, { start: bodyStart }), child.stdin);
  })();
  let status;
  let fedError: unknown;
  try {
    status = await exited;
  } catch (err) {
    throw new AvError('EQUARANTINE_SEND', 'internal', `${argv[0]}: ${messageOf(err)}`, { cause: err });
  } finally {
    // a sendmail that never started, or exited before reading it all: nobody takes the rest
    child.stdin.destroy();
    fedError = await fed.then(() => undefined, (err: unknown) => err);
  }
  if (status.code === 0 && fedError !== undefined) {
    throw new AvError('EQUARANTINE_SEND', 'internal', `${argv[0]} exited before it had read the whole message (${messageOf(fedError)})`, { cause: fedError });
  }
  if (status.code !== 0) {
    const how = status.signal ? `killed by ${status.signal}` : `exit status ${status.code}`;
    throw new AvError('EQUARANTINE_SEND', 'internal', `${argv[0]} failed (${how})${stderr.trim() ? `: ${stderr.trim().replace(/\s+/g, ' ')}` : ''}`);
  }
}

/** Releases entry `id` of quarantine_dir `qdir` (see the header for the states). */
export async function releaseEntry(qdir: string, id: string, opts: ReleaseOptions): Promise<ReleaseResult> {
  const now = opts.now ?? (() => new Date());
  const entry = await readEntry(qdir, id);
  const refuseDone = (rec: QuarantineRecord): never => {
    throw new AvError('EQUARANTINE_RELEASED', 'input', `${id} was released at ${rec.released?.time} to ${rec.released?.to.join(', ')}; it is not sent again`);
  };
  if (entry.record.state === 'released') refuseDone(entry.record);
  const to = opts.to.length > 0 ? opts.to : entry.record.recipients;
  if (to.length === 0) throw new AvError('EQUARANTINE_ADDRESS', 'input', `${id} has no recipients to release to: name one with --to`);
  const argv = sendmailArgv(opts.sendmail, entry.record.sender, to);

  const lock = join(entry.dir, LOCK_FILE);
  try {
    await writeNewFile(lock, `${process.pid} ${now().toISOString()}\n`);
  } catch (err) {
    if (codeOf(err) !== 'EEXIST') throw err;
    const again = await readEntry(qdir, id);
    if (again.record.state === 'released') refuseDone(again.record);
    const since = await readFile(lock, 'utf8').catch(() => '');
    throw new AvError('EQUARANTINE_BUSY', 'input',
      `a release of ${id} began (${since.trim() || 'time unknown'}) and has not ended: another release runs, or one was interrupted ` +
      `while sendmail ran (check the mail log for it; remove ${lock} only if the message did not go out)`);
  }
  await ownLikeDir(qdir, lock);
  const held = entry.record;
  let releasing: QuarantineRecord;
  try {
    releasing = { ...held, state: 'releasing', releasing: { time: now().toISOString(), to } };
    await replaceRecord(qdir, releasing);
  } catch (err) {
    await unlink(lock).catch(() => undefined);
    throw err;
  }

  try {
    const key = await ensureKey(qdir);
    const path = join(entry.dir, MESSAGE_FILE);
    const { head, bodyStart, sep } = await readHead(path);
    const marker = markerLine(key, id, await bodyDigest(path, bodyStart));
    await runSendmail(argv, Buffer.concat([Buffer.from(marker, 'latin1'), stripMarkers(head), sep]), path, bodyStart, opts.sendTimeoutMs ?? 300_000);
  } catch (err) {
    // not sent: releasable again, with the reason kept
    const back: QuarantineRecord = { ...held, release_error: { time: now().toISOString(), reason: messageOf(err) } };
    await replaceRecord(qdir, back);
    await unlink(lock);
    throw err;
  }
  const { releasing: _r, ...rest } = releasing;
  const done: QuarantineRecord = { ...rest, state: 'released', released: { time: now().toISOString(), to } };
  await replaceRecord(qdir, done);
  return { record: done, to };
}

/** Keys read by the filter, by quarantine_dir: read once, kept for the life of the process. */
const keys = new Map<string, Buffer>();

/**
 * In the filter: the id of the quarantine entry a message was released from, when the message
 * carries one valid marker in its header block and that entry is being released now; undefined
 * otherwise (then it is scanned like any other message). A message without the header costs a
 * look at its first bytes and nothing more. `message.bytes`, when given, is the whole message.
 * Never throws: anything that cannot be checked means "scan it".
 */
export async function releasedMarker(message: { path: string; bytes?: Buffer | undefined }, qdir: string): Promise<{ id: string } | undefined> {
  try {
    let head = message.bytes?.subarray(0, MARKER_WINDOW_BYTES);
    if (head === undefined) {
      const fh = await open(message.path, 'r');
      try {
        const buf = Buffer.alloc(MARKER_WINDOW_BYTES);
        head = buf.subarray(0, (await fh.read(buf, 0, buf.length, 0)).bytesRead);
      } finally {
        await fh.close();
      }
    }
    const split = splitHead(head);
    if (!split) return undefined;
    const marker = findMarker(head.subarray(0, split.headerEnd));
    if (!marker) return undefined;
    let key = keys.get(qdir);
    if (!key) {
      key = await readKey(qdir);
      if (!key) return undefined;
      keys.set(qdir, key);
    }
    const entry = await readEntry(qdir, marker.id);
    if (entry.record.state !== 'releasing') return undefined;
    const digest = message.bytes ? bodyDigestOf(message.bytes.subarray(split.bodyStart)) : await bodyDigest(message.path, split.bodyStart);
    return macMatches(key, marker, digest) ? { id: marker.id } : undefined;
  } catch {
    return undefined;
  }
}

/** Forgets the keys read (tests; a key file replaced by hand). */
export function forgetReleaseKeys(): void {
  keys.clear();
}
