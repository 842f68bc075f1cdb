/**
 * Log lines: one structured line per message (contract.md "Logs") and one per life-cycle event,
 * as `key=value` pairs; where they go is a LogSink (stderr for the command-line modes, the
 * log thread in the master, the IPC channel in a worker).
 *
 * Owns: the line format, escaping, levels and the Logger every part of avfilter logs through.
 * A value never carries anything that could forge or disguise a line: C0 and C1 controls, DEL,
 * line and paragraph separators, bidi and other invisible format characters are escaped
 * (`\x85`, `\u202e`), so what an attacker put in an address or a virus name is shown, not
 * obeyed. Values with spaces, quotes, `=` or backslashes are quoted.
 * Fails with nothing: a sink that fails counts the line as lost (see log-writer.ts).
 */

export type LogValue = string | number | boolean | undefined | readonly string[];
export type LogFields = Record<string, LogValue>;

export type Level = 'error' | 'warning' | 'info' | 'debug';
export const LEVELS: readonly Level[] = ['error', 'warning', 'info', 'debug'];

/** Longest value written; more is cut and marked. */
const MAX_VALUE_CHARS = 1000;

/**
 * Characters that must not reach a log line as they are: Cc (C0, DEL, C1), Cf (bidi
 * overrides, zero-width, BOM, ...), Zl/Zp (U+2028, U+2029), and lone surrogates (Cs).
 */
const UNSAFE = /[\p{Cc}\p{Cf}\p{Zl}\p{Zp}\p{Cs}]/gu;
const HAS_UNSAFE = /[\p{Cc}\p{Cf}\p{Zl}\p{Zp}\p{Cs}]/u;
const NEEDS_QUOTES = /[\s"=\\]/;

function escapeChar(c: string): string {
  const n = c.codePointAt(0)!;
  return n <= 0xff ? `\\x${n.toString(16).padStart(2, '0')}` : `\\u${n.toString(16).padStart(4, '0')}`;
}

/**
 * A value as written: bare when it is plain, else in double quotes with `"` and `\` escaped by a
 * backslash and every unsafe character as `\xHH` / `\uHHHH` (so the escape cannot be confused
 * with a backslash that was in the value).
 */
export function quote(s: string): string {
  const cut = s.length > MAX_VALUE_CHARS ? `${s.slice(0, MAX_VALUE_CHARS)}...` : s;
  if (cut === '') return '""';
  if (!NEEDS_QUOTES.test(cut) && !HAS_UNSAFE.test(cut)) return cut;
  return `"${cut.replace(/["\\]/g, (c) => `\\${c}`).replace(UNSAFE, escapeChar)}"`;
}

export function formatFields(fields: LogFields): string {
  const parts: string[] = [];
  for (const [k, v] of Object.entries(fields)) {
    if (v === undefined) continue;
    const s = Array.isArray(v) ? v.join(',') : String(v);
    parts.push(`${k}=${quote(s)}`);
  }
  return parts.join(' ');
}

/** Where finished lines go. Must never throw. */
export type LogSink = (line: string) => void;

export interface Logger {
  /** The one line per message. */
  message(fields: LogFields): void;
  /** A life-cycle or fault event; `level` defaults to info. */
  event(event: string, fields?: LogFields, level?: Level): void;
  /** True when lines of this level are written (to skip building expensive fields). */
  enabled(level: Level): boolean;
  /** Changes the least severe level written (a reload may change log_level). */
  setLevel?(level: Level): void;
}

/**
 * A logger writing `avfilter: [level=L ]key=value...` lines to `sink`. Info is the default
 * level and is not spelled out; error and warning lines say so, so an admin can grep them
 * (and syslog severities come with log_to = "syslog").
 */
export function createLogger(sink: LogSink, minLevel: Level = 'info'): Logger {
  let max = LEVELS.indexOf(minLevel);
  const enabled = (level: Level): boolean => LEVELS.indexOf(level) <= max;
  const write = (level: Level, fields: LogFields): void => {
    if (!enabled(level)) return;
    const head = level === 'info' ? '' : `level=${level} `;
    try {
      sink(`avfilter: ${head}${formatFields(fields)}\n`);
    } catch {
      // A sink must not throw; if one does anyway, the line is lost, never the process.
    }
  };
  return {
    message: (fields) => write('info', fields),
    event: (event, fields = {}, level = 'info') => write(level, { event, ...fields }),
    enabled,
    setLevel: (level) => {
      max = LEVELS.indexOf(level);
    },
  };
}

/**
 * Writes to this process's stderr (the command-line modes). A closed or broken stderr loses
 * lines, never the process: the stream's error is swallowed once and for all.
 */
export function stderrSink(): LogSink {
  guardStderr();
  return (line) => {
    if (process.stderr.destroyed || !process.stderr.writable) return;
    process.stderr.write(line);
  };
}

let guarded = false;
/** An EPIPE on stderr (its reader went away) must not become an uncaught 'error' event. */
export function guardStderr(): void {
  if (guarded) return;
  guarded = true;
  process.stderr.on('error', () => undefined);
  process.stdout.on('error', () => undefined);
}

/** Node's own warnings (MaxListenersExceeded, deprecations) as our key=value lines. */
export function routeWarnings(log: Logger): void {
  process.removeAllListeners('warning');
  process.on('warning', (w: Error & { code?: string }) => {
    log.event('node-warning', { name: w.name, code: w.code, reason: w.message }, 'warning');
  });
}

export function stderrLogger(minLevel: Level = 'info'): Logger {
  return createLogger(stderrSink(), minLevel);
}
