/**
 * `npm run deb`: builds avfilter_<version>-1_<arch>.deb from this checkout with dpkg-deb.
 *
 * What the package holds (the README, "Or as a Debian package", says the same for admins):
 *   /usr/lib/avfilter/            package.json, dist/bin, dist/src, rules/ and the production
 *                                 node_modules (`npm ci --omit=dev` against the lock file, so the
 *                                 native YARA-X module of the build machine's architecture)
 *   /usr/bin/avfilter, avfilter_sig          links to dist/bin/*.js (#!/usr/bin/env node)
 *   /usr/lib/courier/filters/avfilter        the wrapper `avfilter --install-filter` writes for
 *                                            these paths (so that command finds it in place)
 *   /etc/courier/filters/avfilter.toml       the commented sample config, a conffile
 *   /usr/share/man/man5, man8                the generated man pages
 *   /usr/share/doc/avfilter/                 README, docs, copyright (every bundled licence)
 * Maintainer scripts (debian/ at the top of the checkout): postinst creates the private
 * directories and runs the install check as Courier's user; prerm refuses to remove the
 * package while the filter is active in Courier; postrm purge removes what postinst created
 * but never quarantined mail. None of them starts or stops Courier.
 *
 * Written by hand rather than with debhelper: the package is a copy of a Node.js tree and a few
 * files, which dpkg-deb alone builds on any Debian machine without build dependencies.
 *
 * Usage: npm run deb [-- --out DIR]   (the .deb's path is printed on stdout)
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  chmodSync, copyFileSync, cpSync, existsSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import { sampleConfig, wrapperText } from '../src/app/install.js';
import { DEFAULT_CONFIG_PATH } from '../src/config/schema.js';
import { bundledLicences, copyrightFile } from './licences.js';

const root = fileURLToPath(new URL('../../', import.meta.url));
const APP = '/usr/lib/avfilter';
const NODE = '/usr/bin/node';

interface Pkg {
  readonly version: string;
  readonly description: string;
}

function main(argv: readonly string[]): void {
  let out = root;
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--out' && argv[i + 1]) out = resolve(argv[++i]!);
    else {
      process.stderr.write('usage: npm run deb [-- --out DIR]\n');
      process.exitCode = 2;
      return;
    }
  }
  const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as Pkg;
  for (const need of ['dist/bin/avfilter.js', 'dist/src', 'man/avfilter.8', 'package-lock.json']) {
    if (!existsSync(join(root, need))) throw new Error(`${need} is missing: run npm ci and npm run build first`);
  }
  const arch = execFileSync('dpkg', ['--print-architecture'], { encoding: 'utf8' }).trim();
  const version = `${pkg.version}-1`;
  const stage = mkdtempSync(join(tmpdir(), 'avfilter-deb-'));
  try {
    const deb = join(out, `avfilter_${version}_${arch}.deb`);
    build(stage, pkg, version, arch);
    mkdirSync(out, { recursive: true });
    execFileSync('dpkg-deb', ['--root-owner-group', '-Zxz', '--build', stage, deb], { stdio: ['ignore', 'ignore', 'inherit'] });
    process.stdout.write(`${deb}\n`);
  } finally {
    rmSync(stage, { recursive: true, force: true });
  }
}

function build(stage: string, pkg: Pkg, version: string, arch: string): void {
  const app = join(stage, APP);
  mkdirSync(app, { recursive: true });
  for (const f of ['package.json', 'package-lock.json']) copyFileSync(join(root, f), join(app, f));
  for (const d of ['dist/bin', 'dist/src', 'rules']) {
    cpSync(join(root, d), join(app, d), { recursive: true, filter: (src) => !src.endsWith('.map') });
  }
  // Production dependencies exactly as locked; no scripts (the project's own prepare needs the
  // dev dependencies, and no production dependency has an install script).
  execFileSync('npm', ['ci', '--omit=dev', '--ignore-scripts', '--no-audit', '--no-fund', '--prefer-offline', '--loglevel=error'], {
    cwd: app, stdio: ['ignore', 'ignore', 'inherit'],
  });
  rmSync(join(app, 'package-lock.json'));
  const yara = join(app, 'node_modules/@litko');
  if (!existsSync(yara) || readdirSync(yara).length === 0) {
    process.stderr.write(`avfilter deb: no YARA-X module for ${arch}: the package's embedded engine will not load (clamd still works)\n`);
  }

  const bin = join(stage, 'usr/bin');
  mkdirSync(bin, { recursive: true });
  for (const b of ['avfilter', 'avfilter_sig']) symlinkSync(`../lib/avfilter/dist/bin/${b}.js`, join(bin, b));

  const program = `${APP}/dist/bin/avfilter.js`;
  writeIn(stage, '/usr/lib/courier/filters/avfilter', wrapperText(NODE, program, DEFAULT_CONFIG_PATH), 0o755);
  writeIn(stage, DEFAULT_CONFIG_PATH, sampleConfig('/'), 0o644); // postinst gives it 0640 root:courier

  for (const page of readdirSync(join(root, 'man'))) {
    const section = page.slice(page.lastIndexOf('.') + 1);
    writeIn(stage, `/usr/share/man/man${section}/${page}.gz`, gzipSync(readFileSync(join(root, 'man', page)), { level: 9 }), 0o644);
  }
  const doc = '/usr/share/doc/avfilter';
  writeIn(stage, `${doc}/README.md`, readFileSync(join(root, 'README.md')), 0o644);
  writeIn(stage, `${doc}/LICENSING.md`, readFileSync(join(root, 'LICENSING.md')), 0o644);
  for (const f of readdirSync(join(root, 'docs'))) writeIn(stage, `${doc}/docs/${f}`, readFileSync(join(root, 'docs', f)), 0o644);
  writeIn(stage, `${doc}/copyright`, copyrightFile(bundledLicences(app)), 0o644);
  writeIn(stage, `${doc}/changelog.Debian.gz`, gzipSync(changelog(version), { level: 9 }), 0o644);

  // Modes as dpkg expects them whatever the umask: directories 0755, files 0644 unless executable.
  normaliseModes(stage);
  const debian = join(stage, 'DEBIAN');
  mkdirSync(debian, { mode: 0o755 });
  chmodSync(debian, 0o755);
  writeFileSync(join(debian, 'md5sums'), md5sums(stage));
  writeFileSync(join(debian, 'conffiles'), `${DEFAULT_CONFIG_PATH}\n`);
  for (const script of ['postinst', 'prerm', 'postrm']) {
    copyFileSync(join(root, 'debian', script), join(debian, script));
    chmodSync(join(debian, script), 0o755);
  }
  writeFileSync(join(debian, 'control'), control(pkg, version, arch, installedKiB(stage)));
  chmodSync(join(debian, 'control'), 0o644);
}

function control(pkg: Pkg, version: string, arch: string, kib: number): string {
  return [
    'Package: avfilter',
    `Version: ${version}`,
    `Architecture: ${arch}`,
    'Maintainer: avfilter developers <avfilter@localhost>',
    `Installed-Size: ${kib}`,
    'Depends: nodejs (>= 20), courier-mta, libc6',
    'Recommends: clamav-daemon',
    'Suggests: clamav-freshclam',
    'Section: mail',
    'Priority: optional',
    `Description: ${pkg.description.split(':')[0]}`,
    ' avfilter is a Courier global filter (courierfilter) that scans every message',
    ' with clamd and/or an embedded YARA-X engine, after extracting MIME parts and',
    ' archive members, and drops, rejects or tempfails infected mail. It answers',
    ' 451 rather than accept mail it could not scan.',
    ' .',
    ' After installing: check /etc/courier/filters/avfilter.toml, give the engines',
    ' real signatures (clamd with freshclam, or YARA rules), then',
    ' `filterctl start avfilter`. See avfilter(8) and /usr/share/doc/avfilter.',
    '',
  ].join('\n');
}

/** Debian's changelog: one entry for this build (the project's history is its git log). */
function changelog(version: string): string {
  const date = execFileSync('date', ['-R'], { encoding: 'utf8' }).trim();
  return `avfilter (${version}) unstable; urgency=medium\n\n  * Built from the avfilter sources with npm run deb.\n\n -- avfilter developers <avfilter@localhost>  ${date}\n`;
}

