#!/usr/bin/env node
/**
 * avfilter: the command line. Parses options (commander), picks the mode and sets the exit
 * status. The modes live in src/app; this file only dispatches. Each mode's code is imported
 * when that mode runs: the daemon's master never loads the scanning code (engines, MIME,
 * unpackers), which only its workers use, and stays small.
 */
import { accessSync, constants, mkdtempSync, readFileSync, realpathSync, rmSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { CommanderError } from 'commander';
import type { Config } from '../src/config/load.js';
import type { Runtime } from '../src/app/runtime.js';
import { buildProgram } from '../src/cli/program.js';
import { quietOnClosedStdout } from '../src/cli/stdout.js';

quietOnClosedStdout();

/** main() has come to an end (see the 'exit' listener at the bottom). */
let settled = false;
const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };

/** Filter name = socket name: the basename it was started as (courierfilter runs active/NAME). */
function filterName(): string {
  return basename(process.argv[1] ?? 'avfilter').replace(/\.(js|ts|mjs)$/, '');
}

const program = buildProgram(pkg.version)
  .exitOverride()
  .configureOutput({ writeErr: (s) => process.stderr.write(s) });

async function main(): Promise<number> {
  try {
    program.parse(process.argv);
  } catch (err) {
    if (err instanceof CommanderError) return err.exitCode === 0 ? 0 : 2;
    throw err;
  }
  const o = program.opts<{
    file?: string; config?: boolean; verbose?: boolean; test?: string[]; batchTest?: boolean; foreground?: boolean; allowRoot?: boolean; debug?: boolean;
    installFilter?: boolean; uninstallFilter?: boolean; root?: string; quarantine?: string[]; to?: string[]; json?: boolean;
  }>();
  // `-t -v FILE...`: commander hands a variadic option every later word; take -v back out
  // (a file really named -v can be given as ./-v).
  if (o.test && o.test.some((a) => a === '-v' || a === '--verbose')) {
    o.verbose = true;
    o.test = o.test.filter((a) => a !== '-v' && a !== '--verbose');
  }
  if (program.args.length > 0) {
    process.stderr.write(`avfilter: unexpected argument ${program.args[0]} (files to scan go after -t)\n`);
    return 2;
  }
  const modes = [o.config, o.test, o.batchTest, o.quarantine, o.installFilter, o.uninstallFilter].filter(Boolean).length;
  if (modes > 1 || (modes === 1 && o.foreground)) {
    process.stderr.write('avfilter: choose one of --config, -t, --batch-test, --quarantine, --foreground, --install-filter, --uninstall-filter\n');
    return 2;
  }
  if (!o.quarantine && ((o.to?.length ?? 0) > 0 || o.json)) {
    process.stderr.write('avfilter: --to and --json go with --quarantine\n');
    return 2;
  }
  if (o.quarantine) return quarantineMode(o.quarantine, o.file, { to: o.to ?? [], json: !!o.json });
  if (o.debug && !o.foreground) {
    process.stderr.write('avfilter: --debug goes with --foreground (avfilter --foreground --debug)\n');
    return 2;
  }
  if (o.root !== undefined && !o.installFilter && !o.uninstallFilter) {
    process.stderr.write('avfilter: --root goes with --install-filter or --uninstall-filter\n');
    return 2;
  }
  if (o.installFilter || o.uninstallFilter) {
    const install = await import('../src/app/install.js');
    const configFile = o.file ?? process.env['AVFILTER_CONFIG'];
    const opts = {
      root: resolve(o.root ?? '/'),
      ...(configFile ? { configFile: resolve(configFile) } : {}),
      node: process.execPath,
      program: realpathSync(fileURLToPath(import.meta.url)),
      // Synchronous and never throwing: a reader that goes away (| head) must not stop an
      // install half done.
      out: (l: string) => {
        try {
          writeSync(1, `${l}\n`);
        } catch {
          // EPIPE: nobody reads the report any more; the work goes on
        }
      },
      env: process.env,
    };
    try {
      return o.installFilter ? install.installFilter(opts) : install.uninstallFilter(opts);
    } catch (err) {
      process.stderr.write(`avfilter: ${(err as Error).message}\n`);
      return 2;
    }
  }
  if (modes === 0) {
    // Exit as soon as the daemon is done: a scan thread still busy must not keep a stopped
    // filter alive (courierfilter waits for it).
    const { runMaster } = await import('../src/master/master.js');
    const status = await runMaster({ configFile: o.file, foreground: !!o.foreground, name: filterName(), allowRoot: !!o.allowRoot, debug: !!o.debug });
    settled = true;
    process.exit(status);
  }

  const { loadResolvedConfig } = await import('../src/app/default-engine.js');
  const { createRuntime } = await import('../src/app/runtime.js');
  let cfg: Config;
  try {
    cfg = await loadResolvedConfig(o.file);
  } catch (err) {
    process.stderr.write(`avfilter: ${(err as Error).message}\n`);
    return 2;
  }
  if (o.config) {
    // Courier starts the daemon as its own user: a config root can read and that user cannot
    // would pass here and fail there (EACCES at start, reload-failed on HUP).
    const unreadable = await unreadableByDaemon(cfg);
    if (unreadable) {
      process.stderr.write(`avfilter: ${unreadable}\n`);
      return 2;
    }
    // The one validation path: build what the daemon's workers build (engines, rules, the
    // tmpdir checks), so --config refuses exactly what the daemon would refuse.
    let rt: Runtime;
    try {
      rt = createRuntime(cfg, { makeTmpdir: false, noCache: true });
    } catch (err) {
      process.stderr.write(`avfilter: ${(err as Error).message}\n`);
      return 2;
    }
    let versions: string[] | undefined;
    let unpackVersion: string | undefined;
    let signatures: string[] | undefined;
    try {
      if (o.verbose) versions = await engineVersions(rt);
      if (o.verbose) signatures = await (await import('../src/app/signatures.js')).signatureLines(cfg);
      if (o.verbose && rt.unpackVersion) unpackVersion = await rt.unpackVersion().catch((err: Error) => `unavailable: ${err.message}`);
    } finally {
      await rt.close();
    }
    const { formatConfig } = await import('../src/config/print.js');
    process.stdout.write(formatConfig(cfg, versions, unpackVersion, signatures));
    return 0;
  }
  let rt: Runtime;
  let privateTmp: string | undefined;
  try {
    if (!usable(cfg.tmpdir)) {
      // -t and --batch-test run as any user: a tmpdir this user cannot use is replaced by a
      // private one, removed at exit.
      privateTmp = mkdtempSync(join(tmpdir(), 'avfilter-'));
      cfg = Object.freeze({ ...cfg, tmpdir: privateTmp });
    }
    const { stderrLogger } = await import('../src/ops/log.js');
    const warn = stderrLogger();
    rt = createRuntime(cfg, { makeTmpdir: true, engineEvent: (event, fields) => warn.event(event, fields, 'warning') });
  } catch (err) {
    process.stderr.write(`avfilter: ${(err as Error).message}\n`);
    if (privateTmp) rmSync(privateTmp, { recursive: true, force: true });
    return 2;
  }
  try {
    if (o.test) {
      const progress = process.stderr.isTTY ? (l: string) => process.stderr.write(`\r${l.slice(0, 78).padEnd(78)}`) : undefined;
      const { runTestMode } = await import('../src/app/test-mode.js');
      // the summary after the progress line is wiped; stdout keeps exactly the contract's lines
      const summary = (l: string) => process.stderr.write(`${progress ? `\r${''.padEnd(78)}\r` : ''}${l}\n`);
      return await runTestMode(o.test, rt, { verbose: !!o.verbose, out: (l) => process.stdout.write(`${l}\n`), progress, summary });
    }
    const { runBatchMode } = await import('../src/app/batch-mode.js');
    const { stderrLogger } = await import('../src/ops/log.js');
    return await runBatchMode(process.stdin, process.stdout, rt, stderrLogger(cfg.log_level, cfg.log_format));
  } finally {
    await rt.close();
    if (privateTmp) rmSync(privateTmp, { recursive: true, force: true });
  }
}

