/**
 * Fuzz of the config loader's parseConfig (src/config/load.ts): the example configurations
 * (README's TOML blocks, examples/avfilter.toml, the printed form of the defaults and of a
 * config with every engine, a contract-style file with keys not implemented yet) mutated by
 * TOML-aware edits (values and keys swapped for others, table headers, JavaScript property
 * names such as "constructor") and by bytes.
 * Properties: parseConfig throws nothing but ConfigError with an ECONFIG_* code whose message
 * starts with the file name (never a TypeError or a parser's own error); a config it returns is
 * frozen, and every key of the schema is there with a value of its type within its bounds;
 * each parse ends within a generous bound.
 * Seeded and bounded; see test/helpers/fuzz.ts for AVFILTER_FUZZ_ITERATIONS / AVFILTER_FUZZ_SEED.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { ConfigError, parseConfig, type Config } from '../src/config/load.js';
import { ENGINE_KEYS, SECTIONS, TOP_KEYS, type KeySpec } from '../src/config/schema.js';
import { formatConfig } from '../src/config/print.js';
import { fuzz, fuzzIterations, fuzzSeed, mutateBytes, timed, type Rng } from './helpers/fuzz.js';

const SEED = fuzzSeed(0x5eed0005);
const FILE = '/etc/courier/filters/avfilter.toml';
const ROOT = new URL('../../', import.meta.url);
/** A config of a few KB parses in well under a millisecond; seconds means a blow-up. */
const PARSE_BOUND_MS = 2000;

/** Keys and tables the contract names that this version may not implement: errors must still be ConfigErrors. */
const CONTRACT_STYLE = `
all_mode = true
metrics = ""
log_level = "info"
[[engine]]
type = "icap"
url = "icap://127.0.0.1:1344/srv_clamav"
[[engine]]
type = "command"
command = ["clamscan", "--no-summary", "{}"]
[action]
infected = "strip"
[action.by_name]
"Heuristics.Phishing.*" = "pass"
[skip]
networks = ["192.0.2.0/24"]
`;

function seeds(): string[] {
  const readme = readFileSync(new URL('README.md', ROOT), 'utf8');
  const blocks = [...readme.matchAll(/```toml\n([\s\S]*?)```/g)].map((m) => m[1]!);
  assert.ok(blocks.length >= 1, 'README has a TOML example');
  const example = readFileSync(new URL('examples/avfilter.toml', ROOT), 'utf8');
  const full = parseConfig(
    '[[engine]]\ntype = "clamd"\nservers = ["tcp:127.0.0.1:3310"]\nmax_stream_size = "25M"\n[[engine]]\ntype = "yara"\n[mime]\nallow_partial = true\n',
    'seed',
  );
  return [...blocks, example, formatConfig(parseConfig('', 'defaults')), formatConfig(full), CONTRACT_STYLE];
}

// ---- TOML-aware mutations ----

const ALL_SPECS: KeySpec[] = [...TOP_KEYS, ...SECTIONS.flatMap((x): readonly KeySpec[] => x.specs), ...Object.values(ENGINE_KEYS).flat()];
const JS_NAMES = ['constructor', '__proto__', 'toString', 'hasOwnProperty', 'valueOf', 'prototype', 'isPrototypeOf', 'then'];
const KEYS = [...new Set([...ALL_SPECS.map((s) => s.key), 'type', 'engine', 'action', 'mime', ...JS_NAMES, 'unknown_key', 'max-depth', 'MAX_DEPTH'])];
const VALUES = [
  'true', 'false', '0', '1', '-1', '1.5', '0.05', '1e400', '-1e400', 'inf', '-inf', 'nan', '9223372036854775807', '9223372036854775808',
  '0x7fffffff', '0o777', '0b1', '1_000', '"25M"', '"25 MiB"', '"9999999999999G"', '" 7K "', '"1.5M"', '""', '"/"', '"relative/path"',
  '"/var/lib/avfilter/tmp"', '"\\u0000"', '"\\u007f"', '"\\ud7ff"', "'literal'", '"""multi\nline"""', '[]', '[""]', '["a", 1]',
  '["unix:/x", "tcp:127.0.0.1:3310"]', '[[1, 2], ["a"]]', '{}', '{ type = "clamd" }', '1979-05-27T07:32:00Z', '1979-05-27', '07:32:00',
  '"clamd"', '"yara"', '"icap"', '"command"', '"drop"', '"reject"', '"tempfail"', '"pass"', '"accept"', ...JS_NAMES.map((n) => `"${n}"`),
];
const HEADERS = ['[action]', '[mime]', '[[engine]]', '[engine]', '[[action]]', '[action.by_name]', '[mime.x]', '[constructor]', '[__proto__]', '[[engine.x]]', '["a b"]'];

