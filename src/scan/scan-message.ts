/**
 * Scanning one message: the message file → MIME parts → every engine → one Verdict.
 *
 * This is a composition module: it joins src/mime, src/unpack (as the extraction's post
 * stage, container-stage.ts) and src/engines, which know nothing of each other. Inputs: the path of a message file (for a request, the /proc/self/fd path of the data
 * file already opened and checked, see worker/data-file.ts), the engines, MIME limits, a tmpdir
 * and an AbortSignal carrying the request's deadline. Output: a Verdict; it never throws (an
 * unexpected fault becomes an "error" verdict with origin "internal").
 *
 * Order of precedence: infected (we know enough to act) > banned > encrypted > limit > error >
 * clean; an
 * item an engine refuses for its size (ESIZE_LIMIT: clamd's StreamMaxLength, yara's max_scan_size)
 * was not scanned and is a limit. "clean" needs
 * every engine to have answered clean for every item routed to it (route.ts: every engine gets
 * the raw message, every decoded part and every container member).
 * [banned] (policy/banned.ts) is checked on the extraction's parts (MIME parts and container
 * members, with their names and types) before the engines run; with [banned] empty, the
 * default, the check is not there at all. A banned attachment does not stop the scan: a virus
 * found is the verdict (its action, its IP block), the banned part only when nothing is found.
 * Every error carries its origin: an engine's own failure is "scanner" (the one origin that
 * action.error = "accept" may pass), an abort is "abort", a temp-file failure "internal".
 */
import { readFile, stat } from 'node:fs/promises';
import { performance } from 'node:perf_hooks';
import type { Engine, EngineResult, ScanItem } from '../engines/engine.js';
import { EngineErrorCode } from '../engines/engine.js';
import { extractParts, MessageInput, MimeErrorCode, type MimeLimits } from '../mime/index.js';
import { codeOf, errorOriginOf, messageOf, type ErrorOrigin } from '../errors.js';
import { bufferSource, fileSource } from '../bytes/sources.js';
import { containerStage } from './container-stage.js';
import { route, type Job } from './route.js';
import { formatLabel, type UnpackOptions } from '../unpack/stage.js';
import { UnpackErrorCode, type ContainerFormat } from '../unpack/types.js';
import { uniqueNames, type Finding, type Verdict } from '../policy/verdict.js';
import type { Trace } from '../ops/trace.js';
import type { BannedCheck } from '../policy/banned.js';

export interface ScanDeps {
  readonly engines: readonly Engine[];
  readonly mimeLimits: MimeLimits;
  readonly tmpdir: string;
  /**
   * The container stage's limits and unpackers; absent or undefined: no unpacking
   * (unpack.enabled = false).
   */
  readonly unpack?: UnpackOptions | undefined;
  /** A message's debug trace (ops/trace.ts): set only when debug lines are written. */
  readonly trace?: Trace | undefined;
  /** [banned], compiled (policy/banned.ts); absent: nothing is banned, nothing is checked. */
  readonly banned?: BannedCheck | undefined;
  /** Told every engine result and its time in seconds (the worker's counters); must not throw. */
  readonly observe?: ScanObserver | undefined;
}

export type ScanObserver = (engine: string, r: EngineResult, seconds: number) => void;

export interface ScanReport {
  readonly verdict: Verdict;
  /** Distinct items handed to at least one engine (the raw message and decoded parts). */
  readonly items: number;
  readonly bytes: number;
  /** Why readers may disagree on this message (Extraction.irregular), for the log. */
  readonly irregular?: string | undefined;
}

/**
 * Messages up to this size are read into memory whole (most mail: text and an attachment of a
 * few hundred KB); a worker holds at most max_connections / workers of them at once.
 */
export const IN_MEMORY_MESSAGE_BYTES = 1024 * 1024;

/** How many scans of one message run at once: enough to overlap I/O, few enough to be fair. */
const ITEM_CONCURRENCY = 4;

