/**
 * Scan worker thread: compiles the rule set once, then scans one buffer per message with the
 * binding's synchronous scan(). Runs only inside a worker_threads Worker started by pool.ts.
 *
 * Why a thread: the binding's scan is CPU-bound native code that cannot be interrupted, and
 * 0.3.0's scanAsync runs it on the JS main thread (see binding.ts). Here a slow scan blocks only
 * this thread; the pool answers the caller at the deadline and retires the thread.
 * Inputs: workerData (WorkerInit); messages { id, data } with data a Uint8Array.
 * Outputs: one WorkerReply per message; { type: 'fatal' } once if the rules do not compile here.
 * Never throws out of a handler: every failure becomes a reply.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { EngineErrorCode } from '../engine.js';
import { loadBinding, type YaraCompilerOptions, type YaraRuleMatch, type YaraScanner } from './binding.js';

export interface WorkerInit {
  readonly source: string;
  readonly compileOptions: YaraCompilerOptions;
  readonly maxMatchesPerPattern: number;
  /** Native scan timeout where the binding supports it (0.7.x); 0.3.0 ignores it. */
  readonly nativeTimeoutMs: number;
}

/** Bytes to scan, or the path of a file holding them (read by YARA-X itself, never copied into this heap). */
export type WorkerRequest =
  | { readonly id: number; readonly data: Uint8Array; readonly path?: undefined }
  | { readonly id: number; readonly path: string; readonly data?: undefined };

/** One matching rule: its identifier and its meta `name` when that is a non-empty string. */
export interface RuleHit {
  readonly rule: string;
  readonly metaName?: string | undefined;
}

export type WorkerReply =
  | { readonly type: 'result'; readonly id: number; readonly hits: readonly RuleHit[] }
  | { readonly type: 'error'; readonly id: number; readonly code: string; readonly message: string }
  | { readonly type: 'fatal'; readonly message: string };

/** Matching rules as hits: the rule and its meta `name` when that is a non-empty string. */
export function hitsOf(matches: readonly YaraRuleMatch[]): RuleHit[] {
  return matches.map((m): RuleHit => {
    const name = m.meta['name'];
    const metaName = typeof name === 'string' && name.trim() !== '' ? name.trim() : undefined;
    return { rule: m.ruleIdentifier, metaName };
  });
}

const EMPTY = Buffer.alloc(0);
/** After an item this large (and after every file), an empty scan makes the scanner let go of it. */
const RELEASE_AFTER_BYTES = 1024 * 1024;

function start(): void {
  const port = parentPort;
  if (!port) return; // imported outside a worker: nothing to do
  const init = workerData as WorkerInit;
  let scanner: YaraScanner;
  try {
    scanner = loadBinding().compile(init.source, init.compileOptions);
    scanner.setMaxMatchesPerPattern(init.maxMatchesPerPattern);
    scanner.setTimeout?.(init.nativeTimeoutMs);
    // Asked to map files; measured with 0.7.2, scanFile still holds the whole file in native
    // memory during the scan, mapped or not (the empty scan after it gives it back).
    scanner.setUseMmap?.(true);
  } catch (err) {
    const message = `scan worker cannot compile the rules: ${String(err)}`;
    const fatal: WorkerReply = { type: 'fatal', message };
    port.postMessage(fatal);
    return;
  }
  port.on('message', (req: WorkerRequest) => {
    let reply: WorkerReply;
    try {
      const matches = req.path !== undefined
        ? scanner.scanFile(req.path)
        : scanner.scan(Buffer.from(req.data.buffer, req.data.byteOffset, req.data.byteLength));
      const hits = hitsOf(matches);
      reply = { type: 'result', id: req.id, hits };
    } catch (err) {
      // The binding's napi errors carry a status as `code`; "Cancelled" is its native timeout.
      const status = (err as { code?: unknown }).code;
      const io = req.path !== undefined && /I\/O error/.test(String((err as Error).message));
      reply = {
        type: 'error',
        id: req.id,
        code: status === 'Cancelled' ? EngineErrorCode.SCAN_TIMEOUT : io ? EngineErrorCode.IO : EngineErrorCode.SCANNER,
        message: `YARA-X scan failed: ${(err as Error).message ?? String(err)}`,
      };
    }
    port.postMessage(reply);
    // The scanner keeps what its last scan needed (a file's bytes, read whole, the match lists)
    // until the next scan: after a file or a large buffer, an empty scan now lets a thread that
    // waits for work hold nothing of it (measured: a 100 MB file's 95 MB of anonymous memory,
    // released by the empty scan). After a small buffer there is little to let go of, and the
    // extra scan would cost every small part.
    if (req.path !== undefined || req.data.byteLength >= RELEASE_AFTER_BYTES) {
      try {
        scanner.scan(EMPTY);
      } catch {
        // nothing held is worth a fault
      }
    }
  });
}

start();
