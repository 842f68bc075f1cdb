/**
 * Config loading: TOML text → validated, frozen Config, driven by the tables in schema.ts.
 *
 * Inputs: a file path (or none: built-in defaults). Outputs: a frozen Config.
 * Fails with ConfigError (code ECONFIG_*) naming the file, the line (when it can be found) and the
 * key, so an admin can fix the file without guessing. A missing *default* file means defaults; a
 * missing *named* file is an error.
 */
import { readFileSync } from 'node:fs';
import { parse as parseToml, TomlError } from 'smol-toml';
import { parseServer } from './address.js';
import { parseIcapUrl } from './icap-url.js';
import { parseMetricsAddress } from './metrics-address.js';
import {
  ACTION_KEYS, DEFAULT_CONFIG_PATH, ENGINE_KEYS, FUTURE_ENGINE_TYPES, MIME_KEYS, TOP_KEYS, UNPACK_KEYS,
  type KeySpec,
} from './schema.js';

export interface ClamdEngineConfig {
  readonly type: 'clamd';
  readonly servers: readonly string[];
  readonly max_scans_per_server: number;
  readonly connect_timeout: number;
  readonly scan_timeout: number;
  readonly max_stream_size: number;
  readonly chunk_size: number;
  readonly raw_message: 'mail' | 'data';
  readonly reload_clamd: boolean;
}
export interface YaraEngineConfig {
  readonly type: 'yara';
  readonly rules: string;
  readonly max_scan_size: number;
  readonly scan_timeout: number;
}
export interface IcapEngineConfig {
  readonly type: 'icap';
  readonly url: string;
  readonly connect_timeout: number;
  readonly scan_timeout: number;
  readonly max_size: number;
  readonly max_connections: number;
}
export interface CommandEngineConfig {
  readonly type: 'command';
  readonly command: readonly string[];
  readonly version_command: readonly string[];
  readonly scan_timeout: number;
  readonly max_processes: number;
  readonly max_size: number;
  readonly clean_exit: readonly number[];
  readonly infected_exit: readonly number[];
  readonly name_pattern: string;
}
export type EngineConfig = ClamdEngineConfig | YaraEngineConfig | IcapEngineConfig | CommandEngineConfig;

export interface Config {
  readonly source: string; // file the config came from, or "(built-in defaults)"
  readonly all_mode: boolean;
  readonly socket_dir_all: string;
  readonly socket_dir_optional: string;
  readonly pid_file: string;
  readonly pipe: string;
  readonly watch: boolean;
  readonly tmpdir: string;
  readonly quarantine_dir: string;
  readonly quarantine_sendmail: readonly string[];
  readonly waitfile: string;
  readonly request_timeout: number;
  readonly request_read_timeout: number;
  readonly max_connections: number;
  readonly workers: number;
  readonly worker_memory_limit: number;
  readonly worker_idle_memory_limit: number;
  readonly memory_budget: number;
  readonly spool_dirs: readonly string[];
  readonly metrics: string;
  readonly log_level: 'error' | 'warning' | 'info' | 'debug';
  readonly log_to: 'stderr' | 'syslog';
  readonly log_format: 'text' | 'json';
  readonly syslog_socket: string;
  readonly shutdown_timeout: number;
  readonly max_request_line: number;
  readonly max_request_lines: number;
  readonly max_control_size: number;
  readonly engine_mode: 'all' | 'failover';
  readonly cache: string;
  readonly cache_ttl: number;
  readonly cache_size: number;
  readonly engine: readonly EngineConfig[];
  /**
   * Where `engine` came from: the config's [[engine]] tables, or, with none, the default:
   * clamd at the distribution's socket when one answered there, else the embedded engine.
   */
  readonly engine_origin: EngineOrigin;
  readonly action: {
    readonly infected: 'drop' | 'reject' | 'tempfail' | 'pass';
    readonly error: 'tempfail' | 'accept';
    readonly quarantine: boolean;
    readonly limit: 'tempfail' | 'reject';
    readonly encrypted: 'reject' | 'tempfail' | 'pass';
  };
  readonly mime: {
    readonly max_depth: number;
    readonly max_parts: number;
    readonly max_header_size: number;
    readonly max_decoded_size: number;
    readonly memory_part_size: number;
    readonly max_expansion_ratio: number;
    readonly allow_partial: boolean;
  };
  readonly unpack: {
    readonly enabled: boolean;
    readonly max_depth: number;
    readonly max_members: number;
    readonly max_size: number;
    readonly max_ratio: number;
    readonly max_time: number;
  };
}

