/**
 * The embedded engine (`type = "yara"`, the default when no engine is configured): YARA-X rules
 * scanned in-process, in worker threads, through the @litko/yara-x native binding.
 *
 * Owns: the Engine for YARA-X — size limit, deadline, abort, and turning matching rules into
 * names (meta `name` if the rule has one, else "YARA.<rule identifier>"; unique, rule order).
 * Inputs: YaraOptions; per scan a ScanItem (read whole into memory, so the size is checked
 * before reading) and an AbortSignal.
 * Outputs: createYaraEngine() throws a YaraError (EYARA_UNAVAILABLE, EYARA_NO_RULES,
 * EYARA_RULES_IO, EYARA_COMPILE; see rules.ts) so the config loader can report it and keep the
 * old engine. scan() never rejects: clean only after every byte went through the rules; an item
 * over maxScanBytes is ESIZE_LIMIT (fail closed, never clean), then ESCAN_TIMEOUT, EABORTED,
 * EIO (reading the item) and ESCANNER (binding or worker failure).
 */
import { createHash } from 'node:crypto';
import { availableParallelism } from 'node:os';
import { EngineErrorCode, type Engine, type EngineResult, type ScanItem } from '../engine.js';
import { ScanPool, type PoolOutcome } from './pool.js';
import { bindingVersion, loadBinding, type YaraScanner } from './binding.js';
import { hitsOf } from './worker.js';
import { COMPILE_OPTIONS, loadRules, type LoadedRules } from './rules.js';

export { DEFAULT_RULES_DIR, packageRulesDir, type LoadedRules } from './rules.js';
export { YaraError, YaraErrorCode } from './errors.js';

export interface YaraOptions {
  /** Directory of *.yar / *.yara files (not recursive). */
  rulesDir: string;
  /** Items larger than this are NOT scanned; the result is the error ESIZE_LIMIT (fail closed). */
  maxScanBytes: number;
  /** Deadline for one item: reading it, waiting for a worker, and the scan. */
  scanTimeoutMs: number;
  /** Scan threads (default: one per core, at most 4); a worker process of several gets its share. */
  scanThreads?: number | undefined;
}

export interface YaraEngine extends Engine {
  /** What was loaded, for `--config -v` and for logging the compiler's warnings. */
  readonly rules: LoadedRules;
}

/**
 * Scan threads. YARA scanning is CPU-bound, so more threads than cores only add memory (each
 * worker holds its own compiled rules and V8 isolate); four is enough for a mail filter's
 * concurrency, and waiting in the queue counts against scanTimeoutMs.
 */
const MAX_SCAN_WORKERS = 4;

/**
 * Matches YARA-X records per pattern (its default is 1,000,000). The binding turns every match
 * into a JS object with a copy of the bytes: measured 5 s and ~370 MB for one short pattern
 * over a 1 MB part. Rules that count more than this many occurrences (`#a > 10000`) see the cap.
 */
const MAX_MATCHES_PER_PATTERN = 10_000;

const TIMED_OUT = 'timeout';
/**
 * Items up to this size are scanned on the calling thread: handing them to a scan thread (a
 * message each way, a copy) costs more than the scan itself (tens of microseconds for a few
 * KB). The event loop is held for about as long; larger items go to the threads, where a slow
 * rule cannot hold it.
 */
const INLINE_SCAN_BYTES = 64 * 1024;

/** How far past our deadline YARA-X's own (second-grained) timeout is set. */
const NATIVE_TIMEOUT_SLACK_MS = 2000;
const ABORTED = 'aborted';

