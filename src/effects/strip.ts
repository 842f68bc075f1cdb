/**
 * The strip effect (action.infected = "strip", or per virus name): each infected attachment is
 * replaced by a short text/plain part that names the virus and the file, the rest of the
 * message is delivered byte for byte, and the rewritten message is scanned again: it must come
 * out clean, else the message is dropped instead.
 *
 * What is cut: the standard reading's part a finding names (its item id, a MIME path), or for a
 * member of an archive the top-level attachment holding the archive (the path before the first
 * "/"), or for a part inside an attached message the attached message. Where a part's bytes
 * are comes from mime/layout.ts (the standard reading's splitter, counting bytes). Nothing is
 * cut, and the message is dropped, when the cut could miss what was found or what a reader
 * sees: the whole message is the infected part; the extraction called the message irregular
 * (readers may disagree on it); a finding came from another reading (lenient, an encoding
 * inside a text part) or from the raw message alone; the layout does not add up to the file's
 * size or its headers are not where it says. The rescan is the final check whatever the plan
 * said: a virus still there (a copy that the scan had not reached, the scan stops at the first
 * find) is cut too, for up to MAX_ROUNDS rounds, then the message is dropped.
 *
 * The data file is rewritten in place (same inode, owner and mode: Courier hard-links the path
 * later), from the first changed byte on: a small message from memory in one write, a large one
 * built in a private directory of tmpdir and copied in. The original is kept in that directory
 * (hdr-<pid>-*, which the master sweeps when a worker dies) before the file is touched: no copy,
 * no strip (a 4xx). Any failure after that writes the original back, byte for byte, before the
 * error goes up (the caller answers 4xx); a rescan that does not come out clean writes it back
 * too, and the caller drops the message. StripDone.undo writes it back when a later effect fails.
 *
 * Inputs: the data file (a path to its inode, its size, its bytes when small), the findings,
 * the extraction's irregular note, tmpdir, the rescan. Outputs: StripOutcome. Fails with
 * AvError (EDATA_WRITE, ESTRIP_COPY, origin internal) or the signal's abort.
 */
import { copyFile, mkdtemp, open, rm, type FileHandle } from 'node:fs/promises';
import { createReadStream } from 'node:fs';
import { join } from 'node:path';
import { openForWrite, readRange, writeAll, writeError, SMALL_FILE_BYTES } from '../courierfilter/data-write.js';
import { mimeLayout, nodeAt, type Layout, type LayoutNode } from '../mime/index.js';
import type { Finding, Verdict } from '../policy/verdict.js';
import { AvError } from '../errors.js';
import type { EffectRunner, EffectState } from './types.js';

/** Strip, rescan, strip what the rescan found: at most this many times before dropping. */
export const MAX_ROUNDS = 3;

/** Longest file or virus name written into the note (a sender makes names). */
const MAX_NAME_CHARS = 200;

/** How much is copied per read and write when a large message is put back. */
const COPY_CHUNK_BYTES = 1024 * 1024;

export interface StripInput {
  /** Opens the data file's inode (the /proc/self/fd path of the checked descriptor). */
  readonly path: string;
  readonly size: number;
  /** The file's bytes when the caller holds them (a small message). */
  readonly bytes?: Buffer | undefined;
  readonly findings: readonly Finding[];
  /** The extraction's note that readers may disagree on this message (then nothing is cut). */
  readonly irregular?: string | undefined;
  readonly tmpdir: string;
  readonly maxHeaderBytes: number;
  readonly signal: AbortSignal;
  rescan(input: { path: string; size: number; bytes?: Buffer }): Promise<Verdict>;
}

export type StripOutcome =
  | {
    readonly kind: 'stripped';
    /** The virus names cut out, and where ("2", "3/invoice.zip"). */
    readonly names: readonly string[];
    readonly parts: readonly string[];
    readonly size: number;
    /** The rewritten message, when it is small (for a later effect that edits the headers). */
    readonly bytes?: Buffer | undefined;
    /** Writes the original back, byte for byte, and removes the kept copy. */
    undo(): Promise<void>;
    /** Removes the kept copy (the request is over). */
    dispose(): Promise<void>;
  }
  /** The data file is as it was; the caller drops the message. */
  | { readonly kind: 'drop'; readonly reason: string };

interface Target {
  readonly node: LayoutNode;
  readonly names: string[];
  /** What the note says was found where: "docs/a.com" inside the attachment, or "". */
  readonly members: string[];
}

type Plan = { readonly targets: Target[] } | { readonly drop: string };

