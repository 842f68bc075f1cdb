/**
 * Config loading: TOML text → validated, frozen Config, driven by the tables in schema.ts.
 *
 * Inputs: a file path (or none: built-in defaults). Outputs: a frozen Config.
 * Fails with ConfigError (code ECONFIG_*) naming the file, the line (when it can be found) and the
 * key, so an admin can fix the file without guessing. A missing *default* file means defaults; a
 * missing *named* file is an error.
 */
import { readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { parse as parseToml, TomlError } from 'smol-toml';
import { AvError } from '../errors.js';
import { parseServer } from './address.js';
import { parseIcapUrl } from './icap-url.js';
import { parseMetricsAddress } from './metrics-address.js';
import {
  DEFAULT_CONFIG_PATH, ENGINE_KEYS, ENGINE_SPECS, FUTURE_ENGINE_TYPES, SECTIONS, TOP_KEYS,
  type KeySpec, type SectionsOf, type TableOf,
} from './schema.js';

type EngineKeys = typeof ENGINE_KEYS;
export type ClamdEngineConfig = { readonly type: 'clamd' } & TableOf<EngineKeys['clamd']>;
export type YaraEngineConfig = { readonly type: 'yara' } & TableOf<EngineKeys['yara']>;
export type IcapEngineConfig = { readonly type: 'icap' } & TableOf<EngineKeys['icap']>;
export type CommandEngineConfig = { readonly type: 'command' } & TableOf<EngineKeys['command']>;
export type EngineConfig = ClamdEngineConfig | YaraEngineConfig | IcapEngineConfig | CommandEngineConfig;

/**
 * A loaded config: every field derived from the schema's tables (schema.ts), so a key added
 * there is typed here without being written twice.
 */
export type Config = TableOf<typeof TOP_KEYS> & SectionsOf<typeof SECTIONS> & {
  /** The file the config came from, or "(built-in defaults)". */
  readonly source: string;
  readonly engine: readonly EngineConfig[];
  /**
   * Where `engine` came from: the config's [[engine]] tables, or, with none, the default:
   * clamd at the distribution's socket when one answered there, else the embedded engine.
   */
  readonly engine_origin: EngineOrigin;
};

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

export class ConfigError extends AvError {
  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(code, 'config', message, options);
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
  const tables: string[] = ['engine', ...SECTIONS.map((s) => s.name)];
  const known = new Set([...TOP_KEYS.map((k) => k.key), ...tables]);
  for (const key of Object.keys(doc)) {
    if (!known.has(key)) throw keyError(ctx, key, `unknown key "${key}"${suggest(key, TOP_KEYS)}`);
  }
  const top = Object.fromEntries(Object.entries(doc).filter(([k]) => !tables.includes(k)));
  Object.assign(out, readTable(ctx, '', top, TOP_KEYS));
  if ((out['spool_dirs'] as string[]).some((d) => d === '/')) {
    throw keyError(ctx, 'spool_dirs', '"spool_dirs" must not contain "/"; use [] to allow any path');
  }
  const cache = out['cache'] as string;
  if (cache !== '' && cache !== 'memory' && !isRedisUrl(cache)) {
    throw keyError(ctx, 'cache', '"cache" must be "", "memory" or "redis://HOST:PORT" (with an optional :PASSWORD@ and /DB)');
  }
  for (const { name, specs } of SECTIONS) out[name] = Object.freeze(readTable(ctx, `${name}.`, subTable(ctx, doc, name), specs));
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
      return [Object.freeze(readTable(ctx, 'engine.', { servers: [`unix:${opts.defaultClamdSocket}`] }, ENGINE_KEYS.clamd, { type: 'clamd' }))];
    }
    return [Object.freeze(readTable(ctx, 'engine.', {}, ENGINE_KEYS.yara, { type: 'yara' }))];
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
    const spec = Object.hasOwn(ENGINE_SPECS, t) ? ENGINE_SPECS[t] : undefined;
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
  if (Array.isArray(v)) return Object.freeze([...v]);
  if (typeof v === 'object' && v !== null) return Object.freeze({ ...v });
  return v;
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
    case 'globs':
      if (!Array.isArray(v) || v.some((x) => typeof x !== 'string' || x === '' || CONTROL.test(x))) throw fail('must be a list of non-empty patterns without control characters');
      return Object.freeze([...v]);
    case 'cidrs':
      if (!Array.isArray(v) || v.some((x) => typeof x !== 'string')) throw fail('must be a list of networks like ["192.0.2.0/24", "2001:db8::/32"]');
      for (const n of v as string[]) {
        if (!isNetwork(n)) throw keyError(ctx, name, `"${name}": ${JSON.stringify(n)} is not a network: use ADDRESS or ADDRESS/PREFIX (IPv4 or IPv6)`);
      }
      return Object.freeze([...v]);
    case 'action-map': {
      if (typeof v !== 'object' || v === null || Array.isArray(v)) throw fail(`must be a table of pattern = action ([${name}])`);
      const out: Record<string, string> = {};
      for (const [pattern, action] of Object.entries(v as Record<string, unknown>)) {
        if (pattern === '' || CONTROL.test(pattern)) throw keyError(ctx, name, `"${name}": a pattern must be non-empty, without control characters`);
        if (typeof action !== 'string' || !t.values.includes(action)) {
          throw keyError(ctx, name, `"${name}"."${pattern}" must be one of ${t.values.map((x) => `"${x}"`).join(', ')}, got ${JSON.stringify(action)}`);
        }
        out[pattern] = action;
      }
      return Object.freeze(out);
    }
    case 'reply': {
      if (typeof v !== 'string') throw fail('must be a string like "550 5.7.1 Message rejected"');
      const problem = replyProblem(v, t.class);
      if (problem !== undefined) throw keyError(ctx, name, `"${name}" ${problem}, got ${JSON.stringify(v)}`);
      return v;
    }
    case 'address':
      if (typeof v !== 'string') throw fail('must be an address string');
      if (v === '' && t.allowEmpty) return v;
      if (!/^[^\s<>()\\,;:"\[\]]+(@[^\s<>()\\,;:"\[\]@]+)?$/.test(v) || CONTROL.test(v)) throw fail('must be a mail address like "postmaster@example.com"');
      return v;
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

/** Control characters (C0, DEL, C1): never in a pattern, a reply or an address. */
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/;

/** Why "CODE TEXT" is not a reply of this class, or undefined. */
export function replyProblem(v: string, cls: 2 | 4 | 5): string | undefined {
  const m = /^([2-5])\d\d ([^\s].*)$/.exec(v);
  if (m === null || CONTROL.test(v)) return 'must be "CODE TEXT" with a three-digit code and no control characters';
  if (Number(m[1]) !== cls) return `must have a ${cls}xx code`;
  if (v.length > 400) return 'must be at most 400 characters';
  // its macros are checked with the other templates when the runtime is built (app/runtime.ts)
  return undefined;
}

/** "ADDRESS" or "ADDRESS/PREFIX", IPv4 or IPv6. */
function isNetwork(n: string): boolean {
  const m = /^([^/]+)(?:\/(\d{1,3}))?$/.exec(n);
  if (m === null) return false;
  const family = isIP(m[1]!);
  if (family === 0) return false;
  return m[2] === undefined || Number(m[2]) <= (family === 4 ? 32 : 128);
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
