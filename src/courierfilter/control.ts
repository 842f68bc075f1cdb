/**
 * Courier control-file parser (courier-filter-protocol.md §4).
 *
 * Owns: turning the bytes of ONE control file into a ControlFile value, and summarising the
 * control files of one message. Pure: no file access (control-io.ts reads and appends).
 * Inputs: the file's path (kept for markDelivered and logs) and its bytes.
 * Outputs: sender, "received from" text, queue id, auth user, source, saved environment,
 * recipients with their per-file index and done flag, client IP and HELO name.
 * Fails with: ControlError code EBAD_CONTROL when the bytes are not a control file (no `s` or
 * no `M` record), so a wrong path or an empty file is never mistaken for a message with no
 * recipients, and when they hold a NUL (see parseControl). summarize() throws ControlError
 * ENO_CONTROL for an empty list.
 *
 * Record rules follow Courier's own reader (comctlfile.c): one record per "\n"-terminated line,
 * the first byte is the type, every "\r" becomes a space.
 * Values are decoded as UTF-8 (SMTPUTF8 addresses); bytes that are not UTF-8 become U+FFFD,
 * which only affects display, never recipient numbering.
 */
import { isIP } from 'node:net';
import { AvError, type Origin } from '../errors.js';

export interface Recipient {
  /** Position of its `r` line within THIS file, 0-based: the <n> in I<n>/S<n> records. */
  index: number;
  address: string;
  /** `R` record: ORCPT, "" when unspecified. */
  orcpt: string;
  /** `N` record: NOTIFY flags (S, F, D, N), "" for the default. */
  notify: string;
  /** Some `S` or `F` record carries this index (a `D` does not complete a recipient). */
  done: boolean;
}

export interface ControlFile {
  path: string;
  /** `s`: envelope sender, "" for the null sender <>. */
  sender: string;
  /** `f`: e.g. "dns; helo (rdns [ip])". */
  fromMta: string;
  /** `M`: Courier's queue id for this file. */
  queueId: string;
  /** `i`: SMTP AUTH user, absent when the client did not authenticate. */
  authUser?: string;
  /** `u`: message source (smtp, authsmtp, local, ...). */
  source?: string;
  /** `O` records, NAME=value (only RELAYCLIENT and TCPREMOTEIP in practice). */
  env: Record<string, string>;
  recipients: Recipient[];
  /** O TCPREMOTEIP, else the [ip] that ends `f`; IPv4-mapped IPv6 unwrapped; absent if not an IP. */
  clientIp?: string;
  /** First word after "dns; " in `f`. */
  helo?: string;
}

export interface ControlSummary {
  queueId: string;
  sender: string;
  /** Recipients in all files. */
  recipients: number;
  /** Recipients in all files that no S/F record completes yet. */
  pending: number;
  authUser?: string;
  clientIp?: string;
  source?: string;
}

/**
 * A ControlError is about the files the request names (origin input), except the deadline
 * while marking recipients (abort) and our own short write or bad arguments (internal).
 */
const CONTROL_ORIGINS: ReadonlyMap<string, Origin> = new Map([['EABORTED', 'abort'], ['ESHORT_WRITE', 'internal'], ['EINVAL', 'internal']]);

/** Error with a stable code, shared by control.ts and control-io.ts. */
export class ControlError extends AvError {
  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(code, CONTROL_ORIGINS.get(code) ?? 'input', message, options);
    this.name = 'ControlError';
  }
}

// ignoreBOM: a leading EF BB BF is data in a record, not a byte-order mark to drop.
const utf8 = new TextDecoder('utf-8', { ignoreBOM: true });

/** "::ffff:a.b.c.d" is how a dual-stack listener reports an IPv4 peer; policy wants a.b.c.d. */
function normalizeIp(raw: string): string | undefined {
  const mapped = /^::ffff:(\d{1,3}(?:\.\d{1,3}){3})$/i.exec(raw);
  const ip = mapped ? mapped[1]! : raw;
  // Anything that is not an address is "unknown", never a guess: policy may trust by IP.
  return isIP(ip) === 0 ? undefined : ip;
}

/**
 * Courier reads the index with atoi(), which skips only C-locale blanks: a Unicode space (NBSP,
 * U+2028, a BOM...) before the digits makes atoi() read 0, so such a record must not mark the
 * recipient after it done. A record without plain digits is ignored here, see below.
 */
function recordIndex(value: string): number | undefined {
  const m = /^[ \t\v\f]*([0-9]+)/.exec(value);
  return m ? Number(m[1]) : undefined;
}