const MIME_PATH = /^\d+(?:\.\d+)*$/;

/**
 * Which nodes to cut for these findings, or why none can be. Pure; exported for the tests.
 * `size`: the bytes the layout was made from.
 */
export function planStrip(findings: readonly Finding[], layout: Layout, size: number): Plan {
  if (layout.counted !== size) return { drop: `the MIME layout covers ${layout.counted} of ${size} bytes` };
  const byStart = new Map<number, Target>();
  const partNames = new Set<string>();
  const raw: Finding[] = [];
  for (const f of findings) {
    if (f.itemId === 'raw') {
      raw.push(f);
      continue;
    }
    let path: string;
    let member = '';
    if (f.reading === 'container' || f.container !== undefined) {
      const slash = f.itemId.indexOf('/');
      path = slash < 0 ? f.itemId : f.itemId.slice(0, slash);
      // "2/invoice.zip/docs/a.com": the member's path inside the attachment's file
      const rest = slash < 0 ? '' : f.itemId.slice(slash + 1);
      member = rest.slice(rest.indexOf('/') + 1);
    } else if (f.reading === undefined || f.reading === 'standard') {
      path = f.itemId;
    } else {
      return { drop: `${f.name} was found in the ${f.reading} reading of ${f.itemId}, not in a part of the standard reading` };
    }
    if (!MIME_PATH.test(path)) return { drop: `${f.name} was found at ${f.itemId}, not a MIME part` };
    const node = nodeAt(layout.root, path);
    if (node === undefined) return { drop: `${f.name} was found in part ${path}, which the layout does not have` };
    if (node === layout.root) return { drop: `${f.name} is in the whole message` };
    if (node.multipart) return { drop: `${f.name} is in multipart ${path}` };
    const t = byStart.get(node.start) ?? { node, names: [], members: [] };
    byStart.set(node.start, t);
    if (!t.names.includes(f.name)) t.names.push(f.name);
    // a part of an attached message: the note names it
    const inside = member !== '' ? member : node.path !== path ? `part ${path}` : '';
    if (inside !== '' && !t.members.includes(inside)) t.members.push(inside);
    partNames.add(f.name);
  }
  for (const f of raw) {
    if (!partNames.has(f.name)) return { drop: `${f.name} was found in the raw message only` };
  }
  if (byStart.size === 0) return { drop: 'no part to cut' };
  return { targets: [...byStart.values()].sort((a, b) => a.node.start - b.node.start) };
}

/** A name or text fit for the note: no control, line or direction-override characters, bounded. */
export function noteSafe(s: string): string {
  const clean = s.replace(/[\u0000-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069\ufeff]/g, '?');
  return clean.length > MAX_NAME_CHARS ? `${clean.slice(0, MAX_NAME_CHARS - 3)}...` : clean;
}

/**
 * The part that replaces a target: its own line ends, and a line end at the end when the
 * bytes it replaces had one (else the delimiter line that follows keeps its own).
 */
export function notePart(t: Target, eol: string, endsWithEol: boolean): Buffer {
  const lines = [
    'This attachment was removed by avfilter: it contained a virus.',
    '',
    `File: ${t.node.filename !== undefined ? noteSafe(t.node.filename) : '(no name)'}`,
    ...t.members.map((m) => `Inside: ${noteSafe(m)}`),
    `Virus: ${t.names.map(noteSafe).join(', ')}`,
  ];
  const text = lines.join(eol) + eol;
  const ascii = /^[\x00-\x7f]*$/.test(text);
  const body = ascii ? text : (Buffer.from(text, 'utf8').toString('base64').match(/.{1,76}/g) ?? []).join(eol) + eol;
  const head = [
    `Content-Type: text/plain; charset=${ascii ? 'us-ascii' : 'utf-8'}`,
    `Content-Transfer-Encoding: ${ascii ? '7bit' : 'base64'}`,
    'Content-Disposition: inline',
    'X-Avfilter-Removed: yes',
  ].join(eol) + eol + eol;
  const all = head + body;
  return Buffer.from(endsWithEol ? all : all.slice(0, -eol.length), ascii ? 'latin1' : 'utf8');
}

/** A stretch of the new message: bytes of the current one, or new bytes. */
type Piece = { readonly from: number; readonly to: number } | Buffer;