/** Values aimed at one key: its bounds and just past them, its enum values, other names. */
function valueFor(rnd: Rng, key: string): string {
  const spec = ALL_SPECS.find((s) => s.key === key);
  const names = [...JS_NAMES, 'clamd', 'yara', 'icap', 'command', 'CLAMD', ''].map((n) => JSON.stringify(n));
  if (key === 'type' || spec === undefined) return rnd.pick(names);
  const t = spec.type;
  switch (t.kind) {
    case 'enum':
      return rnd.pick([...t.values.map((v) => JSON.stringify(v)), ...names]);
    case 'int':
    case 'bytes':
    case 'seconds': {
      const n = rnd.pick([t.min, t.max, t.min - 1, t.max + 1, t.min - 0.5, t.max + 0.5, Math.floor((t.min + t.max) / 2)]);
      return t.kind === 'bytes' && rnd.chance(0.3) ? JSON.stringify(`${Math.ceil(n / 1024)}K`) : String(n);
    }
    default:
      return rnd.pick(VALUES);
  }
}

function tomlMutant(rnd: Rng, text: string): string {
  const lines = text.split('\n');
  const ops = 1 + rnd.int(4);
  for (let k = 0; k < ops; k++) {
    const at = rnd.int(lines.length);
    const assign = /^(\s*)([^=\s#[][^=]*?)(\s*=\s*)(.*)$/.exec(lines[at] ?? '');
    switch (rnd.int(6)) {
      case 0: // another value for a key: any, or one aimed at that key
        if (assign) lines[at] = `${assign[1]}${assign[2]}${assign[3]}${rnd.chance(0.5) ? valueFor(rnd, assign[2]!.trim()) : rnd.pick(VALUES)}`;
        break;
      case 1: // another key for a value
        if (assign) lines[at] = `${assign[1]}${rnd.pick(KEYS)}${assign[3]}${assign[4]}`;
        break;
      case 2:
        lines.splice(at, 0, `${rnd.pick(KEYS)} = ${rnd.pick(VALUES)}`);
        break;
      case 3:
        lines.splice(at, 0, rnd.pick(HEADERS));
        break;
      case 4:
        lines.splice(at, 1 + rnd.int(3));
        break;
      default:
        lines.splice(at, 0, lines[rnd.int(lines.length)] ?? '');
    }
  }
  return lines.join('\n');
}

const TOML_TOKENS = ['=', '"', "'", '[', ']', '[[', ']]', '{', '}', ',', '#', '.', '\\', '"""', "'''"].map((s) => Buffer.from(s));

function input(rnd: Rng, pool: readonly string[]): string {
  let text = rnd.pick(pool);
  if (rnd.chance(0.8)) text = tomlMutant(rnd, text);
  if (rnd.chance(0.4)) {
    const donors = pool.map((s) => Buffer.from(s));
    text = mutateBytes(Buffer.from(text, 'utf8'), rnd, { tokens: TOML_TOKENS, donors, maxRun: 2000 }).toString(rnd.chance(0.8) ? 'utf8' : 'latin1');
  }
  return text;
}

// ---- the check ----

function assertValue(spec: KeySpec, v: unknown, where: string): void {
  const t = spec.type;
  const inRange = (n: number, min: number, max: number): boolean => n >= min && n <= max;
  switch (t.kind) {
    case 'bool':
      assert.equal(typeof v, 'boolean', where);
      break;
    case 'string':
      assert.equal(typeof v, 'string', where);
      break;
    case 'path':
      assert.ok(typeof v === 'string' && (v.startsWith('/') || (v === '' && t.allowEmpty === true)), `${where}: ${String(v)}`);
      break;
    case 'enum':
      assert.ok(typeof v === 'string' && t.values.includes(v), `${where}: ${String(v)}`);
      break;
    case 'int':
    case 'bytes':
      assert.ok(typeof v === 'number' && Number.isSafeInteger(v) && inRange(v, t.min, t.max), `${where}: ${String(v)}`);
      break;
    case 'seconds':
      assert.ok(typeof v === 'number' && Number.isFinite(v) && inRange(v, t.min, t.max), `${where}: ${String(v)}`);
      break;
    case 'strings':
      assert.ok(Array.isArray(v) && Object.isFrozen(v) && v.length >= t.minItems && v.every((x) => typeof x === 'string' && x !== ''), where);
      break;
    case 'command':
      assert.ok(Array.isArray(v) && (v.length > 0 || t.allowEmpty === true) && v.every((x) => typeof x === 'string'), where);
      break;
    case 'globs':
    case 'cidrs':
      assert.ok(Array.isArray(v) && Object.isFrozen(v) && v.every((x) => typeof x === 'string' && x !== ''), where);
      break;
    case 'action-map':
      assert.ok(typeof v === 'object' && v !== null && Object.isFrozen(v) && Object.values(v).every((x) => t.values.includes(x as string)), where);
      break;
    case 'reply':
      assert.ok(typeof v === 'string' && new RegExp(`^${t.class}\\d\\d \\S`).test(v) && !/[\u0000-\u001f]/.test(v), `${where}: ${String(v)}`);
      break;
  }
}

function assertConfig(c: Config): void {
  assert.equal(c.source, FILE);
  assert.ok(Object.isFrozen(c) && Object.isFrozen(c.action) && Object.isFrozen(c.mime) && Object.isFrozen(c.engine), 'frozen');
  const rec = c as unknown as Record<string, unknown>;
  for (const s of TOP_KEYS) assertValue(s, rec[s.key], s.key);
  for (const { name, specs } of SECTIONS) {
    const table = rec[name] as Record<string, unknown>;
    assert.ok(Object.isFrozen(table), `${name} frozen`);
    for (const s of specs) assertValue(s, table[s.key], `${name}.${s.key}`);
  }
  assert.ok(c.engine.length >= 1, 'at least one engine');
  c.engine.forEach((e, i) => {
    assert.ok(Object.isFrozen(e), `engine[${i}] frozen`);
    assert.ok(Object.hasOwn(ENGINE_KEYS, e.type), `engine[${i}].type ${String(e.type)}`);
    const er = e as unknown as Record<string, unknown>;
    for (const s of ENGINE_KEYS[e.type]!) assertValue(s, er[s.key], `engine[${i}].${s.key}`);
    assert.deepEqual(Object.keys(er).sort(), ['type', ...ENGINE_KEYS[e.type]!.map((s) => s.key)].sort(), `engine[${i}] has only its keys`);
  });
}

test('fuzz: mutated configs give a valid frozen Config or a ConfigError naming the file', () => {
  const pool = seeds();
  const counts = { ok: 0, ECONFIG_SYNTAX: 0, ECONFIG_KEY: 0 } as Record<string, number>;
  const run = fuzz('config: parseConfig', { seed: SEED, iterations: fuzzIterations(2000) }, ({ rnd, note }) => {
    const text = input(rnd, pool);
    note('input', text);
    const { value: outcome, ms } = timed(() => {
      try {
        return { config: parseConfig(text, FILE) };
      } catch (err) {
        return { err };
      }
    });
    assert.ok(ms < PARSE_BOUND_MS, `parseConfig took ${Math.round(ms)} ms`);
    if ('err' in outcome) {
      const err = outcome.err;
      assert.ok(err instanceof ConfigError, `only ConfigError is thrown, got ${err instanceof Error ? `${err.name}: ${err.message}` : String(err)}`);
      assert.match(err.code, /^ECONFIG_[A-Z_]+$/);
      assert.ok(err.message.startsWith(`${FILE}:`), `the message names the file: ${err.message.slice(0, 120)}`);
      counts[err.code] = (counts[err.code] ?? 0) + 1;
      return;
    }
    assertConfig(outcome.config);
    counts['ok']!++;
  });
  console.log(`fuzz: ${run.iterations} configs in ${run.ms} ms (seed ${run.seed}): ${JSON.stringify(counts)}`);
});