/** Loads and compiles the rules now (throws YaraError); scan threads start on first use. */
export function createYaraEngine(opts: YaraOptions): YaraEngine {
  checkOptions(opts);
  const { maxScanBytes, scanTimeoutMs } = opts;
  const rules = loadRules(opts.rulesDir);
  const pool = new ScanPool(
    {
      source: rules.source,
      compileOptions: COMPILE_OPTIONS,
      maxMatchesPerPattern: MAX_MATCHES_PER_PATTERN,
      // YARA-X checks its timeout against a clock that ticks once a second, so it can fire up
      // to a second early or late. The exact deadline is ours (below); the native one is only
      // the backstop that stops the thread's CPU work after we have answered.
      nativeTimeoutMs: scanTimeoutMs + NATIVE_TIMEOUT_SLACK_MS,
    },
    Math.max(1, Math.min(MAX_SCAN_WORKERS, opts.scanThreads ?? availableParallelism())),
  );
  let closed = false;
  // compiled on the first small item: a worker process that only sees large ones never pays it
  let inline: YaraScanner | undefined;
  const inlineScanner = (): YaraScanner => {
    if (inline === undefined) {
      inline = loadBinding().compile(rules.source, COMPILE_OPTIONS);
      inline.setMaxMatchesPerPattern(MAX_MATCHES_PER_PATTERN);
      inline.setTimeout?.(scanTimeoutMs + NATIVE_TIMEOUT_SLACK_MS);
    }
    return inline;
  };

  async function scan(item: ScanItem, signal: AbortSignal): Promise<EngineResult> {
    try {
      return await scanOnce(item, signal);
    } catch (err) {
      // A throwing ScanSource or a bug here: still an answer, and never "clean".
      const text = `YARA scan of ${describe(item)} failed: ${errorText(err)}`;
      return error(EngineErrorCode.SCANNER, text);
    }
  }

  async function scanOnce(item: ScanItem, signal: AbortSignal): Promise<EngineResult> {
    if (closed) return error(EngineErrorCode.SCANNER, 'YARA engine is closed');
    if (signal.aborted) return aborted(item);
    const size = item.source.size;
    if (!(size <= maxScanBytes)) return tooLarge(item, size, maxScanBytes);

    const deadline = new AbortController();
    const timer = setTimeout(() => deadline.abort(TIMED_OUT), scanTimeoutMs);
    const onAbort = (): void => deadline.abort(ABORTED);
    signal.addEventListener('abort', onAbort, { once: true });
    const stopped = (): EngineResult =>
      deadline.signal.reason === TIMED_OUT
        ? error(
            EngineErrorCode.SCAN_TIMEOUT,
            `YARA scan of ${describe(item)} took over ${scanTimeoutMs} ms`,
          )
        : aborted(item);
    try {
      if (size <= INLINE_SCAN_BYTES) {
        let buf: Buffer;
        try {
          buf = await item.source.buffer();
        } catch (err) {
          return error(EngineErrorCode.IO, `cannot read ${describe(item)}: ${errorText(err)}`);
        }
        if (buf.length > maxScanBytes) return tooLarge(item, buf.length, maxScanBytes);
        if (buf.length !== size) return error(EngineErrorCode.IO, `${describe(item)}: read ${buf.length} bytes, expected ${size}`);
        if (deadline.signal.aborted) return stopped();
        try {
          return resultOf({ kind: 'done', hits: hitsOf(inlineScanner().scan(buf)) }, item, stopped);
        } catch (err) {
          const cancelled = (err as { code?: unknown }).code === 'Cancelled';
          return error(cancelled ? EngineErrorCode.SCAN_TIMEOUT : EngineErrorCode.SCANNER, `${describe(item)}: YARA-X scan failed: ${errorText(err)}`);
        }
      }
      const path = item.source.path;
      if (path !== undefined) {
        // YARA-X reads the file itself: no copy of the item in this heap; the native side holds
        // it while it scans (the pool counts it by its size against the bytes in flight).
        const outcome = await pool.run({ path, size }, deadline.signal);
        return resultOf(outcome, item, stopped);
      }
      const bytes = Promise.resolve().then(() => item.source.buffer());
      const read = await untilAborted(bytes, deadline.signal);
      if (read.kind === 'aborted') return stopped();
      if (read.kind === 'failed') {
        return error(EngineErrorCode.IO, `cannot read ${describe(item)}: ${errorText(read.error)}`);
      }
      const buf = read.value;
      if (buf.length > maxScanBytes) return tooLarge(item, buf.length, maxScanBytes);
      if (buf.length !== size) {
        const text = `${describe(item)}: read ${buf.length} bytes, expected ${size}`;
        return error(EngineErrorCode.IO, text);
      }
      return resultOf(await pool.run(buf, deadline.signal), item, stopped);
    } finally {
      clearTimeout(timer);
      signal.removeEventListener('abort', onAbort);
    }
  }

  // The verdicts depend on the rules and on the YARA-X build that runs them.
  const signatures = createHash('sha256').update(bindingVersion()).update('\0').update(rules.source).digest('hex').slice(0, 32);
  return {
    label: 'yara',
    rules,
    scan,
    signatureVersion: () => signatures,
    healthy: () => !closed,
    async version(): Promise<string> {
      const n = rules.ruleCount;
      const count = `${n} rule${n === 1 ? '' : 's'}`;
      return `YARA-X (@litko/yara-x ${bindingVersion()}), ${count} from ${rules.dir}`;
    },
    async close(): Promise<void> {
      closed = true;
      await pool.close();
    },
  };
}

