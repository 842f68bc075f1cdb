/**
 * The YARA-X native binding, loaded directly from its platform package.
 *
 * Owns: loading @litko/yara-x-linux-x64-gnu (the wrapper package @litko/yara-x cannot be used:
 * its lock entries for the darwin packages are not served by our registry) and the minimal typed
 * view of the part of its API avfilter uses. Written against 0.3.0; the optional members are
 * newer additions (0.7.x) that are used when present.
 * Inputs: nothing (module specifier fixed); `loadBindingFrom` exists for tests.
 * Outputs: a YaraBinding, or a YaraError with code EYARA_UNAVAILABLE that says which package is
 * missing and why (other platforms: the package is an optionalDependency and is simply absent).
 *
 * Why no scanAsync: in 0.3.0 `scanAsync` copies the data on a libuv thread but runs the scan in
 * the N-API resolve callback, i.e. on the JS main thread (measured: a 140 s scan with the event
 * loop blocked throughout, timers included). avfilter therefore calls the synchronous `scan`
 * inside a worker thread (see pool.ts), which keeps the main thread free with any version.
 */
import { createRequire } from 'node:module';
import { YaraError, YaraErrorCode } from './errors.js';

/** The platform package we depend on (optionalDependency in package.json). */
export const BINDING_PACKAGE = '@litko/yara-x-linux-x64-gnu';
/** The .node file inside it; required by path because the package has no JS entry point. */
export const BINDING_MODULE = `${BINDING_PACKAGE}/yara-x.linux-x64-gnu.node`;

/** A compiler diagnostic; `message` is the compiler's multi-line report with a "--> line:L:C". */
export interface YaraDiagnostic {
  readonly code: string;
  readonly message: string;
}

export interface YaraCompilerOptions {
  /** `include` directives; avfilter turns them off (every file in the directory is loaded). */
  enableIncludes?: boolean;
}

export interface YaraRuleMatch {
  readonly ruleIdentifier: string;
  readonly namespace: string;
  /** Rule meta; string and integer values as such, booleans as the string "unknown" (0.3.0). */
  readonly meta: Readonly<Record<string, unknown>>;
  readonly tags: readonly string[];
}

/** Compiled rules plus a cached scanner (the binding calls it YaraX). */
export interface YaraScanner {
  /** Scans synchronously on the calling thread; throws on scan errors (e.g. a native timeout). */
  scan(data: Buffer): YaraRuleMatch[];
  getWarnings(): YaraDiagnostic[];
  /** Caps the matches YARA-X records per pattern (each one becomes a JS object). */
  setMaxMatchesPerPattern(maxMatches: number): void;
  /** 0.7.x only: native scan timeout; a timed-out scan throws with code "Cancelled". */
  setTimeout?: (timeoutMs: number) => void;
  /** Scans a file by path on the calling thread (0.7.x); I/O failures throw "I/O error ...". */
  scanFile(path: string): YaraRuleMatch[];
  /** 0.7.x: asks scanFile to map the file (0.7.2 still holds the whole file in native memory while it scans). */
  setUseMmap?: (on: boolean) => void;
}

export interface YaraBinding {
  /** Throws an Error whose message starts "Compilation error (Ennn): ..." on the first error. */
  compile(source: string, options?: YaraCompilerOptions): YaraScanner;
  validate(
    source: string,
    options?: YaraCompilerOptions,
  ): { warnings: YaraDiagnostic[]; errors: YaraDiagnostic[] };
}

const loaded = new Map<string, YaraBinding>();

/** The binding, loaded once per thread. Throws YaraError EYARA_UNAVAILABLE. */
export function loadBinding(): YaraBinding {
  return loadBindingFrom(BINDING_MODULE);
}

/** Same as loadBinding() for another specifier, so tests can provoke the failure. */
export function loadBindingFrom(specifier: string): YaraBinding {
  const cached = loaded.get(specifier);
  if (cached) return cached;
  let mod: unknown;
  try {
    mod = createRequire(import.meta.url)(specifier);
  } catch (err) {
    const why = (err as NodeJS.ErrnoException).code === 'MODULE_NOT_FOUND'
      ? `it is not installed (an optional dependency published only for Linux x64 with glibc; ` +
        `this is ${process.platform}-${process.arch})`
      : `it failed to load: ${(err as Error).message}`;
    throw new YaraError(
      YaraErrorCode.UNAVAILABLE,
      `embedded YARA engine unavailable: cannot load the native package ${BINDING_PACKAGE} ` +
        `(${specifier}): ` +
        `${why}; configure another engine (e.g. type = "clamd") on this platform`,
      { cause: err },
    );
  }
  const b = mod as Partial<YaraBinding> | null;
  if (!b || typeof b.compile !== 'function' || typeof b.validate !== 'function') {
    throw new YaraError(
      YaraErrorCode.UNAVAILABLE,
      `embedded YARA engine unavailable: ${specifier} does not export compile() and validate()`,
    );
  }
  loaded.set(specifier, b as YaraBinding);
  return b as YaraBinding;
}

/** The binding's package version, e.g. "0.3.0"; "unknown" if its package.json is unreadable. */
export function bindingVersion(): string {
  try {
    const pkg = createRequire(import.meta.url)(`${BINDING_PACKAGE}/package.json`) as {
      version?: unknown;
    };
    return typeof pkg.version === 'string' ? pkg.version : 'unknown';
  } catch {
    return 'unknown';
  }
}
