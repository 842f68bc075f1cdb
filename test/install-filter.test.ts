/**
 * `avfilter --install-filter` / `--uninstall-filter` into a temporary root (--root), never the
 * host's /usr/lib/courier or /etc/courier: the wrapper, the sample config, the private
 * directories with their owners and modes, the check run as Courier's user, idempotence; and
 * `avfilter --config` refusing, as root, a config Courier's user cannot read.
 *
 * Needs root (files owned by courier) and the courier account (courier-mta); CI has both, so
 * under CI=true a missing one fails rather than skips.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import {
  chmodSync, chownSync, existsSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { test } from 'node:test';
import { sampleConfig } from '../src/app/install.js';
import { parseConfig } from '../src/config/load.js';
import { AVFILTER, lookupUser, runAvfilter } from './helpers/avfilter-proc.js';

const courier = lookupUser('courier');
const isRoot = process.getuid?.() === 0;
const why = !isRoot ? 'needs root (CI runs as root)' : !courier ? 'needs the courier account (apt-get install courier-mta)' : undefined;
if (why && process.env['CI'] === 'true') throw new Error(`install-filter tests: ${why}`);
const opts = { skip: why ?? false };
const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };

/** A fresh root Courier's user can traverse (mkdtemp makes 0700 directories). */
function newRoot(): string {
  const root = mkdtempSync(join(tmpdir(), 'avf-install-'));
  chmodSync(root, 0o755);
  return root;
}

const paths = (root: string) => ({
  wrapper: join(root, 'usr/lib/courier/filters/avfilter'),
  config: join(root, 'etc/courier/filters/avfilter.toml'),
  tmpdir: join(root, 'var/lib/avfilter/tmp'),
  quarantine: join(root, 'var/lib/avfilter/quarantine'),
  active: join(root, 'etc/courier/filters/active'),
});

const install = (root: string, more: string[] = []) => runAvfilter(['--install-filter', '--root', root, ...more]);
const uninstall = (root: string) => runAvfilter(['--uninstall-filter', '--root', root]);

/** Every path under root with its type, mode, owner and (for files) content. */
function snapshot(root: string): string[] {
  const out: string[] = [];
  const walk = (d: string): void => {
    for (const n of readdirSync(d).sort()) {
      const p = join(d, n);
      const st = lstatSync(p);
      const body = st.isFile() ? readFileSync(p, 'utf8') : '';
      out.push(`${relative(root, p)} ${st.mode.toString(8)} ${st.uid}:${st.gid} ${body}`);
      if (st.isDirectory()) walk(p);
    }
  };
  walk(root);
  return out;
}

test('install into an empty root: wrapper, sample config and private directories, with their modes and owners; run twice, the same result', opts, () => {
  const root = newRoot();
  const p = paths(root);
  const first = install(root);
  assert.equal(first.code, 0, first.stdout + first.stderr);
  for (const f of [p.wrapper, p.config, p.tmpdir, p.quarantine]) assert.match(first.stdout, new RegExp(`^created +${f} `, 'm'), f);
  assert.match(first.stdout, /checked +as courier: the config loads and the engines answer/);
  assert.match(first.stdout, /filterctl start avfilter/);
  assert.match(first.stdout, /syslog/);
  // The tests' clamd.conf names a socket nobody serves: the embedded engine, and a loud warning.
  assert.match(first.stdout, /no real signatures/);

  const w = lstatSync(p.wrapper);
  assert.equal(w.mode & 0o7777, 0o755);
  assert.equal(w.uid, 0);
  const text = readFileSync(p.wrapper, 'utf8');
  assert.ok(text.startsWith(`#!${process.execPath}\n`), text);
  assert.ok(text.includes(AVFILTER), `the wrapper names ${AVFILTER}:\n${text}`);
  assert.ok(text.includes(p.config), 'a config other than the default is named in the wrapper');

  const c = lstatSync(p.config);
  assert.equal(c.mode & 0o7777, 0o640);
  assert.deepEqual([c.uid, c.gid], [0, courier!.gid]);
  assert.equal(readFileSync(p.config, 'utf8'), sampleConfig(root));
  for (const d of [p.tmpdir, p.quarantine]) {
    const st = lstatSync(d);
    assert.ok(st.isDirectory(), d);
    assert.equal(st.mode & 0o7777, 0o700, d);
    assert.deepEqual([st.uid, st.gid], [courier!.uid, courier!.gid], d);
  }

  const before = snapshot(root);
  const second = install(root);
  assert.equal(second.code, 0, second.stdout + second.stderr);
  assert.doesNotMatch(second.stdout, /^(created|updated|fixed|replaced)/m, 'nothing to do the second time');
  for (const f of [p.wrapper, p.config, p.tmpdir, p.quarantine]) assert.match(second.stdout, new RegExp(`^in place +${f} `, 'm'), f);
  assert.deepEqual(snapshot(root), before, 'the second run changed nothing');
});

