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
 * Two formats (log_format): `text`, the key=value line above, and `json`, one object per line
 * (ts, level, then the same fields) whose strings are JSON-escaped and then have the same
 * unsafe characters as `\uXXXX` escapes (JSON.stringify leaves DEL, C1, bidi and U+2028 raw).
 * Two destinations (log_to): `stderr`, lines prefixed `avfilter: `, and `syslog` (syslog.ts),
 * bodies without the prefix (the syslog tag says avfilter) handed over with their level.
 * Fails with nothing: a sink that fails counts the line as lost (see log-writer.ts).
 */
import type { EventLevel, EventName } from './events.js';

export type LogValue = string | number | boolean | undefined | readonly string[];
export type LogFields = Record<string, LogValue>;

import { LEVELS, type Level } from './levels.js';

export { LEVELS, type Level };

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

/** How lines are written: log_format and log_to. */
export interface LogStyle {
  readonly format: 'text' | 'json';
  readonly to: 'stderr' | 'syslog';
}
export const STDERR_TEXT: LogStyle = Object.freeze({ format: 'text', to: 'stderr' });

export function formatFields(fields: LogFields): string {
  const parts: string[] = [];
  for (const [k, v] of Object.entries(fields)) {
    if (v === undefined) continue;
    const s = Array.isArray(v) ? v.join(',') : String(v);
    parts.push(`${k}=${quote(s)}`);
  }
  return parts.join(' ');
}

/** A value as JSON: strings cut like text values; arrays of strings; numbers and booleans as they are. */
function jsonValue(v: Exclude<LogValue, undefined>): unknown {
  if (typeof v === 'string') return v.length > MAX_VALUE_CHARS ? `${v.slice(0, MAX_VALUE_CHARS)}...` : v;
  if (Array.isArray(v)) return v.map((x: string) => jsonValue(x));
  if (typeof v === 'number' && !Number.isFinite(v)) return String(v);
  return v;
}

/**
 * One JSON object: `ts` (ISO 8601, UTC), `level`, then the fields. Whatever JSON.stringify
 * leaves raw that could disguise a line is escaped as `\uXXXX`, which JSON reads back as the
 * same character: the object parses to exactly the values logged.
 */
export function formatJson(level: Level, fields: LogFields, now = new Date()): string {
  const obj: Record<string, unknown> = { ts: now.toISOString(), level };
  for (const [k, v] of Object.entries(fields)) if (v !== undefined && k !== 'ts' && k !== 'level') obj[k] = jsonValue(v);
  return JSON.stringify(obj).replace(UNSAFE, jsonEscape);
}

/** `\uXXXX`, as a surrogate pair beyond U+FFFF (tag characters are format characters too). */
function jsonEscape(c: string): string {
  let out = '';
  for (let i = 0; i < c.length; i++) out += `\\u${c.charCodeAt(i).toString(16).padStart(4, '0')}`;
  return out;
}

/** A finished line in `style`: stderr lines end with a newline, syslog bodies do not. */
export function formatLine(level: Level, fields: LogFields, style: LogStyle = STDERR_TEXT): string {
  if (style.format === 'json') {
    const obj = formatJson(level, fields);
    return style.to === 'stderr' ? `${obj}\n` : obj;
  }
  const head = level === 'info' ? '' : `level=${level} `;
  return style.to === 'stderr' ? `avfilter: ${head}${formatFields(fields)}\n` : `${head}${formatFields(fields)}`;
}

/** Where finished lines go, with their level (syslog's severity). Must never throw. */
export type LogSink = (line: string, level: Level) => void;

export interface Logger {
  /** The one line per message. */
  message(fields: LogFields): void;
  /**
   * A life-cycle or fault event, registered in events.ts with the levels it may have (a name or
   * level not registered there does not compile); `level` defaults to info.
   */
  event<E extends EventName>(event: E, fields?: LogFields, level?: EventLevel<E>): void;
  /** True when lines of this level are written (to skip building expensive fields). */
  enabled(level: Level): boolean;
  /** Changes the least severe level written (a reload may change log_level). */
  setLevel?(level: Level): void;
  /** Sends later lines to `sink`, written in `style` (the daemon, once its config is read). */
  setOutput?(sink: LogSink, style: LogStyle): void;
}

/**
 * A logger writing lines in `style` to `sink`: by default `avfilter: [level=L ]key=value...`.
 * Info is the default level and is not spelled out in text lines; error and warning lines say
 * so, so an admin can grep them (and syslog severities come with log_to = "syslog").
 */
export function createLogger(sink: LogSink, minLevel: Level = 'info', style: LogStyle = STDERR_TEXT): Logger {
  let max = LEVELS.indexOf(minLevel);
  let out = sink;
  let how = style;
  const enabled = (level: Level): boolean => LEVELS.indexOf(level) <= max;
  const write = (level: Level, fields: LogFields): void => {
    if (!enabled(level)) return;
    try {
      out(formatLine(level, fields, how), level);
    } catch {
      // A sink must not throw; if one does anyway, the line is lost, never the process.
    }
  };
  return {
    message: (fields) => write('info', fields),
    event: (event, fields = {}, level = 'info' as never) => write(level, { event, ...fields }),
    enabled,
    setLevel: (level) => {
      max = LEVELS.indexOf(level);
    },
    setOutput: (s, st) => {
      out = s;
      how = st;
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

export function stderrLogger(minLevel: Level = 'info', format: LogStyle['format'] = 'text'): Logger {
  return createLogger(stderrSink(), minLevel, { format, to: 'stderr' });
}
