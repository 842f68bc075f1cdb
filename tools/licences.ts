/**
 * The licences of what the Debian package bundles, read from an installed production tree's
 * lock (node_modules/.package-lock.json, written by `npm ci`), and Debian's copyright file made
 * of them. Every bundled package must carry a licence this project has decided on (KNOWN): a new
 * dependency under another licence fails the package build and its test until someone decides.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

export interface Bundled {
  readonly name: string;
  readonly version: string;
  readonly licence: string;
}

/**
 * Licences a bundled package may carry, with the Debian short name used in the copyright file.
 * 7z-wasm says "SEE LICENSE IN License.txt": 7-Zip is LGPL-2.1-or-later, its RAR decoder adds the
 * unRAR restriction (LICENSING.md says how avfilter stands on it).
 */
export const KNOWN: Readonly<Record<string, string>> = {
  'MIT': 'Expat',
  'ISC': 'ISC',
  'Apache-2.0': 'Apache-2.0',
  'BSD-2-Clause': 'BSD-2-clause',
  'BSD-3-Clause': 'BSD-3-clause',
  '(MIT OR EUPL-1.1+)': 'Expat or EUPL-1.1+',
  'SEE LICENSE IN License.txt': 'LGPL-2.1+ with unRAR restriction',
};

/** The packages under `app`/node_modules, from the lock npm ci leaves there. */
export function bundledLicences(app: string): Bundled[] {
  const lock = JSON.parse(readFileSync(join(app, 'node_modules', '.package-lock.json'), 'utf8')) as {
    packages: Record<string, { version?: string; license?: string; dev?: boolean }>;
  };
  const out: Bundled[] = [];
  for (const [path, p] of Object.entries(lock.packages)) {
    if (!path.startsWith('node_modules/') || p.dev) continue;
    const name = path.slice(path.lastIndexOf('node_modules/') + 'node_modules/'.length);
    const licence = p.license ?? 'UNKNOWN';
    if (!(licence in KNOWN)) throw new Error(`${name} ${p.version ?? ''} is under "${licence}", a licence avfilter has not decided on: see LICENSING.md`);
    out.push({ name, version: p.version ?? '?', licence });
  }
  return out.sort((a, b) => a.name.localeCompare(b.name));
}

/** Debian's machine-readable copyright file for the package. */
export function copyrightFile(bundled: readonly Bundled[]): string {
  const parts = [
    'Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/',
    'Upstream-Name: avfilter',
    'Comment: The full licence text of each bundled package is in its directory under',
    ' /usr/lib/avfilter/node_modules. LICENSING.md in this directory says how avfilter',
    ' stands on the unRAR restriction of 7-Zip\'s RAR decoder.',
    '',
    'Files: *',
    'Copyright: the avfilter developers',
    'License: GPL-3+ with unRAR exception',
    ' avfilter is free software: you can redistribute it and/or modify it under the',
    ' terms of the GNU General Public License as published by the Free Software',
    ' Foundation, either version 3 of the License, or (at your option) any later version,',
    ' with the additional permission given in LICENSING.md to combine it with 7-Zip\'s',
    ' unRAR code. On Debian systems the GPL is in /usr/share/common-licenses/GPL-3.',
    '',
  ];
  for (const b of bundled) {
    parts.push(`Files: usr/lib/avfilter/node_modules/${b.name}/*`, 'Copyright: its authors, as its licence file there says', `Comment: ${b.name} ${b.version}`, `License: ${KNOWN[b.licence]}`, '');
  }
  return parts.join('\n');
}