export type EngineOrigin = 'configured' | 'default-clamd' | 'default-embedded';

/**
 * What parsing needs besides the text: the default engine, decided once by whoever probed for a
 * clamd (app/default-engine.ts) and handed as it is to every process that parses the same text,
 * so the master and its workers always agree.
 */
export interface ParseOptions {
  /** With no [[engine]]: clamd at this socket (it answered) instead of the embedded engine. */
  readonly defaultClamdSocket?: string | undefined;
}

/** The options that make parseConfig give `cfg` again from the same text. */
export function parseOptionsOf(cfg: Config): ParseOptions {
  const e = cfg.engine[0];
  if (cfg.engine_origin === 'default-clamd' && e?.type === 'clamd') {
    return { defaultClamdSocket: e.servers[0]!.replace(/^unix:/, '') };
  }
  return {};
}

export class ConfigError extends Error {
  readonly code: string;
  constructor(code: string, message: string) {
    super(message);
    this.code = code;
    this.name = 'ConfigError';
  }
}

/** Which file to read: -f wins, then $AVFILTER_CONFIG, then the default path. */
export function configPath(explicit: string | undefined, env: NodeJS.ProcessEnv = process.env): { path: string; named: boolean } {
  if (explicit) return { path: explicit, named: true };
  if (env['AVFILTER_CONFIG']) return { path: env['AVFILTER_CONFIG'], named: true };
  return { path: DEFAULT_CONFIG_PATH, named: false };
}

export function loadConfig(explicit?: string, env: NodeJS.ProcessEnv = process.env): Config {
  const { text, source } = readConfigText(explicit, env);
  return parseConfig(text, source);
}

/** The config file's text and the name it is reported under (a missing default file: ''). */
export interface ConfigText {
  readonly text: string;
  readonly source: string;
}

export const BUILT_IN = '(built-in defaults)';

export function readConfigText(explicit?: string, env: NodeJS.ProcessEnv = process.env): ConfigText {
  const { path, named } = configPath(explicit, env);
  try {
    return { text: readFileSync(path, 'utf8'), source: path };
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' && !named) return { text: '', source: BUILT_IN };
    throw new ConfigError('ECONFIG_READ', `${path}: cannot read config file: ${code ?? String(err)}`);
  }
}

/** Where a key is written, for messages about values found wrong after parsing: "FILE:LINE" or "FILE". */
export function whereIs(cfg: Config, keyPath: string): string {
  const lines = textOf.get(cfg);
  const line = lines ? findKeyLine(lines, keyPath) : undefined;
  return line ? `${cfg.source}:${line}` : cfg.source;
}

const textOf = new WeakMap<object, string[]>();

/** Parse and validate TOML text; `file` is only used in messages. */
export function parseConfig(text: string, file: string, opts: ParseOptions = {}): Config {
  let doc: Record<string, unknown>;
  try {
    doc = parseToml(text) as Record<string, unknown>;
  } catch (err) {
    if (err instanceof TomlError) {
      throw new ConfigError('ECONFIG_SYNTAX', `${file}:${err.line}: ${firstLine(err.message)}`);
    }
    throw new ConfigError('ECONFIG_SYNTAX', `${file}: ${String(err)}`);
  }
  const ctx = { file, lines: text.split('\n') };
  const out: Record<string, unknown> = { source: file };
  const known = new Set([...TOP_KEYS.map((k) => k.key), 'engine', 'action', 'mime', 'unpack']);
  for (const key of Object.keys(doc)) {
    if (!known.has(key)) throw keyError(ctx, key, `unknown key "${key}"${suggest(key, TOP_KEYS)}`);
  }
  const top = Object.fromEntries(Object.entries(doc).filter(([k]) => !['engine', 'action', 'mime', 'unpack'].includes(k)));
  Object.assign(out, readTable(ctx, '', top, TOP_KEYS));
  if ((out['spool_dirs'] as string[]).some((d) => d === '/')) {
    throw keyError(ctx, 'spool_dirs', '"spool_dirs" must not contain "/"; use [] to allow any path');
  }
  const cache = out['cache'] as string;
  if (cache !== '' && cache !== 'memory' && !isRedisUrl(cache)) {
    throw keyError(ctx, 'cache', '"cache" must be "", "memory" or "redis://HOST:PORT" (with an optional :PASSWORD@ and /DB)');
  }
  out['action'] = Object.freeze(readTable(ctx, 'action.', subTable(ctx, doc, 'action'), ACTION_KEYS));
  out['mime'] = Object.freeze(readTable(ctx, 'mime.', subTable(ctx, doc, 'mime'), MIME_KEYS));
  out['unpack'] = Object.freeze(readTable(ctx, 'unpack.', subTable(ctx, doc, 'unpack'), UNPACK_KEYS));
  out['engine'] = Object.freeze(readEngines(ctx, doc['engine'], opts));
  out['engine_origin'] = doc['engine'] !== undefined ? 'configured' : opts.defaultClamdSocket ? 'default-clamd' : 'default-embedded';
  const cfg = Object.freeze(out) as unknown as Config;
  textOf.set(cfg, ctx.lines);
  return cfg;
}