test('the sample config loads and keeps every private path under the root', opts, () => {
  const root = '/some/root';
  const cfg = parseConfig(sampleConfig(root), 'sample.toml');
  for (const k of ['pid_file', 'pipe', 'tmpdir', 'quarantine_dir'] as const) assert.ok(cfg[k].startsWith(`${root}/`), `${k} = ${cfg[k]}`);
  assert.equal(cfg.engine_origin, 'default-embedded', 'the sample names no engine: the default applies');
});

test('the wrapper runs with an empty environment, as courierfilter runs filters', opts, () => {
  const root = newRoot();
  assert.equal(install(root).code, 0);
  const r = spawnSync(paths(root).wrapper, ['--version'], { env: {}, cwd: '/', encoding: 'utf8', uid: courier!.uid, gid: courier!.gid });
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.stdout.trim(), pkg.version);
});

test('a private directory with the wrong owner and mode is put right and said so', opts, () => {
  const root = newRoot();
  const p = paths(root);
  mkdirSync(p.tmpdir, { recursive: true, mode: 0o755 });
  chmodSync(p.tmpdir, 0o755);
  const r = install(root);
  assert.equal(r.code, 0, r.stdout + r.stderr);
  assert.match(r.stdout, new RegExp(`^fixed +${p.tmpdir} \\(tmpdir; owner root:root -> courier, mode 0755 -> 0700\\)`, 'm'));
  const st = lstatSync(p.tmpdir);
  assert.deepEqual([st.uid, st.mode & 0o7777], [courier!.uid, 0o700]);
});

test('a pid file in a directory of avfilter\'s own gets that directory owned by courier; Courier\'s /run/courier is root:courier 0775', opts, () => {
  const root = newRoot();
  const p = paths(root);
  mkdirSync(join(root, 'etc/courier/filters'), { recursive: true });
  writeFileSync(p.config, sampleConfig(root).replace(`pid_file = "${root}/run/courier/avfilter.pid"`, `pid_file = "${root}/run/avfilter/avfilter.pid"`));
  chownSync(p.config, 0, courier!.gid);
  const r = install(root);
  assert.equal(r.code, 0, r.stdout + r.stderr);
  const own = lstatSync(join(root, 'run/avfilter'));
  assert.deepEqual([own.uid, own.mode & 0o7777], [courier!.uid, 0o755]);
  const courierRun = lstatSync(join(root, 'run/courier'));
  assert.deepEqual([courierRun.uid, courierRun.gid, courierRun.mode & 0o7777], [0, courier!.gid, 0o775]);
});

test('the check as courier catches a config courier cannot read (0600 root), and the config is left as the admin wrote it', opts, () => {
  const root = newRoot();
  const p = paths(root);
  mkdirSync(join(root, 'etc/courier/filters'), { recursive: true });
  const mine = `${sampleConfig(root)}log_level = "debug"\n`;
  writeFileSync(p.config, mine, { mode: 0o600 });
  const r = install(root);
  assert.equal(r.code, 2, r.stdout + r.stderr);
  assert.match(r.stdout, /PROBLEM: as courier, .*avfilter --config fails: .*EACCES/);
  assert.match(r.stdout, new RegExp(`PROBLEM: ${p.config} is not readable by courier: .*mode 0600, owner root:root`));
  assert.doesNotMatch(r.stdout, /filterctl start/, 'no "next step" while the check fails');
  assert.equal(readFileSync(p.config, 'utf8'), mine);
  assert.equal(lstatSync(p.config).mode & 0o7777, 0o600, 'the admin\'s file keeps its mode');
  // Made readable, the same command succeeds.
  chownSync(p.config, 0, courier!.gid);
  chmodSync(p.config, 0o640);
  const again = install(root);
  assert.equal(again.code, 0, again.stdout + again.stderr);
  assert.match(again.stdout, new RegExp(`^in place +${p.config} \\(kept as it is\\)`, 'm'));
});

test('a wrapper of ours that names other paths (node or avfilter moved) is rewritten; an old symbolic link is replaced', opts, () => {
  const root = newRoot();
  const p = paths(root);
  assert.equal(install(root).code, 0);
  const good = readFileSync(p.wrapper, 'utf8');
  writeFileSync(p.wrapper, good.replace(AVFILTER, '/opt/old/dist/bin/avfilter.js'));
  const r = install(root);
  assert.equal(r.code, 0, r.stdout + r.stderr);
  assert.match(r.stdout, new RegExp(`^updated +${p.wrapper} `, 'm'));
  assert.equal(readFileSync(p.wrapper, 'utf8'), good);
  rmSync(p.wrapper);
  symlinkSync(AVFILTER, p.wrapper);
  const l = install(root);
  assert.equal(l.code, 0, l.stdout + l.stderr);
  assert.match(l.stdout, new RegExp(`^replaced +${p.wrapper} `, 'm'));
  assert.ok(lstatSync(p.wrapper).isFile(), 'a file now, not a link');
  assert.equal(readFileSync(p.wrapper, 'utf8'), good);
});