/**
 * --quarantine: the config as parsed (no engine is probed or built: only quarantine_dir, the
 * sendmail command and the log keys are read); events go where the daemon's lines go.
 */
async function quarantineMode(args: string[], file: string | undefined, o: { to: string[]; json: boolean }): Promise<number> {
  const { loadConfig } = await import('../src/config/load.js');
  let cfg: Config;
  try {
    cfg = loadConfig(file);
  } catch (err) {
    process.stderr.write(`avfilter: ${(err as Error).message}\n`);
    return 2;
  }
  const { createLogger, stderrSink } = await import('../src/ops/log.js');
  const { openLogOutput } = await import('../src/ops/log-output.js');
  const output = openLogOutput(cfg, stderrSink(), (l) => process.stderr.write(`${l}\n`));
  const { runQuarantine } = await import('../src/quarantine/cli.js');
  try {
    return await runQuarantine(args, cfg, {
      ...o, out: (l) => process.stdout.write(`${l}\n`), err: (l) => process.stderr.write(`${l}\n`),
      log: createLogger(output.sink, cfg.log_level, output.style),
    });
  } finally {
    await output.close();
  }
}

/** tmpdir can be used by this user as it is, or made: nothing is created to find out. */
function usable(dir: string): boolean {
  try {
    accessSync(dir, constants.W_OK | constants.X_OK);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') return false;
  }
  // Missing: usable when its nearest existing ancestor is writable (createRuntime makes it).
  let parent = dir;
  for (;;) {
    const up = join(parent, '..');
    if (up === parent) return false;
    parent = up;
    try {
      accessSync(parent, constants.W_OK | constants.X_OK);
      return true;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') return false;
    }
  }
}