/**
 * Extraction outcomes that are limits (the message is beyond what we unpack: the policy's
 * action.limit answers). Any other code from the extractor is a fault (a temp file that cannot
 * be written, a reading that failed): an internal error, 451 whatever action.limit says.
 */
const NOT_LIMITS: ReadonlySet<string> = new Set([MimeErrorCode.IO, MimeErrorCode.PARSE, MimeErrorCode.ABORTED, UnpackErrorCode.INTERNAL]);

/** Extraction outcomes that are a damaged container (action.damaged), not a resource limit. */
const DAMAGED: ReadonlySet<string> = new Set([UnpackErrorCode.CORRUPT, UnpackErrorCode.UNSUPPORTED]);

/** An engine threw instead of returning an error result: a bug of ours, not a scanner fault. */
const ENGINE_BUG = 'EENGINE_BUG';

const ABORTED: Verdict = { kind: 'error', code: 'ETIMEOUT', reason: 'request deadline reached', origin: 'abort' };

/** The message: a path, or a file already opened and checked (its size, and its bytes when it is small). */
export type MessageFile = string | { readonly path: string; readonly size: number; readonly bytes?: Buffer | undefined };

export async function scanMessage(msg: MessageFile, deps: ScanDeps, signal: AbortSignal): Promise<ScanReport> {
  try {
    return await scanMessageInner(msg, deps, signal);
  } catch (err) {
    if (signal.aborted) return { verdict: ABORTED, items: 0, bytes: 0 };
    return {
      verdict: { kind: 'error', code: codeOf(err) ?? 'EINTERNAL', reason: messageOf(err), origin: errorOriginOf(err) },
      items: 0, bytes: 0,
    };
  }
}

