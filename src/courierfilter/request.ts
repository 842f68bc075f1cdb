/**
 * Courier filter request reader (courier-filter-protocol.md §2.2).
 *
 * Owns: turning what submit writes on a filter socket (data path, one or more control paths,
 * each ending in "\n", then an empty line) into a CourierRequest. Pure codec: buffers in, values
 * out; it touches no socket and no file.
 * Inputs: chunks in arrival order, split anywhere; end() when the peer has half-closed.
 * Outputs: a ReadResult. Once it is 'done' or 'error' it is final: later calls return the same
 * value and later bytes are ignored (submit sends nothing after the empty line).
 * Fails with (stable codes, see RequestErrorCode): ELINE_TOO_LONG, ETOO_MANY_LINES, ENO_CONTROL,
 * ERELATIVE_PATH, EBAD_PATH, ETRUNCATED.
 *
 * Path decoding: strict UTF-8. Node encodes a string path as UTF-8 when it calls the kernel, so
 * a strict decode hands fs exactly the bytes submit sent. latin1 would silently name a different
 * file for any byte >= 0x80, and a lenient UTF-8 decode would turn bad bytes into U+FFFD. Bytes
 * that are not valid UTF-8 are EBAD_PATH (fail closed); Courier's paths are ASCII in practice
 * (/var/lib/courier/tmp/<T>/D<ino>).
 * Its constructor throws an AvError EINVALID_LIMITS (origin internal) for impossible limits.
 */
import { AvError } from '../errors.js';

export interface RequestLimits {
  /** Longest path line in bytes, without its "\n" (or "\r\n"). */
  maxLineBytes: number;
  /** Most path lines (data path plus control paths), not counting the empty line. */
  maxLines: number;
}

export interface CourierRequest {
  dataPath: string;
  controlPaths: string[];
}

export type ReadResult =
  | { state: 'incomplete' }
  | { state: 'done'; request: CourierRequest }
  | { state: 'error'; code: string; message: string };

export const RequestErrorCode = {
  LINE_TOO_LONG: 'ELINE_TOO_LONG',
  TOO_MANY_LINES: 'ETOO_MANY_LINES',
  NO_CONTROL: 'ENO_CONTROL',
  RELATIVE_PATH: 'ERELATIVE_PATH',
  BAD_PATH: 'EBAD_PATH',
  TRUNCATED: 'ETRUNCATED',
} as const;

export const DEFAULT_REQUEST_LIMITS: Readonly<RequestLimits> = Object.freeze({
  // Linux PATH_MAX is 4096 including the NUL; submit's paths are ~50 bytes.
  maxLineBytes: 4096,
  // One data path plus one control file per `batchsize` (default 100) recipients: 1000 control
  // files is 100,000 recipients, far above any SMTP transaction, yet bounds memory at ~4 MB.
  maxLines: 1001,
});

const LF = 0x0a;
const CR = 0x0d;
const INCOMPLETE: ReadResult = Object.freeze({ state: 'incomplete' }) as ReadResult;
// C0 controls, DEL and C1 controls: none belongs in a path Courier builds, and NUL would be
// cut short by the kernel (Node rejects it anyway).
const CONTROL_CHARS = /[\u0000-\u001f\u007f-\u009f]/;

export class RequestReader {
  readonly #limits: RequestLimits;
  // ignoreBOM keeps a leading U+FEFF as data: stripping it would hand fs a different name.
  readonly #utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });
  #partial: Buffer[] = [];
  #partialBytes = 0;
  #paths: string[] = [];
  #result: ReadResult = INCOMPLETE;

  constructor(limits: RequestLimits) {
    for (const key of ['maxLineBytes', 'maxLines'] as const) {
      const v = limits?.[key];
      if (!Number.isSafeInteger(v) || v < (key === 'maxLines' ? 2 : 1)) {
        throw new AvError('EINVALID_LIMITS', 'internal', `RequestReader: ${key} must be an integer >= ${key === 'maxLines' ? 2 : 1}, got ${String(v)}`);
      }
    }
    this.#limits = Object.freeze({ maxLineBytes: limits.maxLineBytes, maxLines: limits.maxLines });
  }