interface Ctx { file: string; lines: string[] }

function isRedisUrl(s: string): boolean {
  try {
    const u = new URL(s);
    return (u.protocol === 'redis:' || u.protocol === 'rediss:') && u.hostname !== '' && (u.pathname === '' || /^\/\d{0,2}$/.test(u.pathname));
  } catch {
    return false;
  }
}

function subTable(ctx: Ctx, doc: Record<string, unknown>, name: string): Record<string, unknown> {
  const v = doc[name];
  if (v === undefined) return {};
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw keyError(ctx, name, `"${name}" must be a table ([${name}])`);
  return v as Record<string, unknown>;
}

function readEngines(ctx: Ctx, raw: unknown, opts: ParseOptions): Record<string, unknown>[] {
  if (raw === undefined) {
    // No engine named: the clamd found answering (it has real signatures), else the embedded
    // engine, so a fresh install scans without any daemon (with its shipped rules only).
    if (opts.defaultClamdSocket) {
      return [Object.freeze(readTable(ctx, 'engine.', { servers: [`unix:${opts.defaultClamdSocket}`] }, ENGINE_KEYS['clamd']!, { type: 'clamd' }))];
    }
    return [Object.freeze(readTable(ctx, 'engine.', {}, ENGINE_KEYS['yara']!, { type: 'yara' }))];
  }
  if (!Array.isArray(raw) || raw.length === 0) throw keyError(ctx, 'engine', 'use one [[engine]] table per engine');
  return raw.map((e, i) => {
    const where = `engine[${i}].`;
    if (typeof e !== 'object' || e === null || Array.isArray(e)) throw keyError(ctx, where.slice(0, -1), `${where.slice(0, -1)} must be a table`);
    const t = (e as Record<string, unknown>)['type'];
    if (typeof t !== 'string') throw keyError(ctx, `${where}type`, `${where}type is required: ${ENGINE_TYPES}`);
    if (FUTURE_ENGINE_TYPES.includes(t)) {
      throw keyError(ctx, `${where}type`, `${where}type = "${t}" is not available in this version of avfilter; use ${ENGINE_TYPES}`);
    }
    // Own keys only: "constructor" or "__proto__" would find Object's members, not a spec.
    const spec = Object.hasOwn(ENGINE_KEYS, t) ? ENGINE_KEYS[t] : undefined;
    if (!spec) throw keyError(ctx, `${where}type`, `${where}type = "${t}" is unknown; use ${ENGINE_TYPES}`);
    const rest = { ...(e as Record<string, unknown>) };
    delete rest['type'];
    return Object.freeze(readTable(ctx, where, rest, spec, { type: t }));
  });
}

function readTable(ctx: Ctx, prefix: string, table: Record<string, unknown>, specs: readonly KeySpec[], seed: Record<string, unknown> = {}): Record<string, unknown> {
  const out: Record<string, unknown> = { ...seed };
  const byKey = new Map(specs.map((s) => [s.key, s]));
  for (const key of Object.keys(table)) {
    if (!byKey.has(key)) {
      throw keyError(ctx, prefix + key, `unknown key "${prefix}${key}"${suggest(key, specs)}`);
    }
  }
  for (const spec of specs) {
    const v = table[spec.key];
    if (v === undefined && spec.default === undefined) {
      // not in the file: findKeyLine then names the line of the table's header
      throw keyError(ctx, prefix + spec.key, `"${prefix}${spec.key}" is required: ${spec.doc}`);
    }
    out[spec.key] = v === undefined ? cloneDefault(spec.default) : coerce(ctx, prefix, spec, v);
  }
  return out;
}

