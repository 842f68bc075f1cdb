/**
 * `npm run man`: writes the generated man pages (src/cli/man.ts) to man/ at the top of the
 * checkout, the config reference to docs/configuration.md and the log events and codes to
 * docs/log-events.md (src/ops/log-events-doc.ts), where they are committed; test/man.test.ts and
 * test/log-events.test.ts fail when they differ from what the sources generate now.
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { configReference, manPages } from '../src/cli/man.js';
import { renderLogEvents } from '../src/ops/log-events-doc.js';

const root = fileURLToPath(new URL('../../', import.meta.url));
const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { version: string };
mkdirSync(join(root, 'man'), { recursive: true });
for (const page of manPages(pkg.version)) {
  writeFileSync(join(root, 'man', page.file), page.text);
  process.stdout.write(`man/${page.file}\n`);
}
writeFileSync(join(root, 'docs', 'configuration.md'), configReference());
process.stdout.write('docs/configuration.md\n');
writeFileSync(join(root, 'docs', 'log-events.md'), renderLogEvents());
process.stdout.write('docs/log-events.md\n');
