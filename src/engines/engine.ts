/**
 * The Engine seam: what every scanner (clamd, embedded YARA-X, later ICAP, command-line
 * scanners) offers the rest of avfilter.
 *
 * Owns: the types that cross the boundary between the scan pipeline and an engine.
 * Inputs: a ScanItem (bytes plus where they came from) and an AbortSignal carrying the deadline.
 * Outputs: an EngineResult, never a throw for an expected failure. "clean" is only ever returned
 * after the engine really looked at every byte; anything else is "error" with a stable code.
 */
import type { ScanSource } from '../bytes/sources.js';

/** The bytes an item carries (defined in src/bytes, below the engines and what feeds them). */
export type { ScanSource };

/** What is being scanned and where it came from, for reports and for engine choices. */
export interface ScanItem {
  /** "raw" for the whole message, else the MIME path ("1", "1.2", "2.1.3"). */
  readonly id: string;
  /** The raw message (engines that parse MIME themselves want it) or one decoded part. */
  readonly kind: 'raw' | 'part';
  readonly source: ScanSource;
  /** Decoded filename, for logs and policy; never used to decide whether to scan. */
  readonly filename?: string | undefined;
  /** Declared content type (lower case, no parameters). */
  readonly contentType?: string | undefined;
  /** How the bytes were obtained: transfer encoding and reading, e.g. "base64". */
  readonly encoding?: string | undefined;
  /** Which interpretation of an ambiguous message yielded this item ("standard" by default). */
  readonly reading?: string | undefined;
  /**
   * Set for a member taken out of a container by the container stage: the container's format
   * ("zip", "pdf", "mail"...). Then `id` is the path down to it ("2/invoice.zip/docs/a.exe").
   */
  readonly container?: string | undefined;
  /**
   * The raw message only, when one reading vouched for it (Extraction.decodedBodies): byte
   * ranges of `source`, in order, that are base64 bodies each scanned decoded as an item of
   * its own. An engine may leave them out of the raw message (clamd's raw_message = "text").
   */
  readonly decodedBodies?: ReadonlyArray<readonly [number, number]> | undefined;
  /**
   * The raw message only: one reading vouched for the message (Extraction.readings 1: in memory,
   * nothing irregular, read alike by every reader we know). An engine may then decline it
   * (Engine.declines; clamd's raw_message = "parts").
   */
  readonly readOnce?: boolean | undefined;
}

export type EngineResult =
  | { readonly status: 'clean' }
  /** `engine`: the engine that found it, when a composite engine (failover) answered for it. */
  | { readonly status: 'infected'; readonly names: readonly string[]; readonly engine?: string | undefined }
  | { readonly status: 'error'; readonly code: string; readonly message: string };

export interface Engine {
  /** Short, stable label for logs and --config -v, e.g. "clamd", "yara". */
  readonly label: string;
  /** Scan one item. Resolves with an error result (never rejects) for scanner faults. */
  scan(item: ScanItem, signal: AbortSignal): Promise<EngineResult>;
  /** Version text for `--config -v`; an engine that cannot tell says why. */
  version(signal: AbortSignal): Promise<string>;
  /** Release connections, handles and timers. */
  close(): Promise<void>;
  /**
   * What the engine's verdicts depend on besides the bytes (its signatures' version), for the
   * verdict cache; undefined when it cannot tell (then nothing of it is cached).
   */
  signatureVersion?(): string | undefined;
  /**
   * True for an item the admin configured this engine not to be given (clamd's raw_message =
   * "parts": the raw message of a message read one way). Routing leaves the pair out unless the
   * engine would then get nothing of the message (scan/route.ts). Without it, every item.
   * scan() must still scan a declined item it is given (a composite engine may pass it on).
   */
  declines?(item: ScanItem): boolean;
  /** False when the engine cannot scan now (every clamd server down): engine_mode = "failover" skips it. */
  healthy?(): boolean;
  /** The servers it talks to, as last seen (engines with servers: clamd); for the stats. */
  health?(): readonly ServerHealth[];
}

/** One server of an engine as this process last saw it (engines with servers: clamd). */
export interface ServerHealth {
  /** The address as configured, canonical form. */
  readonly server: string;
  /** Scans are sent to it (false: it failed without a verdict and has not answered a probe since). */
  readonly up: boolean;
  /** Attempts on it that failed without a verdict, since the engine started. */
  readonly failures?: number | undefined;
  /** The last such failure: code and message. */
  readonly lastError?: string | undefined;
}

/** Stable engine error codes; classify by these, never by message text. */
export const EngineErrorCode = {
  CONNECT: 'ECONNECT',
  CONNECT_TIMEOUT: 'ECONNECT_TIMEOUT',
  SCAN_TIMEOUT: 'ESCAN_TIMEOUT',
  SIZE_LIMIT: 'ESIZE_LIMIT',
  PROTOCOL: 'EPROTOCOL',
  SCANNER: 'ESCANNER',
  ABORTED: 'EABORTED',
  IO: 'EIO',
} as const;