/**
 * As root: why the user the daemon will run as (the owner of socket_dir_all, else Courier's
 * account) cannot read the config file, or undefined.
 */
async function unreadableByDaemon(cfg: Config): Promise<string | undefined> {
  if (typeof process.geteuid !== 'function' || process.geteuid() !== 0) return undefined;
  const { BUILT_IN } = await import('../src/config/load.js');
  if (cfg.source === BUILT_IN) return undefined;
  const { daemonUser, unreadableBy } = await import('../src/app/courier-user.js');
  const user = daemonUser(cfg.socket_dir_all);
  if (!user || user.uid === 0) return undefined;
  const why = unreadableBy(user, cfg.source);
  if (!why) return undefined;
  const where = why.path === resolve(cfg.source) ? '' : ` (${why.path})`;
  return `${cfg.source}: not readable by ${user.name}, the user the filter runs as${where}: ${why.why}; ` +
    `e.g. chgrp ${user.name} ${why.path} && chmod g+r${why.path === resolve(cfg.source) ? '' : 'x'} ${why.path}`;
}

async function engineVersions(rt: Runtime): Promise<string[]> {
  return Promise.all(rt.engines.map((e) => e.version(AbortSignal.timeout(5000)).catch((err: Error) => `unavailable: ${err.message}`)));
}

// Node exits when nothing is left to wait on, even with main() unsettled (a promise that can
// never resolve): then -t would exit 0, "clean", with files unreported. Fail closed instead.
process.on('exit', () => {
  if (settled) return;
  process.stderr.write('avfilter: internal error: stopped with work unfinished (a scan never settled); nothing was reported clean\n');
  process.exitCode = 2;
});
main().then(
  (code) => {
    settled = true;
    process.exitCode = code;
  },
  (err: unknown) => {
    settled = true;
    process.stderr.write(`avfilter: internal error: ${err instanceof Error ? err.stack ?? err.message : String(err)}\n`);
    process.exitCode = 2;
  },
);