async function scanMessageInner(msg: MessageFile, deps: ScanDeps, signal: AbortSignal): Promise<ScanReport> {
  const path = typeof msg === 'string' ? msg : msg.path;
  const knownSize = typeof msg === 'string' ? undefined : msg.size;
  if (deps.engines.length === 0) {
    return { verdict: { kind: 'error', code: 'ENO_ENGINE', reason: 'no scan engine configured', origin: 'internal' }, items: 0, bytes: 0 };
  }
  let size = knownSize;
  if (size === undefined) {
    try {
      const st = await stat(path);
      if (!st.isFile()) return { verdict: { kind: 'error', code: 'ENOT_FILE', reason: 'not a regular file', origin: 'input' }, items: 0, bytes: 0 };
      size = st.size;
    } catch (err) {
      return { verdict: { kind: 'error', code: codeOf(err) ?? 'EIO', reason: 'cannot read message file', origin: 'input' }, items: 0, bytes: 0 };
    }
  }

  // A small message is read once, whole: every reading and every engine then works on that
  // buffer (no stream, no range reads, no second open). A large one is read in place.
  const given = typeof msg === 'string' ? undefined : msg.bytes;
  const whole = given ?? (size <= IN_MEMORY_MESSAGE_BYTES ? await readFile(path) : undefined);
  if (whole !== undefined && whole.length !== size) {
    return { verdict: { kind: 'error', code: 'EDATA_CHANGED', reason: `message file is ${whole.length} bytes, was ${size}`, origin: 'input' }, items: 0, bytes: 0 };
  }
  const raw: ScanItem = { id: 'raw', kind: 'raw', source: whole ? bufferSource(whole, path) : fileSource(path, size), reading: 'raw' };
  const input = whole ? MessageInput.fromBuffer(whole) : MessageInput.fromFile(path);
  const stage = deps.unpack !== undefined ? { postStage: containerStage(deps.unpack) } : {};
  const extraction = await extractParts(input, { limits: deps.mimeLimits, tmpdir: deps.tmpdir, signal, ...stage });
  try {
    const rawItem: ScanItem = {
      ...raw,
      ...(extraction.decodedBodies !== undefined ? { decodedBodies: extraction.decodedBodies } : {}),
      ...(extraction.readings === 1 ? { readOnce: true } : {}),
    };
    const items: ScanItem[] = [rawItem, ...extraction.parts.map((p) => ({
      id: p.path, kind: 'part' as const, source: p.source, filename: p.filename,
      contentType: p.contentType, encoding: p.encoding, reading: p.reading,
      ...(p.container !== undefined ? { container: p.container } : {}),
    }))];
    if (deps.trace !== undefined) traceExtraction(deps.trace, size, extraction, deps.unpack !== undefined);
    const jobs = route(items, deps.engines);
    const scanned = [...new Set(jobs.map((j) => j.item))];
    const bytes = scanned.reduce((n, i) => n + i.source.size, 0);
    const banned = deps.banned !== undefined ? await deps.banned(extraction.parts, signal) : undefined;
    if (banned !== undefined) deps.trace?.('banned', { name: banned.name, path: banned.path, rule: banned.rule });
    const { findings, firstError, sizeLimit } = await scanItems(jobs, signal, deps.trace, deps.observe);

    let verdict: Verdict;
    const limit = extraction.limit;
    const enc = extraction.encrypted ?? encryptedHeuristic(findings);
    if (findings.length > 0 && !(enc !== undefined && findings.every(isEncryptedHeuristic))) {
      verdict = { kind: 'infected', names: uniqueNames(findings), findings };
    }
    // refused for what it is, whatever else could not be read or scanned
    else if (banned !== undefined) verdict = { kind: 'banned', name: banned.name, path: banned.path, rule: banned.rule };
    else if (signal.aborted) verdict = ABORTED;
    // what nobody can scan: known, not a fault, and no other outcome would let it through
    else if (enc !== undefined) {
      const label = 'label' in enc ? enc.label : formatLabel(enc.format as ContainerFormat);
      verdict = { kind: 'encrypted', name: `Encrypted.${label}`, format: enc.format, path: enc.path };
    }
    // a container that cannot be read and never will be: not a resource limit (retrying cannot help)
    else if (limit && DAMAGED.has(limit.code) && limit.where !== undefined) {
      verdict = { kind: 'damaged', code: limit.code, reason: limit.message, name: limit.where.slice(limit.where.lastIndexOf('/') + 1), path: limit.where };
    }
    else if (limit && !NOT_LIMITS.has(limit.code)) verdict = { kind: 'limit', code: limit.code, reason: limit.message };
    else if (limit) verdict = { kind: 'error', code: limit.code, reason: limit.message, origin: 'internal' };
    else if (sizeLimit) verdict = { kind: 'limit', code: EngineErrorCode.SIZE_LIMIT, reason: sizeLimit.message };
    else if (firstError) verdict = { kind: 'error', code: firstError.code, reason: firstError.message, origin: firstError.origin };
    else verdict = { kind: 'clean', items: scanned.length };
    return { verdict, items: scanned.length, bytes, irregular: extraction.irregular };
  } finally {
    await extraction.dispose().catch(() => undefined);
  }
}

/** The mime and unpack stages of a message's trace, from what the extraction returned. */
function traceExtraction(trace: Trace, size: number, x: Awaited<ReturnType<typeof extractParts>>, unpacking: boolean): void {
  const members = x.parts.filter((p) => p.container !== undefined);
  trace('mime', { bytes: size, parts: x.parts.length - members.length, limit: x.limit?.code, irregular: x.irregular });
  if (unpacking) {
    trace('unpack', {
      members: members.length, containers: members.length > 0 ? [...new Set(members.map((p) => p.container!))] : undefined,
      encrypted: x.encrypted !== undefined ? x.encrypted.format : undefined,
    });
  }
}

/**
 * clamd with `AlertEncrypted yes` reports an encrypted archive as a find
 * (Heuristics.Encrypted.Zip, .RAR, .PDF...): it is the encrypted outcome, with action.encrypted's
 * answer (a 554 that says why), not a virus to drop. Only when nothing else was found.
 */