export async function stripMessage(input: StripInput): Promise<StripOutcome> {
  const { signal } = input;
  signal.throwIfAborted();
  if (input.irregular !== undefined) return { kind: 'drop', reason: `the message is irregular (${input.irregular})` };
  if (input.size === 0) return { kind: 'drop', reason: 'the message is empty' };
  let made: string | undefined;
  try {
    // the pid in the name lets the master remove what a killed worker left (master/tmp-sweep.ts)
    made = await mkdtemp(join(input.tmpdir, `hdr-${process.pid}-`));
    await copyFile(input.path, join(made, 'original'));
  } catch (err) {
    if (made !== undefined) await rm(made, { recursive: true, force: true }).catch(() => undefined);
    throw new AvError('ESTRIP_COPY', 'internal', `cannot keep a copy of the message in tmpdir: ${(err as NodeJS.ErrnoException).code ?? String(err)}`, { cause: err });
  }
  const dir = made;
  const original = join(dir, 'original');
  const state: RewriteState = { size: input.size, bytes: input.bytes, touched: false, from: input.size };
  // a small message is cut in memory; the original stays there too, for a quick way back
  if (state.bytes === undefined && input.size <= SMALL_FILE_BYTES) state.bytes = await readWhole(original, input.size).catch(async (err: unknown) => {
    await rm(dir, { recursive: true, force: true }).catch(() => undefined);
    throw writeError('read the message', err);
  });
  const originalBytes = state.bytes;
  const dispose = (): Promise<void> => rm(dir, { recursive: true, force: true }).catch(() => undefined);
  const restore = async (): Promise<void> => {
    if (!state.touched) return;
    const fh = await openForWrite(input.path);
    try {
      if (originalBytes !== undefined) await writeAll(fh, originalBytes.subarray(state.from), state.from);
      else await copyInto(fh, original, state.from, input.size, undefined);
      await fh.truncate(input.size);
      await fh.sync();
      state.touched = false;
    } catch (err) {
      throw writeError('write the original message back', err);
    } finally {
      await fh.close();
    }
  };
  const names: string[] = [];
  const parts: string[] = [];
  try {
    let findings = input.findings;
    for (let round = 1; ; round++) {
      const layout = await mimeLayout(state.bytes ?? createReadStream(input.path, { end: state.size - 1 }), input.maxHeaderBytes, signal);
      const plan = planStrip(findings, layout, state.size);
      if ('drop' in plan) {
        await restore();
        await dispose();
        return { kind: 'drop', reason: round === 1 ? plan.drop : `after ${round - 1} round(s) of stripping: ${plan.drop}` };
      }
      await rewrite(input, state, plan.targets, dir, signal);
      for (const t of plan.targets) {
        parts.push(t.node.path);
        for (const n of t.names) if (!names.includes(n)) names.push(n);
      }
      const again = await input.rescan({ path: input.path, size: state.size, ...(state.bytes !== undefined ? { bytes: state.bytes } : {}) });
      signal.throwIfAborted();
      if (again.kind === 'clean') break;
      if (again.kind !== 'infected' || round >= MAX_ROUNDS) {
        await restore();
        await dispose();
        const what = again.kind === 'infected' ? `still infected (${again.names.join(', ')}) after ${round} round(s)` : `${again.kind}${'code' in again ? ` ${again.code}` : ''}`;
        return { kind: 'drop', reason: `the stripped message did not scan clean: ${what}` };
      }
      findings = again.findings;
    }
  } catch (err) {
    await restore().catch(() => undefined);
    await dispose();
    throw err;
  }
  // the rewrite is done: a small original is in memory for the undo, its copy can go
  if (originalBytes !== undefined) await dispose();
  return {
    kind: 'stripped', names, parts, size: state.size, bytes: state.bytes,
    undo: async () => {
      try {
        await restore();
      } finally {
        await dispose();
      }
    },
    dispose,
  };
}

interface RewriteState {
  size: number;
  bytes: Buffer | undefined;
  /** The data file was written to (then a failure writes the original back). */
  touched: boolean;
  /** The first byte any round changed. */
  from: number;
}

