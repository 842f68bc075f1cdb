/**
 * The man pages: the committed man/ files are exactly what the sources generate now (so they
 * cannot go stale: run `npm run man` after changing an option or a config key), every key the
 * config loader accepts is documented in avfilter.toml(5) and every key documented there is
 * accepted, every option the built avfilter's --help lists is in avfilter(8), and the package
 * installs the pages.
 */
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { test } from 'node:test';
import { parseConfig } from '../src/config/load.js';
import { SECTIONS } from '../src/config/schema.js';
import { configReference, manPages } from '../src/cli/man.js';
import { runAvfilter } from './helpers/avfilter-proc.js';

const root = new URL('../../', import.meta.url);
const pkg = JSON.parse(readFileSync(new URL('package.json', root), 'utf8')) as { version: string; man?: string[]; files?: string[] };
const page = (file: string): string => readFileSync(new URL(`man/${file}`, root), 'utf8');
/** roff back to text for searching: escaped hyphens and backslashes. */
const plain = (s: string): string => s.replace(/\\-/g, '-').replace(/\\e/g, '\\').replace(/\\&/g, '');

test('the committed man pages are what the sources generate (run `npm run man` after a change)', () => {
  const pages = manPages(pkg.version);
  assert.deepEqual(pages.map((p) => p.file).sort(), ['avfilter.8', 'avfilter.toml.5', 'avfilter_sig.8']);
  for (const p of pages) assert.equal(page(p.file), p.text, `man/${p.file} is stale: run npm run man`);
});

test('docs/configuration.md is what the config schema generates, and names every key (run `npm run man` after a change)', () => {
  const doc = readFileSync(new URL('docs/configuration.md', root), 'utf8');
  assert.equal(doc, configReference(), 'docs/configuration.md is stale: run npm run man');
  for (const key of documentedKeys()) {
    const bare = key.replace(/^(engine:\w+|\w+)\./, '');
    assert.ok(doc.includes(`| \`${bare}\` |`), `docs/configuration.md lacks ${key}`);
  }
});

/** The keys avfilter.toml(5) documents, as "key", "action.key", "engine:clamd.key". */
function documentedKeys(): Set<string> {
  const out = new Set<string>();
  let prefix: string | undefined;
  const lines = page('avfilter.toml.5').split('\n');
  for (let i = 0; i < lines.length; i++) {
    const l = plain(lines[i]!);
    if (l.startsWith('.SH ')) prefix = undefined;
    const ss = /^\.SS "(.*)"$/.exec(l);
    if (ss) {
      const h = ss[1]!.replace(/""/g, '"');
      const engine = /^\[\[engine\]\] type = "(\w+)"$/.exec(h);
      const table = /^\[(\w+)\]$/.exec(h);
      prefix = h === 'Top level' ? '' : engine ? `engine:${engine[1]}.` : table ? `${table[1]}.` : undefined;
      assert.notEqual(prefix, undefined, `unknown key section ${h}`);
    }
    if (prefix !== undefined && l === '.TP') {
      const m = /^\.B (\S+)$/.exec(plain(lines[i + 1] ?? ''));
      if (m) out.add(prefix + m[1]);
    }
  }
  return out;
}

/** The keys the loader gives values to: its output, not the schema tables the page comes from. */
function loaderKeys(): string[] {
  const cfg = parseConfig('', 'x.toml') as unknown as Record<string, unknown>;
  // not keys of the file: where it came from, and where the engine came from
  const derived = new Set(['source', 'engine_origin']);
  const tables: string[] = SECTIONS.map((x) => x.name);
  const out: string[] = [];
  for (const k of Object.keys(cfg)) {
    if (derived.has(k) || k === 'engine') continue;
    if (tables.includes(k)) out.push(...Object.keys(cfg[k] as object).map((x) => `${k}.${x}`));
    else out.push(k);
  }
  for (const type of ['clamd', 'yara']) {
    const e = parseConfig(`[[engine]]\ntype = "${type}"\n`, 'x.toml').engine[0]!;
    out.push(...Object.keys(e).filter((k) => k !== 'type').map((k) => `engine:${type}.${k}`));
  }
  return out;
}

test('avfilter.toml(5) documents every key the loader accepts, and only those', () => {
  const documented = documentedKeys();
  const loaded = loaderKeys();
  assert.ok(loaded.length > 40, `only ${loaded.length} keys found`);
  for (const k of loaded) assert.ok(documented.has(k), `avfilter.toml.5 does not document ${k}`);
  for (const k of documented) {
    const m = /^(?:engine:(\w+)\.|(\w+)\.)?(\w+)$/.exec(k)!;
    const [, engine, table, key] = m;
    const text = engine ? `[[engine]]\ntype = "${engine}"\n${key} = 0\n` : table ? `[${table}]\n${key} = 0\n` : `${key} = 0\n`;
    try {
      parseConfig(text, 'x.toml');
    } catch (err) {
      assert.doesNotMatch((err as Error).message, /unknown key/, `documented key ${k} is refused by the loader`);
    }
  }
});

test('avfilter(8) lists every option of avfilter --help', () => {
  const help = runAvfilter(['--help']);
  assert.equal(help.code, 0);
  const flags = help.stdout.split('\n').map((l) => /^ {2}(-[^ ]+(?:, --[^ ]+)?)/.exec(l)?.[1]).filter((x): x is string => !!x);
  assert.ok(flags.length >= 8, help.stdout);
  const man = plain(page('avfilter.8'));
  for (const f of flags) assert.ok(man.includes(`.B ${f}`), `avfilter.8 lacks ${f}`);
  assert.match(help.stdout, /avfilter\(8\)/, '--help points at the man page');
});

test('the package installs the man pages', () => {
  assert.deepEqual(pkg.man, ['man/avfilter.8', 'man/avfilter_sig.8', 'man/avfilter.toml.5']);
  for (const f of pkg.man ?? []) assert.ok(existsSync(new URL(f, root)), f);
  assert.ok(pkg.files?.includes('man'), 'files includes man/');
});