const ENCRYPTED_HEURISTIC = /^Heuristics\.Encrypted\.([A-Za-z0-9]+)$/;

function isEncryptedHeuristic(f: Finding): boolean {
  return ENCRYPTED_HEURISTIC.test(f.name);
}

function encryptedHeuristic(findings: readonly Finding[]): { format: string; path: string; label: string } | undefined {
  if (findings.length === 0 || !findings.every(isEncryptedHeuristic)) return undefined;
  const f = findings[0]!;
  const kind = ENCRYPTED_HEURISTIC.exec(f.name)![1]!;
  return { format: kind.toLowerCase(), path: f.itemId, label: kind };
}

interface ScanOutcome {
  findings: Finding[];
  firstError?: { code: string; message: string; origin: ErrorOrigin } | undefined;
  /** An item an engine would not take for its size: not scanned, a limit (action.limit). */
  sizeLimit?: { message: string } | undefined;
}

/** The (item, engine) jobs, a few at a time; stops starting new work once a virus is found. */
async function scanItems(jobs: readonly Job[], signal: AbortSignal, trace: Trace | undefined, observe: ScanObserver | undefined): Promise<ScanOutcome> {
  const out: ScanOutcome = { findings: [] };
  let next = 0;
  const worker = async () => {
    // an encrypted archive reported as a find (clamd's AlertEncrypted) does not stop the scan:
    // a virus elsewhere in the message must still be found (action.encrypted may pass it)
    while (next < jobs.length && !out.findings.some((f) => !isEncryptedHeuristic(f)) && !signal.aborted) {
      const { item, engine } = jobs[next++]!;
      const timed = trace !== undefined || observe !== undefined;
      const t0 = timed ? performance.now() : 0;
      const r = await safeScan(engine, item, signal);
      const took = timed ? performance.now() - t0 : 0;
      observe?.(engine.label, r, took / 1000);
      trace?.('engine', {
        engine: engine.label, item: item.id, bytes: item.source.size, status: r.status, scan_ms: Math.round(took),
        names: r.status === 'infected' ? r.names : undefined, code: r.status === 'error' ? r.code : undefined,
      });
      if (r.status === 'infected') {
        for (const name of r.names) {
          out.findings.push({
            name, engine: r.engine ?? engine.label, itemId: item.id, filename: item.filename, encoding: item.encoding, reading: item.reading,
            ...(item.container !== undefined ? { container: item.container } : {}),
          });
        }
      } else if (r.status === 'error' && r.code === EngineErrorCode.SIZE_LIMIT && !signal.aborted) {
        out.sizeLimit ??= { message: `${engine.label}: item ${item.id} (${item.source.size} bytes) is larger than the engine accepts` };
      } else if (r.status === 'error') {
        // An engine stopped by the request's abort (or by its own shutdown) has not failed.
        const origin: ErrorOrigin = r.code === EngineErrorCode.ABORTED || signal.aborted ? 'abort' : r.code === ENGINE_BUG ? 'internal' : 'scanner';
        if (out.firstError === undefined || (out.firstError.origin === 'scanner' && origin !== 'scanner')) {
          out.firstError = { code: r.code, message: `${engine.label}: ${r.message}`, origin };
        }
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(ITEM_CONCURRENCY, jobs.length) }, worker));
  return out;
}

/** An engine that throws (it should not) is a fault of ours, never clean and never "scanner". */
async function safeScan(engine: Engine, item: ScanItem, signal: AbortSignal): Promise<EngineResult> {
  try {
    return await engine.scan(item, signal);
  } catch (err) {
    return { status: 'error', code: EngineErrorCode.ABORTED === codeOf(err) ? EngineErrorCode.ABORTED : ENGINE_BUG, message: messageOf(err) };
  }
}