/** The current message with the targets cut, written into the data file from the first cut on. */
async function rewrite(input: StripInput, state: RewriteState, targets: readonly Target[], dir: string, signal: AbortSignal): Promise<void> {
  const fh = await openForWrite(input.path);
  try {
    const pieces: Piece[] = [];
    let at = 0;
    for (const t of targets) {
      const { start, headerEnd, end } = t.node;
      // the layout's offsets must hold the header it read there, else nothing is cut
      const header = state.bytes !== undefined ? state.bytes.subarray(start, headerEnd) : await readRange(fh, start, headerEnd - start);
      if (!header.equals(t.node.header)) throw new AvError('ESTRIP_LAYOUT', 'internal', `part ${t.node.path} is not at the offset its layout says`);
      const last = end > start ? (state.bytes?.[end - 1] ?? (await readRange(fh, end - 1, 1))[0]) : undefined;
      pieces.push({ from: at, to: start }, notePart(t, lineEndOf(t.node.header), last === 0x0a));
      at = end;
    }
    pieces.push({ from: at, to: state.size });
    const from = targets[0]!.node.start;
    state.touched = true;
    state.from = Math.min(state.from, from);
    if (state.bytes !== undefined) {
      const cur = state.bytes;
      const next = Buffer.concat(pieces.map((p) => (Buffer.isBuffer(p) ? p : cur.subarray(p.from, p.to))));
      await writeAll(fh, next.subarray(from), from);
      await fh.truncate(next.length);
      state.bytes = next;
      state.size = next.length;
    } else {
      // a large message: built beside the original, then copied in from the first cut on
      const built = join(dir, 'stripped');
      const out = await open(built, 'w', 0o600);
      let size = 0;
      try {
        for (const p of pieces) {
          signal.throwIfAborted();
          if (Buffer.isBuffer(p)) {
            await writeAll(out, p, size);
            size += p.length;
          } else {
            await copyBetween(fh, out, p.from, p.to, size, signal);
            size += p.to - p.from;
          }
        }
      } finally {
        await out.close();
      }
      await copyInto(fh, built, from, size, signal);
      await fh.truncate(size);
      await rm(built, { force: true });
      state.size = size;
    }
    await fh.sync();
  } catch (err) {
    if (signal.aborted) throw signal.reason;
    throw writeError('write the stripped message', err);
  } finally {
    await fh.close();
  }
}

function lineEndOf(header: Buffer): string {
  const nl = header.indexOf(0x0a);
  return nl > 0 && header[nl - 1] === 0x0d ? '\r\n' : '\n';
}

/** file `src`[from, to) into `dst` at the same offsets. */
async function copyInto(dst: FileHandle, src: string, from: number, to: number, signal: AbortSignal | undefined): Promise<void> {
  const fh = await open(src, 'r');
  try {
    await copyBetween(fh, dst, from, to, from, signal);
  } finally {
    await fh.close();
  }
}

async function copyBetween(src: FileHandle, dst: FileHandle, from: number, to: number, at: number, signal: AbortSignal | undefined): Promise<void> {
  for (let pos = from; pos < to;) {
    signal?.throwIfAborted();
    const chunk = await readRange(src, pos, Math.min(COPY_CHUNK_BYTES, to - pos));
    await writeAll(dst, chunk, at + (pos - from));
    pos += chunk.length;
  }
}

async function readWhole(path: string, size: number): Promise<Buffer> {
  const fh = await open(path, 'r');
  try {
    return await readRange(fh, 0, size);
  } finally {
    await fh.close();
  }
}

/** What strip did to this request's message, for the headers effect after it. */
export interface Stripped {
  readonly names: readonly string[];
  readonly size: number;
  /** The rewritten message when it is small. */
  readonly bytes?: Buffer | undefined;
}

const strippedBy = new WeakMap<EffectState, Stripped>();

/** What strip did to the message of the request that owns `state`, if it cut anything. */
export function strippedOf(state: EffectState): Stripped | undefined {
  return strippedBy.get(state);
}

export const stripRunner: EffectRunner<'strip'> = {
  kind: 'strip',
  phase: 'commit',
  writes: true,
  failVerb: 'stripped',
  async run(_effect, env) {
    const v = env.verdict;
    if (v.kind !== 'infected') {
      env.state.dropInstead = `nothing to cut out of a ${v.kind} message`;
      return;
    }
    const irregular = env.fields['irregular'];
    const r = await stripMessage({
      path: env.data.readPath, size: env.data.size, bytes: env.bytes, findings: v.findings,
      irregular: typeof irregular === 'string' ? irregular : undefined,
      tmpdir: env.config.tmpdir, maxHeaderBytes: env.config.mime.max_header_size, signal: env.signal, rescan: env.rescan,
    });
    if (r.kind === 'drop') {
      env.state.dropInstead = r.reason;
      return;
    }
    env.fields['stripped'] = r.parts;
    strippedBy.set(env.state, { names: r.names, size: r.size, bytes: r.bytes });
    // The spine has no end-of-request call: the kept original (of a large message; a small one
    // is back in memory already) goes when the undo runs or once no undo can come any more,
    // after request_timeout (every effect of this request has ended by then).
    setTimeout(() => void r.dispose(), env.config.request_timeout * 1000).unref();
    return { undo: r.undo };
  },
};