/** The engine types a config may name, for messages: "clamd", "yara", "icap" or "command". */
const ENGINE_TYPES = ((types: string[]) => `${types.slice(0, -1).map((x) => `"${x}"`).join(', ')} or "${types.at(-1)}"`)(
  Object.keys(ENGINE_KEYS).filter((t) => !FUTURE_ENGINE_TYPES.includes(t)),
);

function cloneDefault(v: unknown): unknown {
  return Array.isArray(v) ? Object.freeze([...v]) : v;
}

function coerce(ctx: Ctx, prefix: string, spec: KeySpec, v: unknown): unknown {
  const name = prefix + spec.key;
  const fail = (want: string) => keyError(ctx, name, `"${name}" ${want}, got ${JSON.stringify(v)}`);
  const t = spec.type;
  switch (t.kind) {
    case 'bool':
      if (typeof v !== 'boolean') throw fail('must be true or false');
      return v;
    case 'string':
      if (typeof v !== 'string') throw fail('must be a string');
      return v;
    case 'path':
      if (typeof v !== 'string') throw fail('must be a path string');
      if (v === '' && t.allowEmpty) return v;
      if (!v.startsWith('/')) throw fail('must be an absolute path');
      return v;
    case 'enum':
      if (typeof v !== 'string' || !t.values.includes(v)) throw fail(`must be one of ${t.values.map((x) => `"${x}"`).join(', ')}`);
      return v;
    case 'int':
      if (typeof v !== 'number' || !Number.isInteger(v)) throw fail('must be a whole number');
      if (v < t.min || v > t.max) throw fail(`must be from ${t.min} to ${t.max}`);
      return v;
    case 'seconds':
      if (typeof v !== 'number' || !Number.isFinite(v)) throw fail('must be a number of seconds');
      if (v < t.min || v > t.max) throw fail(`must be from ${t.min} to ${t.max} seconds`);
      return v;
    case 'bytes': {
      const n = parseSize(v);
      if (n === undefined) throw fail('must be a size in bytes or a string like "25M" (K, M, G)');
      if (n < t.min || n > t.max) throw fail(`must be from ${t.min} to ${t.max} bytes`);
      return n;
    }
    case 'strings':
      if (!Array.isArray(v) || v.some((x) => typeof x !== 'string' || x === '')) throw fail('must be a list of non-empty strings');
      if (v.length < t.minItems) throw fail(`needs at least ${t.minItems} entr${t.minItems === 1 ? 'y' : 'ies'}`);
      return Object.freeze([...v]);
    case 'paths':
      if (!Array.isArray(v) || v.some((x) => typeof x !== 'string' || !x.startsWith('/'))) throw fail('must be a list of absolute paths');
      return Object.freeze(v.map((x: string) => (x.length > 1 ? x.replace(/\/+$/, '') : x)));
    case 'addresses': {
      if (!Array.isArray(v) || v.length === 0 || v.some((x) => typeof x !== 'string')) throw fail('must be a list of addresses like ["unix:/run/clamav/clamd.ctl"]');
      for (const a of v as string[]) {
        try {
          parseServer(a);
        } catch (err) {
          throw keyError(ctx, name, `"${name}": ${(err as Error).message}`);
        }
      }
      return Object.freeze([...v]);
    }
    case 'metrics':
      if (typeof v !== 'string') throw fail('must be a string like "tcp:127.0.0.1:9187"');
      try {
        parseMetricsAddress(v);
      } catch (err) {
        throw keyError(ctx, name, `"${name}": ${(err as Error).message}`);
      }
      return v;
    case 'command':
      if (!Array.isArray(v) || v.some((x) => typeof x !== 'string') || (v.length === 0 && !t.allowEmpty)) throw fail('must be a list like ["prog", "arg", "{}"]');
      if (v.length > 0 && v[0] === '') throw fail('must name a program first');
      return Object.freeze([...v]);
    case 'icap-url':
      if (typeof v !== 'string') throw fail('must be a URL like "icap://127.0.0.1:1344/srv_clamav"');
      try {
        parseIcapUrl(v);
      } catch (err) {
        throw keyError(ctx, name, `"${name}": ${(err as Error).message}`);
      }
      return v;
    case 'exit-codes':
      if (!Array.isArray(v) || v.length === 0 || v.some((x) => typeof x !== 'number' || !Number.isInteger(x) || x < 0 || x > 255)) {
        throw fail('must be a list of exit codes from 0 to 255, like [0]');
      }
      return Object.freeze([...v]);
    case 'regex': {
      if (typeof v !== 'string') throw fail('must be a regular expression string');
      let re: RegExp;
      try {
        re = new RegExp(v);
      } catch (err) {
        throw keyError(ctx, name, `"${name}" is not a valid regular expression: ${(err as Error).message}`);
      }
      // one capture group: the name; an alternation with more groups would hide which one it is
      if (new RegExp(`${re.source}|`).exec('')!.length !== 2) throw fail('must have exactly one capture group (the virus name)');
      return v;
    }
  }
}

