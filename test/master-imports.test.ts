/**
 * The master loads no scanning code. It holds the socket's life cycle, the pool, reloads,
 * counters and logs; the scanning code (the runtime, MIME, unpacking, scan, effects, the
 * engines' scan paths) and the libraries under it belong in the workers. One static import of
 * app/runtime.ts from a module the master uses (app/signatures.ts) made every master load all
 * of it: about 15 MB more resident memory in every daemon, which counts against the idle
 * memory target (master + workers). Read from the sources: the modules a static (not type-only,
 * not dynamic) import chain from src/master/master.ts reaches; a lazy `await import()` where a
 * command needs the runtime is fine.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const SRC = fileURLToPath(new URL('../../src/', import.meta.url));

/** Specifiers of the static imports and re-exports that load a module at run time. */
function runtimeImportsOf(source: string): string[] {
  const code = source.replace(/\/\*[\s\S]*?\*\//g, '').replace(/(^|[^:'"`\\])\/\/.*$/gm, '$1');
  const out: string[] = [];
  for (const m of code.matchAll(/^\s*(?:import|export)\s+(?!type\b)(?:[^'"`;]*?\bfrom\s*)?['"]([^'"]+)['"]/gm)) out.push(m[1]!);
  return out;
}

/** Every source file and package a static chain from `entry` reaches (files relative to src/). */
function closure(entry: string): { files: Set<string>; packages: Set<string> } {
  const files = new Set<string>();
  const packages = new Set<string>();
  const stack = [resolve(SRC, entry)];
  while (stack.length > 0) {
    const file = stack.pop()!;
    const rel = relative(SRC, file);
    if (files.has(rel)) continue;
    files.add(rel);
    for (const spec of runtimeImportsOf(readFileSync(file, 'utf8'))) {
      if (spec.startsWith('.')) {
        const target = resolve(dirname(file), spec.replace(/\.js$/, '.ts'));
        assert.ok(existsSync(target), `${rel} imports ${spec}, which is not a source file`);
        stack.push(target);
      } else if (!spec.startsWith('node:')) {
        packages.add(spec);
      }
    }
  }
  return { files, packages };
}

test('the import reader: static imports and re-exports count, type-only and dynamic ones do not', () => {
  const src = [
    "import { a } from './a.js';",
    "import type { B } from './b.js';",
    "export { c } from './c.js';",
    "export type { D } from './d.js';",
    "import './e.js';",
    "const { f } = await import('./f.js');",
    "// import { g } from './g.js';",
  ].join('\n');
  assert.deepEqual(runtimeImportsOf(src).sort(), ['./a.js', './c.js', './e.js']);
});

const SCANNING = ['app/runtime.ts', 'mime/', 'unpack/', 'scan/', 'effects/', 'worker/request.ts', 'worker/service.ts', 'engines/icap/', 'engines/command/', 'engines/yara/index.ts', 'engines/yara/pool.ts'];
const SCANNING_PACKAGES = ['libmime', '@zone-eu/mailsplit', 'file-type', 'cfb', 'libqp', '@litko/yara-x-linux-x64-gnu'];

test('the master loads no scanning code: no static import chain from master/master.ts reaches the runtime, MIME, unpacking, scan or effects', () => {
  const { files, packages } = closure('master/master.ts');
  assert.ok(files.size > 10 && files.has('master/pool.ts'), 'the walk follows the master\'s imports');
  const reached = [...files].filter((f) => SCANNING.some((s) => (s.endsWith('/') ? f.startsWith(s) : f === s)));
  assert.deepEqual(reached, [], `the master loads scanning code: ${reached.join(', ')}`);
  const libs = [...packages].filter((p) => SCANNING_PACKAGES.includes(p));
  assert.deepEqual(libs, [], `the master loads scanning libraries: ${libs.join(', ')}`);
});

test('the walk would see it: the worker\'s runtime does reach the scanning code', () => {
  const { files, packages } = closure('app/runtime.ts');
  assert.ok([...files].some((f) => f.startsWith('mime/')) && [...files].some((f) => f.startsWith('unpack/')));
  assert.ok(packages.has('libmime') || packages.has('@zone-eu/mailsplit'));
});