function resultOf(outcome: PoolOutcome, item: ScanItem, stopped: () => EngineResult): EngineResult {
  if (outcome.kind === 'aborted') return stopped();
  if (outcome.kind === 'failed') return error(outcome.code, `${describe(item)}: ${outcome.message}`);
  if (outcome.hits.length === 0) return { status: 'clean' };
  const names = new Set(outcome.hits.map((h) => h.metaName ?? `YARA.${h.rule}`));
  return { status: 'infected', names: [...names] };
}

function checkOptions(opts: YaraOptions): void {
  const bad = (key: string, want: string): never => {
    throw Object.assign(new RangeError(`yara engine option ${key} must be ${want}`), {
      code: 'ERR_INVALID_ARG_VALUE',
    });
  };
  const { rulesDir, maxScanBytes, scanTimeoutMs } = opts;
  if (typeof rulesDir !== 'string' || rulesDir === '') bad('rulesDir', 'a directory path');
  if (!Number.isSafeInteger(maxScanBytes) || maxScanBytes < 1) {
    bad('maxScanBytes', 'a positive integer');
  }
  // setTimeout's own ceiling (~24.8 days); past it Node fires after 1 ms.
  if (!Number.isSafeInteger(scanTimeoutMs) || scanTimeoutMs < 1 || scanTimeoutMs > 2 ** 31 - 1) {
    bad('scanTimeoutMs', 'an integer number of milliseconds between 1 and 2147483647');
  }
}

type Settled<T> =
  | { kind: 'ok'; value: T }
  | { kind: 'failed'; error: unknown }
  | { kind: 'aborted' };

/** Settles with the promise, or with 'aborted' as soon as the signal fires (the read goes on). */
function untilAborted<T>(promise: Promise<T>, signal: AbortSignal): Promise<Settled<T>> {
  return new Promise((resolve) => {
    const onAbort = (): void => resolve({ kind: 'aborted' });
    if (signal.aborted) onAbort();
    else signal.addEventListener('abort', onAbort, { once: true });
    promise.then(
      (value) => resolve({ kind: 'ok', value }),
      (err: unknown) => resolve({ kind: 'failed', error: err }),
    ).finally(() => signal.removeEventListener('abort', onAbort));
  });
}

function describe(item: ScanItem): string {
  return item.kind === 'raw' ? 'the raw message' : `part ${item.id}`;
}

function tooLarge(item: ScanItem, size: number, limit: number): EngineResult {
  return error(
    EngineErrorCode.SIZE_LIMIT,
    `${describe(item)} is ${size} bytes, over the YARA engine's maxScanBytes (${limit}); ` +
      'not scanned',
  );
}

function aborted(item: ScanItem): EngineResult {
  return error(EngineErrorCode.ABORTED, `YARA scan of ${describe(item)} aborted`);
}

function error(code: string, message: string): EngineResult {
  return { status: 'error', code, message };
}

function errorText(err: unknown): string {
  const code = (err as { code?: unknown } | null)?.code;
  const text = err instanceof Error ? err.message : String(err);
  return typeof code === 'string' && !text.includes(code) ? `${code}: ${text}` : text;
}
