/**
 * The shape of the per-message path, read from the source's imports: src/bytes is the floor
 * that src/mime and src/unpack both stand on; src/mime never imports src/unpack or src/scan;
 * src/unpack never imports src/mime or src/scan; src/bytes imports none of them (nor the
 * engines). src/scan is where they meet. Type-only imports count: they are arrows too.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdir, readFile } from 'node:fs/promises';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';

const SRC = fileURLToPath(new URL('../../src/', import.meta.url));

/** Every specifier a TypeScript source imports or re-exports (static, side-effect or dynamic). */
function importsOf(source: string): string[] {
  // comments go first: an example in a comment is no import
  const code = source.replace(/\/\*[\s\S]*?\*\//g, '').replace(/(^|[^:'"`\\])\/\/.*$/gm, '$1');
  const out: string[] = [];
  const patterns = [
    /\b(?:import|export)\s+(?:type\s+)?[^'"`;]*?\bfrom\s*['"]([^'"]+)['"]/g,
    /\bimport\s*['"]([^'"]+)['"]/g,
    /\bimport\s*\(\s*['"]([^'"]+)['"]\s*\)/g,
  ];
  for (const re of patterns) for (const m of code.matchAll(re)) out.push(m[1]!);
  return out;
}

async function sources(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) out.push(...(await sources(p)));
    else if (e.name.endsWith('.ts')) out.push(p);
  }
  return out;
}

/** The top folder under src/ that a relative import from `file` lands in ("mime", "errors.ts"...). */
function landsIn(file: string, spec: string): string | undefined {
  if (!spec.startsWith('.')) return undefined;
  const target = relative(SRC, resolve(dirname(file), spec));
  return target.startsWith('..') ? '(outside src)' : target.split(sep)[0];
}

async function arrowsFrom(folder: string): Promise<Array<{ file: string; spec: string; to: string }>> {
  const arrows: Array<{ file: string; spec: string; to: string }> = [];
  for (const file of await sources(join(SRC, folder))) {
    for (const spec of importsOf(await readFile(file, 'utf8'))) {
      const to = landsIn(file, spec);
      if (to !== undefined && to !== folder) arrows.push({ file: relative(SRC, file), spec, to });
    }
  }
  return arrows;
}

test('the import reader sees every form of import and none in comments', () => {
  const src = [
    "import { a } from '../unpack/stage.js';",
    "import type {\n  B,\n  C,\n} from \"../scan/route.js\";",
    "export { d } from './d.js';",
    "export type { E } from '../bytes/part.js';",
    "import '../side-effect.js';",
    "const m = await import('../dyn.js');",
    "// import { x } from '../commented.js';",
    "/* import { y } from '../block.js'; */",
    "const url = 'http://example.test/'; import { z } from './z.js';",
  ].join('\n');
  assert.deepEqual(importsOf(src).sort(), ['../bytes/part.js', '../dyn.js', '../scan/route.js', '../side-effect.js', '../unpack/stage.js', './d.js', './z.js'].sort());
});

const RULES: Array<{ folder: string; never: readonly string[] }> = [
  { folder: 'mime', never: ['unpack', 'scan', 'engines', 'courierfilter', 'worker', 'master', 'app'] },
  { folder: 'unpack', never: ['mime', 'scan', 'engines', 'courierfilter', 'worker', 'master', 'app'] },
  { folder: 'bytes', never: ['mime', 'unpack', 'scan', 'engines', 'courierfilter', 'worker', 'master', 'app'] },
];

for (const { folder, never } of RULES) {
  test(`src/${folder} imports none of ${never.map((n) => `src/${n}`).join(', ')}`, async () => {
    const arrows = await arrowsFrom(folder);
    const broken = arrows.filter((a) => never.includes(a.to)).map((a) => `${a.file} -> ${a.spec}`);
    assert.deepEqual(broken, [], `src/${folder} must not import these`);
  });
}

test('mime and unpack both stand on src/bytes, and src/scan composes them', async () => {
  // the rules above would hold vacuously if the reader found nothing: the arrows that the
  // shape is made of must be seen
  const to = async (folder: string): Promise<Set<string>> => new Set((await arrowsFrom(folder)).map((a) => a.to));
  assert.ok((await to('mime')).has('bytes'), 'src/mime imports src/bytes');
  assert.ok((await to('unpack')).has('bytes'), 'src/unpack imports src/bytes');
  const scan = await to('scan');
  for (const f of ['mime', 'unpack', 'bytes']) assert.ok(scan.has(f), `src/scan imports src/${f}`);
});