export function parseControl(path: string, buf: Buffer): ControlFile {
  let sender: string | undefined;
  let fromMta: string | undefined;
  let queueId: string | undefined;
  let authUser: string | undefined;
  let source: string | undefined;
  // A Map, then fromEntries: a NAME of "__proto__" must stay data, not reach the prototype.
  const envMap = new Map<string, string>();
  const recipients: Recipient[] = [];
  const doneIndices = new Set<number>();

  // Courier reads the file as a C string: nothing after a NUL exists for it. We could read what
  // it reads, but the S records a drop appends would land after the NUL, unseen, and the
  // recipients would get the message: such a file is refused (the request tempfails).
  const nul = buf.indexOf(0);
  if (nul !== -1) {
    throw new ControlError('EBAD_CONTROL', `${path}: NUL byte at offset ${nul}; Courier ignores everything after it`);
  }
  let start = 0;
  while (start < buf.length) {
    let nl = buf.indexOf(0x0a, start);
    if (nl === -1) nl = buf.length; // a last line without "\n" still counts, as in Courier
    const line = buf.subarray(start, nl);
    start = nl + 1;
    if (line.length === 0) continue;
    const type = String.fromCharCode(line[0]!);
    const value = utf8.decode(line.subarray(1)).replace(/\r/g, ' ');
    switch (type) {
      case 's':
        sender ??= value;
        break;
      case 'f':
        fromMta ??= value;
        break;
      case 'M':
        queueId ??= value;
        break;
      case 'i':
        authUser ??= value;
        break;
      case 'u':
        source ??= value;
        break;
      case 'O': {
        const eq = value.indexOf('=');
        const name = eq === -1 ? value : value.slice(0, eq);
        if (!envMap.has(name)) envMap.set(name, eq === -1 ? '' : value.slice(eq + 1));
        break;
      }
      case 'r':
        recipients.push({ index: recipients.length, address: value, orcpt: '', notify: '', done: false });
        break;
      case 'R':
        if (recipients.length > 0) recipients[recipients.length - 1]!.orcpt = value;
        break;
      case 'N':
        if (recipients.length > 0) recipients[recipients.length - 1]!.notify = value;
        break;
      case 'S':
      case 'F': {
        // A record whose index we cannot read marks nobody done. Erring towards "not done" is
        // the safe side: markDelivered then appends one more S record, which Courier ignores,
        // instead of skipping a recipient that would still get the message.
        const n = recordIndex(value);
        if (n !== undefined) doneIndices.add(n);
        break;
      }
      default:
        break; // e, t, L, E, p, W, I, D, C, A, ...: not needed by the filter
    }
  }

  if (sender === undefined || queueId === undefined) {
    throw new ControlError(
      'EBAD_CONTROL',
      `${path}: not a Courier control file (no ${sender === undefined ? 's' : 'M'} record)`,
    );
  }
  for (const r of recipients) r.done = doneIndices.has(r.index);
  const env: Record<string, string> = Object.fromEntries(envMap);

  const file: ControlFile = { path, sender, fromMta: fromMta ?? '', queueId, env, recipients };
  if (authUser !== undefined) file.authUser = authUser;
  if (source !== undefined) file.source = source;

  const tcpRemoteIp = envMap.get('TCPREMOTEIP');
  // Courier writes the peer's address last: "dns; HELO (RDNS [IP])". Only that closing "[IP])"
  // counts: a "[...]" earlier is the client's own HELO (an address literal it chose). "[" is
  // outside the class so a long run of brackets costs linear time, not quadratic back-tracking.
  const bracketed = /\[([^[\]\s]*)\]\)\s*$/.exec(file.fromMta)?.[1];
  const clientIp =
    tcpRemoteIp !== undefined && tcpRemoteIp !== '' ? normalizeIp(tcpRemoteIp) : bracketed ? normalizeIp(bracketed) : undefined;
  if (clientIp !== undefined) file.clientIp = clientIp;

  const helo = /^dns; ([^\s(]\S*)/.exec(file.fromMta)?.[1];
  if (helo !== undefined) file.helo = helo;
  return file;
}

/** The addresses of every recipient no S/F record completes yet, over all the message's files. */
export function pendingRecipients(controls: readonly ControlFile[]): string[] {
  return controls.flatMap((c) => c.recipients.filter((r) => !r.done).map((r) => r.address));
}

/** One view of a message's control files; header fields come from the first file, as Courier writes the same ones to each. */
export function summarize(files: ControlFile[]): ControlSummary {
  const first = files[0];
  if (first === undefined) throw new ControlError('ENO_CONTROL', 'summarize: no control files');
  let recipients = 0;
  let pending = 0;
  for (const f of files) {
    recipients += f.recipients.length;
    for (const r of f.recipients) if (!r.done) pending++;
  }
  const out: ControlSummary = { queueId: first.queueId, sender: first.sender, recipients, pending };
  if (first.authUser !== undefined) out.authUser = first.authUser;
  if (first.clientIp !== undefined) out.clientIp = first.clientIp;
  if (first.source !== undefined) out.source = first.source;
  return out;
}
