/**
 * The table of log events and codes cannot drift from the code: the committed
 * docs/log-events.md is what the registries render, every code literal in the sources is
 * registered, and every registered event is logged somewhere. (An event the registry does not
 * know, or a level it does not list for that event, does not compile: Logger.event's type.)
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { constants } from 'node:os';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { EVENTS } from '../src/ops/events.js';
import { CODES } from '../src/ops/codes.js';
import { renderLogEvents } from '../src/ops/log-events-doc.js';

const root = fileURLToPath(new URL('../../', import.meta.url));

function sources(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out.push(...sources(p));
    else if (name.endsWith('.ts')) out.push(p);
  }
  return out;
}

/** Words that look like codes and are not codes avfilter logs, each with why. */
const NOT_CODES: Readonly<Record<string, string>> = {
  EFF: "a PDF encryption dictionary's key (/EFF)",
  ENVIRONMENT: "a man page section's heading",
  ERROR: "the word clamd ends an error reply with",
  ERR_INVALID_ARG_TYPE: "Node's own code, compared against",
  ERR_INVALID_ARG_VALUE: "Node's own code, compared against",
};

test('docs/log-events.md is what src/ops/events.ts and codes.ts render (run `npm run man` after a change)', () => {
  assert.equal(readFileSync(join(root, 'docs/log-events.md'), 'utf8'), renderLogEvents());
});

test('every code literal in the sources is in the code table, or a system error name', () => {
  const errno = new Set(Object.keys(constants.errno));
  const missing: string[] = [];
  for (const file of [...sources(join(root, 'src')), ...sources(join(root, 'bin'))]) {
    const text = readFileSync(file, 'utf8');
    for (const m of text.matchAll(/'(E[A-Z][A-Z0-9_]+)'/g)) {
      const code = m[1]!;
      if (errno.has(code) || Object.hasOwn(CODES, code) || Object.hasOwn(NOT_CODES, code)) continue;
      missing.push(`${code} (${file.slice(root.length)})`);
    }
  }
  assert.deepEqual(missing, [], 'register these in src/ops/codes.ts');
});

test('every registered event is logged somewhere, and every registered code is used', () => {
  const all = [...sources(join(root, 'src')), ...sources(join(root, 'bin'))]
    .filter((f) => !/src\/ops\/(events|codes|log-events-doc)\.ts$/.test(f))
    .map((f) => readFileSync(f, 'utf8')).join('\n');
  const unused = [...Object.keys(EVENTS), ...Object.keys(CODES)].filter((name) => !all.includes(`'${name}'`));
  assert.deepEqual(unused, [], 'remove these from the registry, or log them');
});

test('the docs table lists each event with its levels', () => {
  const doc = renderLogEvents();
  assert.match(doc, /^\| `degraded` \| error \| /m);
  assert.match(doc, /^\| `worker-exit` \| error, info \| /m);
  assert.match(doc, /^\| `EUNPACK_DEPTH` \| limit \| /m);
  assert.match(doc, /^\| `accepted-unscanned` \| /m);
});