/** Sizes: a whole number of bytes, or "25M" / "512K" / "1G" / "100" (binary multiples). */
export function parseSize(v: unknown): number | undefined {
  if (typeof v === 'number') return Number.isInteger(v) && v >= 0 ? v : undefined;
  if (typeof v !== 'string') return undefined;
  const m = /^\s*(\d+)\s*([KMG]?)i?B?\s*$/i.exec(v);
  if (!m) return undefined;
  const mult = { '': 1, K: 1024, M: 1024 ** 2, G: 1024 ** 3 }[m[2]!.toUpperCase() as '' | 'K' | 'M' | 'G'];
  return Number(m[1]) * mult;
}

function keyError(ctx: Ctx, keyPath: string, message: string): ConfigError {
  const line = findKeyLine(ctx.lines, keyPath);
  return new ConfigError('ECONFIG_KEY', `${ctx.file}${line ? `:${line}` : ''}: ${message}`);
}

/**
 * The TOML parser gives no positions for values, so find where a key is written: `keyPath` is
 * "name" (top level), "table.name" or "engine[i].name" (the i-th [[engine]] table). The line of
 * the key's assignment inside its table, else the table's header line, else undefined.
 */
export function findKeyLine(lines: readonly string[], keyPath: string): number | undefined {
  const m = /^(?:([A-Za-z_][\w-]*)(?:\[(\d+)\])?\.)?([^.]+)$/.exec(keyPath);
  if (!m) return undefined;
  const [, table, indexText, key] = m;
  const wantIndex = indexText === undefined ? undefined : Number(indexText);
  const keyRe = new RegExp(`^\\s*["']?${escapeRe(key!)}["']?\\s*=`);
  let current: string | undefined; // undefined: the top level
  let arrayIndex = -1;
  let headerLine: number | undefined;
  for (let i = 0; i < lines.length; i++) {
    const l = lines[i]!;
    const header = /^\s*(\[\[?)\s*([A-Za-z_][\w.-]*)\s*\]\]?/.exec(l);
    if (header) {
      current = header[2];
      if (header[1] === '[[') {
        if (current === table) arrayIndex++;
      }
      if (current === table && (wantIndex === undefined || arrayIndex === wantIndex)) headerLine ??= i + 1;
      continue;
    }
    const inTable = table === undefined
      ? current === undefined
      : current === table && (wantIndex === undefined || arrayIndex === wantIndex);
    if (inTable && keyRe.test(l)) return i + 1;
  }
  if (table === undefined) {
    // a top-level key written as a table of its own ([action] for "action")
    const i = lines.findIndex((l) => new RegExp(`^\\s*\\[\\[?\\s*${escapeRe(key!)}\\s*\\]`).test(l));
    return i >= 0 ? i + 1 : undefined;
  }
  return headerLine;
}

function escapeRe(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/** "; did you mean ..." for a key one or two edits away from a known one (server → servers). */
function suggest(key: string, specs: readonly KeySpec[]): string {
  const norm = (k: string) => k.toLowerCase().replace(/-/g, '_');
  let best: { key: string; d: number } | undefined;
  for (const s of specs) {
    const d = editDistance(norm(key), s.key);
    if (d <= Math.min(2, Math.floor(s.key.length / 3)) && (best === undefined || d < best.d)) best = { key: s.key, d };
  }
  return best ? `; did you mean "${best.key}"?` : '';
}

function editDistance(a: string, b: string): number {
  if (Math.abs(a.length - b.length) > 2) return 3;
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    for (let j = 1; j <= b.length; j++) {
      row[j] = Math.min(prev[j]! + 1, row[j - 1]! + 1, prev[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    prev = row;
  }
  return prev[b.length]!;
}

function firstLine(s: string): string {
  return s.split('\n')[0] ?? s;
}
