/**
 * The Debian package's licence list (tools/licences.ts): read from the lock npm ci leaves in a
 * production tree; a bundled package under a licence the project has not decided on stops the
 * build, naming the package; the copyright file names every bundled package.
 */
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { bundledLicences, copyrightFile } from '../tools/licences.js';

function tree(packages: Record<string, { version: string; license?: string; dev?: boolean }>): string {
  const app = mkdtempSync(join(tmpdir(), 'avf-lic-'));
  mkdirSync(join(app, 'node_modules'));
  writeFileSync(join(app, 'node_modules', '.package-lock.json'), JSON.stringify({ packages: { '': {}, ...packages } }));
  return app;
}

test('every bundled package is listed with its licence in the copyright file; development packages are not', () => {
  const app = tree({
    'node_modules/a': { version: '1.0.0', license: 'MIT' },
    'node_modules/@s/b': { version: '2.0.0', license: 'Apache-2.0' },
    'node_modules/a/node_modules/c': { version: '3.0.0', license: 'BSD-3-Clause' },
    'node_modules/typescript': { version: '5.0.0', license: 'Apache-2.0', dev: true },
  });
  try {
    const list = bundledLicences(app);
    assert.deepEqual(list.map((b) => `${b.name}@${b.version}`), ['@s/b@2.0.0', 'a@1.0.0', 'c@3.0.0']);
    const text = copyrightFile(list);
    for (const [name, lic] of [['a', 'Expat'], ['@s/b', 'Apache-2.0'], ['c', 'BSD-3-clause']]) {
      assert.match(text, new RegExp(`Files: usr/lib/avfilter/node_modules/${name}/\\*\\n(?:.*\\n)*?License: ${lic}\\n`));
    }
    assert.doesNotMatch(text, /typescript/);
  } finally {
    rmSync(app, { recursive: true, force: true });
  }
});

test('a bundled package under a licence not decided on stops the build, naming it', () => {
  for (const license of ['GPL-2.0-only', undefined]) {
    const app = tree({ 'node_modules/ok': { version: '1.0.0', license: 'MIT' }, 'node_modules/odd': { version: '0.1.0', ...(license ? { license } : {}) } });
    try {
      assert.throws(() => bundledLicences(app), new RegExp(`odd 0\\.1\\.0 is under "${license ?? 'UNKNOWN'}"`));
    } finally {
      rmSync(app, { recursive: true, force: true });
    }
  }
});

test('the production dependencies of this checkout all carry a decided licence', () => {
  const lockPath = new URL('../../package-lock.json', import.meta.url);
  const app = mkdtempSync(join(tmpdir(), 'avf-lic-'));
  try {
    mkdirSync(join(app, 'node_modules'));
    writeFileSync(join(app, 'node_modules', '.package-lock.json'), readFileSync(lockPath, 'utf8'));
    assert.ok(bundledLicences(app).length >= 5);
  } finally {
    rmSync(app, { recursive: true, force: true });
  }
});