/** Writes `content` at the absolute package path `path` inside the stage. */
function writeIn(stage: string, path: string, content: string | Buffer, mode: number): void {
  const file = join(stage, path);
  mkdirSync(dirname(file), { recursive: true });
  writeFileSync(file, content, { mode });
  chmodSync(file, mode);
}

function walk(dir: string, visit: (path: string, isDir: boolean, isLink: boolean) => void): void {
  for (const name of readdirSync(dir).sort()) {
    const p = join(dir, name);
    const st = lstatSync(p);
    visit(p, st.isDirectory(), st.isSymbolicLink());
    if (st.isDirectory()) walk(p, visit);
  }
}

function normaliseModes(stage: string): void {
  chmodSync(stage, 0o755);
  walk(stage, (p, isDir, isLink) => {
    if (isLink) return;
    const mode = lstatSync(p).mode;
    chmodSync(p, isDir || (mode & 0o100) !== 0 ? 0o755 : 0o644);
  });
}

function md5sums(stage: string): string {
  const lines: string[] = [];
  walk(stage, (p, isDir, isLink) => {
    if (isDir || isLink || relative(stage, p).startsWith('DEBIAN')) return;
    if (`/${relative(stage, p)}` === DEFAULT_CONFIG_PATH) return; // conffiles are checked by dpkg itself
    lines.push(`${createHash('md5').update(readFileSync(p)).digest('hex')}  ${relative(stage, p)}`);
  });
  return `${lines.join('\n')}\n`;
}

function installedKiB(stage: string): number {
  let bytes = 0;
  walk(stage, (p, isDir, isLink) => {
    if (!isDir && !isLink) bytes += lstatSync(p).size;
  });
  return Math.ceil(bytes / 1024);
}

main(process.argv.slice(2));
