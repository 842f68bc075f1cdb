/**
 * What the E2E tests look at after Courier has handled a message: the test users' Maildirs, the
 * queue's control and data files, and the syslog file.
 *
 * Inputs: paths (Maildir roots, Courier's spool, the log file). Outputs: plain values
 * (DeliveredMessage, QueuedMessage, log text); waits poll with a deadline and throw
 * HarnessTimeoutError naming what was awaited. Reads only; never changes the spool.
 */
import fs from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

export const SPOOL_DIRS = ['/var/lib/courier/tmp', '/var/lib/courier/msgs'];
// Polling step for files that Courier writes; short enough not to dominate a test's time.
const POLL_MS = 50;

export class HarnessTimeoutError extends Error {
  readonly code = 'E2E_TIMEOUT';
  constructor(message: string) {
    super(message);
    this.name = 'HarnessTimeoutError';
  }
}

/** Polls `probe` until it returns a value (not undefined) or the deadline passes. */
export async function waitFor<T>(what: string, timeoutMs: number, probe: () => T | undefined): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = probe();
    if (v !== undefined) return v;
    if (Date.now() >= deadline) throw new HarnessTimeoutError(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(POLL_MS);
  }
}

export interface DeliveredMessage {
  user: string;
  file: string;
  raw: Buffer;
  /** the header block as text (latin1), without the empty line */
  header: string;
  /** the bytes after the first empty line */
  body: Buffer;
}

/** Splits a message at the first empty line (LF or CRLF). */
export function splitMessage(raw: Buffer): { header: string; body: Buffer } {
  const lf = raw.indexOf('\n\n');
  const crlf = raw.indexOf('\r\n\r\n');
  if (lf < 0 && crlf < 0) return { header: raw.toString('latin1'), body: Buffer.alloc(0) };
  if (crlf >= 0 && (lf < 0 || crlf < lf)) {
    return { header: raw.subarray(0, crlf).toString('latin1'), body: raw.subarray(crlf + 4) };
  }
  return { header: raw.subarray(0, lf).toString('latin1'), body: raw.subarray(lf + 2) };
}

/** The value of the first header `name` (unfolded), or undefined. */
export function headerValue(header: string, name: string): string | undefined {
  const unfolded = header.replace(/\r?\n[ \t]+/g, ' ');
  const re = new RegExp(`^${name.replace(/[-]/g, '\\-')}:[ \\t]*(.*)$`, 'im');
  return re.exec(unfolded)?.[1]?.trim();
}

export function readMaildirs(maildirs: Record<string, string>): DeliveredMessage[] {
  const out: DeliveredMessage[] = [];
  for (const [user, root] of Object.entries(maildirs)) {
    for (const sub of ['new', 'cur']) {
      const dir = path.join(root, sub);
      let names: string[] = [];
      try {
        names = fs.readdirSync(dir);
      } catch {
        continue;
      }
      for (const name of names.sort()) {
        const file = path.join(dir, name);
        let raw: Buffer;
        try {
          raw = fs.readFileSync(file);
        } catch {
          continue; // moved between readdir and read
        }
        out.push({ user, file, raw, ...splitMessage(raw) });
      }
    }
  }
  return out;
}

export interface QueuedMessage {
  controlFile: string;
  /** data files of this message (D<inode> next to a C<inode>) */
  dataFiles: string[];
  control: string;
  /** the M record: Courier's queue id */
  id: string;
  sender: string;
  recipients: string[];
}

/**
 * Every message waiting in Courier's spool: /var/lib/courier/tmp holds what submit accepted while
 * courierd is stopped, msgs what courierd took over.
 */
export function readQueue(): QueuedMessage[] {
  const out: QueuedMessage[] = [];
  for (const spool of SPOOL_DIRS) {
    let subdirs: string[] = [];
    try {
      subdirs = fs.readdirSync(spool);
    } catch {
      continue;
    }
    for (const sub of subdirs) {
      const dir = path.join(spool, sub);
      let names: string[];
      try {
        if (!fs.statSync(dir).isDirectory()) continue;
        names = fs.readdirSync(dir);
      } catch {
        continue;
      }
      for (const name of names) {
        if (!/^C\d+$/.test(name)) continue;
        const controlFile = path.join(dir, name);
        let control: string;
        try {
          control = fs.readFileSync(controlFile, 'latin1');
        } catch {
          continue;
        }
        const inode = name.slice(1);
        const dataFiles = names.filter((n) => n === `D${inode}` || n.startsWith(`D${inode}.`)).map((n) => path.join(dir, n));
        const lines = control.split('\n');
        out.push({
          controlFile,
          dataFiles,
          control,
          id: lines.find((l) => l.startsWith('M'))?.slice(1) ?? '',
          sender: lines.find((l) => l.startsWith('s'))?.slice(1) ?? '',
          recipients: lines.filter((l) => l.startsWith('r')).map((l) => l.slice(1)),
        });
      }
    }
  }
  return out;
}

/**
 * The queue id in Courier's "250 Ok. <id>" reply is the tail of the M record
 * (e.g. M000000000016400B.000000006B019872.00001A86 vs 000000006B019872.00001A86).
 */
export function sameQueueId(mRecord: string, replyId: string): boolean {
  return replyId.length > 0 && (mRecord === replyId || mRecord.endsWith(`.${replyId}`));
}

/** The id in a "250 Ok. <id>" reply, or undefined. */
export function replyQueueId(text: string): string | undefined {
  return /Ok\.\s+([0-9A-F.]+)/i.exec(text)?.[1];
}

/** A position in the log file; logSince() returns what was written after it. */
export type LogMark = number;

export function logMark(logFile: string): LogMark {
  try {
    return fs.statSync(logFile).size;
  } catch {
    return 0;
  }
}

export function logSince(logFile: string, mark: LogMark): string {
  let fd: number;
  try {
    fd = fs.openSync(logFile, 'r');
  } catch {
    return '';
  }
  try {
    const size = fs.fstatSync(fd).size;
    if (size <= mark) return '';
    const buf = Buffer.alloc(size - mark);
    fs.readSync(fd, buf, 0, buf.length, mark);
    return buf.toString('utf8');
  } finally {
    fs.closeSync(fd);
  }
}