test('a filter program there that install did not write is refused and left alone', opts, () => {
  const root = newRoot();
  const p = paths(root);
  mkdirSync(join(root, 'usr/lib/courier/filters'), { recursive: true });
  writeFileSync(p.wrapper, '#!/bin/sh\nexec something-else\n', { mode: 0o755 });
  const r = install(root);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /was not written by avfilter --install-filter: move it away/);
  assert.equal(readFileSync(p.wrapper, 'utf8'), '#!/bin/sh\nexec something-else\n');
  assert.equal(existsSync(p.config), false, 'nothing else was done');
});

test('uninstall removes the wrapper, the unchanged sample and the empty directories', opts, () => {
  const root = newRoot();
  const p = paths(root);
  assert.equal(install(root).code, 0);
  const r = uninstall(root);
  assert.equal(r.code, 0, r.stdout + r.stderr);
  for (const f of [p.wrapper, p.config, p.tmpdir, p.quarantine, join(root, 'var/lib/avfilter')]) {
    assert.equal(existsSync(f), false, f);
    assert.match(r.stdout, new RegExp(`^removed +${f}`, 'm'), f);
  }
});

test('uninstall keeps the admin\'s edited config and quarantined mail, and says so', opts, () => {
  const root = newRoot();
  const p = paths(root);
  assert.equal(install(root).code, 0);
  const edited = readFileSync(p.config, 'utf8').replace('# [action]\n# infected = "drop"', '[action]\ninfected = "reject"');
  assert.notEqual(edited, sampleConfig(root));
  writeFileSync(p.config, edited);
  writeFileSync(join(p.quarantine, 'infected-1'), 'kept');
  const r = uninstall(root);
  assert.equal(r.code, 0, r.stdout + r.stderr);
  assert.equal(existsSync(p.wrapper), false);
  assert.equal(readFileSync(p.config, 'utf8'), edited);
  assert.match(r.stdout, new RegExp(`^left +${p.config} \\(edited`, 'm'));
  assert.equal(readFileSync(join(p.quarantine, 'infected-1'), 'utf8'), 'kept');
  assert.match(r.stdout, new RegExp(`^left +${p.quarantine} .*1 entry`, 'm'));
  assert.equal(existsSync(p.tmpdir), false, 'the empty tmpdir goes');
  // Run again: nothing more to do, nothing more removed.
  const again = uninstall(root);
  assert.equal(again.code, 0);
  assert.match(again.stdout, new RegExp(`^not there ${p.wrapper}`, 'm'));
  assert.equal(readFileSync(p.config, 'utf8'), edited);
});

test('uninstall refuses while the filter is active', opts, () => {
  const root = newRoot();
  const p = paths(root);
  assert.equal(install(root).code, 0);
  mkdirSync(p.active, { recursive: true });
  symlinkSync(p.wrapper, join(p.active, 'avfilter'));
  const r = uninstall(root);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /filter is active .*filterctl stop avfilter/);
  assert.ok(existsSync(p.wrapper), 'the running filter\'s program stays');
});

test('--config as root refuses a config the daemon\'s user cannot read (0600, root), naming the file, the user and the mode', opts, () => {
  const dir = newRoot();
  const cfg = join(dir, 'avfilter.toml');
  // socket_dir_all is Courier's (missing here): the daemon runs as Courier's user.
  writeFileSync(cfg, `socket_dir_all = "${dir}/allfilters"\ntmpdir = "${dir}/work"\n`, { mode: 0o600 });
  chmodSync(cfg, 0o600);
  const r = runAvfilter(['-f', cfg, '--config']);
  assert.equal(r.code, 2, r.stdout);
  assert.match(r.stderr, new RegExp(`${cfg}: not readable by courier, .*mode 0600, owner root:root`));
  assert.equal(r.stdout, '');
  chmodSync(cfg, 0o644);
  assert.equal(runAvfilter(['-f', cfg, '--config']).code, 0, 'readable, it passes');
  // A daemon that runs as root (its socket directory is root's) reads anything: no refusal.
  mkdirSync(join(dir, 'allfilters'));
  chmodSync(cfg, 0o600);
  const asRoot = runAvfilter(['-f', cfg, '--config']);
  assert.equal(asRoot.code, 0, asRoot.stderr);
});

test('npm pack ships what npm install -g needs: dist/bin, dist/src, the rules and the man pages; prepare builds dist/', () => {
  const pj = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { scripts: Record<string, string> };
  assert.match(pj.scripts['prepare'] ?? '', /npm run build/, 'a clone installed with npm install -g or packed with npm pack gets dist/ built');
  const cwd = new URL('../../', import.meta.url);
  // --ignore-scripts: the build already ran (the tests run from dist/); only the file list matters here.
  const r = spawnSync('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], { cwd, encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  const files = new Set((JSON.parse(r.stdout) as Array<{ files: Array<{ path: string }> }>)[0]!.files.map((f) => f.path));
  for (const f of ['dist/bin/avfilter.js', 'dist/bin/avfilter_sig.js', 'dist/src/app/install.js', 'dist/src/master/master.js', 'rules/eicar.yar', 'man/avfilter.8', 'package.json']) {
    assert.ok(files.has(f), `the package lacks ${f}`);
  }
  assert.ok(![...files].some((f) => f.startsWith('dist/test/') || f.startsWith('src/') || f.startsWith('test/')), 'no tests or sources in the package');
});