  /** Feed the next chunk. The reader copies what it keeps, so the caller may reuse `chunk`. */
  push(chunk: Buffer): ReadResult {
    if (this.#result.state !== 'incomplete') return this.#result;
    // A trailing "\r" is tolerated, so a partial line may be one byte over the limit until its
    // "\n" shows whether that byte was the "\r".
    const maxPartial = this.#limits.maxLineBytes + 1;
    let start = 0;
    while (start < chunk.length) {
      const nl = chunk.indexOf(LF, start);
      const end = nl === -1 ? chunk.length : nl;
      if (this.#partialBytes + (end - start) > maxPartial) return this.#tooLong();
      if (nl === -1) {
        this.#partial.push(Buffer.from(chunk.subarray(start)));
        this.#partialBytes += chunk.length - start;
        return this.#result;
      }
      const piece = chunk.subarray(start, nl);
      const line = this.#partialBytes === 0 ? piece : Buffer.concat([...this.#partial, piece]);
      this.#partial = [];
      this.#partialBytes = 0;
      this.#line(line);
      if (this.#result.state !== 'incomplete') return this.#result;
      start = nl + 1;
    }
    return this.#result;
  }

  /** The peer closed its side. Anything short of the empty line is ETRUNCATED. */
  end(): ReadResult {
    if (this.#result.state !== 'incomplete') return this.#result;
    const got = this.#paths.length;
    return this.#fail(
      RequestErrorCode.TRUNCATED,
      `request ended before the empty line (${got} path line(s) and ${this.#partialBytes} byte(s) of a partial line received)`,
    );
  }

  #line(raw: Buffer): void {
    const line = raw.length > 0 && raw[raw.length - 1] === CR ? raw.subarray(0, raw.length - 1) : raw;
    if (line.length > this.#limits.maxLineBytes) {
      this.#tooLong();
      return;
    }
    if (line.length === 0) {
      if (this.#paths.length < 2) {
        this.#fail(
          RequestErrorCode.NO_CONTROL,
          this.#paths.length === 0
            ? 'request has no lines (empty line first)'
            : 'request has a data path but no control file path',
        );
        return;
      }
      const [dataPath, ...controlPaths] = this.#paths as [string, ...string[]];
      this.#paths = [];
      this.#result = Object.freeze({ state: 'done', request: Object.freeze({ dataPath, controlPaths }) }) as ReadResult;
      return;
    }
    const lineNo = this.#paths.length + 1;
    if (this.#paths.length >= this.#limits.maxLines) {
      this.#fail(RequestErrorCode.TOO_MANY_LINES, `request has more than ${this.#limits.maxLines} path lines`);
      return;
    }
    let path: string;
    try {
      path = this.#utf8.decode(line);
    } catch {
      this.#fail(RequestErrorCode.BAD_PATH, `path on line ${lineNo} is not valid UTF-8`);
      return;
    }
    if (CONTROL_CHARS.test(path)) {
      this.#fail(RequestErrorCode.BAD_PATH, `path on line ${lineNo} contains a control character`);
      return;
    }
    if (!path.startsWith('/')) {
      // Courier has sent absolute paths since 2013; a relative one means something is off, and
      // guessing its base (/usr vs /var/lib/courier/tmp, the two readings in the docs) could
      // scan the wrong file.
      this.#fail(RequestErrorCode.RELATIVE_PATH, `path on line ${lineNo} is not absolute: ${JSON.stringify(path)}`);
      return;
    }
    this.#paths.push(path);
  }

  #tooLong(): ReadResult {
    return this.#fail(
      RequestErrorCode.LINE_TOO_LONG,
      `line ${this.#paths.length + 1} is longer than ${this.#limits.maxLineBytes} bytes`,
    );
  }

  #fail(code: string, message: string): ReadResult {
    this.#partial = [];
    this.#partialBytes = 0;
    this.#paths = [];
    this.#result = Object.freeze({ state: 'error', code, message }) as ReadResult;
    return this.#result;
  }
}
