/**
 * The command-line scanner engine (`type = "command"`): any scanner that takes a file path,
 * e.g. `clamscan --no-summary {}`, run once per item without a shell.
 *
 * Owns: option validation, the item's private file (a 0600 file in a fresh 0700 directory under
 * tmpdir, removed whatever happens), the bound on scanner processes at once, the size limit, the
 * per-item deadline (waiting for a process slot and writing the file count), and the meaning of
 * the exit (output.ts).
 * Inputs: CommandOptions once; then ScanItems with an AbortSignal.
 * Outputs: EngineResults (a rejection only for a bug of ours); version() gives the first line of versionCommand's
 * output, else the program.
 * Fails with: createCommandEngine throws EBADOPTION (config time: no program, a program not
 * found or not executable, no "{}" argument, a name pattern without exactly one group); scans return ESIZE_LIMIT (never skipped),
 * ESCAN_TIMEOUT (the scanner's process group is killed), EABORTED, EIO (the item could not be
 * written), ESCANNER (the program could not be started, another exit code, a signal, too much
 * output) and EPROTOCOL (a clean exit code with a virus name in the output).
 */
import { setMaxListeners } from 'node:events';
import { accessSync, constants as fsc, createWriteStream, statSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { delimiter, join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { EngineErrorCode, type Engine, type EngineResult, type ScanItem, type ScanSource } from '../engine.js';
import { deadline } from '../deadline.js';
import { badOption, positiveInt } from '../options.js';
import { Slots } from '../slots.js';

const ENGINE = 'command';
import { clean, resultOf, type ExitRules } from './output.js';
import { MAX_OUTPUT_BYTES, run } from './run.js';

export interface CommandOptions {
  /** argv; every "{}" in an argument is replaced by the path of the item's file. */
  command: readonly string[];
  /** argv run for `--config -v`; [] or undefined: the version is the program's name. */
  versionCommand?: readonly string[] | undefined;
  scanTimeoutMs: number;
  maxProcesses: number;
  maxBytes: number;
  cleanExit: readonly number[];
  infectedExit: readonly number[];
  namePattern: string;
  /** The config's tmpdir (0700, avfilter's own): items are written below it. */
  tmpdir: string;
}

const PLACEHOLDER = '{}';
/** The item's file name inside its private directory (scanners print it; keep it plain). */
const ITEM_FILE = 'item';
const VERSION_TIMEOUT_MS = 10_000;
const MAX_TIMER_MS = 2 ** 31 - 1;

export function createCommandEngine(opts: CommandOptions): Engine {
  const o = validate(opts);
  const program = o.command[0]!;
  const slots = new Slots(o.maxProcesses);
  const shutdown = new AbortController();
  setMaxListeners(0, shutdown.signal);

  async function scan(item: ScanItem, signal: AbortSignal): Promise<EngineResult> {
    if (shutdown.signal.aborted) return error(EngineErrorCode.ABORTED, 'command engine closed');
    const size = item.source.size;
    if (!(size <= o.maxBytes)) return error(EngineErrorCode.SIZE_LIMIT, `${program}: ${size} bytes exceed max_size ${o.maxBytes}; not scanned`);
    const d = deadline(o.scanTimeoutMs, signal, shutdown.signal);
    const stopped = (): EngineResult => d.timedOut()
      ? error(EngineErrorCode.SCAN_TIMEOUT, `${program}: no verdict within ${o.scanTimeoutMs} ms; its process group was killed`)
      : error(EngineErrorCode.ABORTED, `${program}: aborted`);
    let dir: string | undefined;
    let release: (() => void) | undefined;
    try {
      release = await slots.acquire(d.signal);
      if (release === undefined) return stopped();
      try {
        // mode 0700; named after this process, so that the master's sweep removes what a
        // worker killed in the middle of a scan left (master/tmp-sweep.ts)
        dir = await mkdtemp(join(o.tmpdir, `cmd-${process.pid}-`));
        await writeItem(item.source, join(dir, ITEM_FILE), d.signal);
      } catch (err) {
        if (d.signal.aborted) return stopped();
        return error(EngineErrorCode.IO, `cannot write the item for ${program} under ${o.tmpdir}: ${describe(err)}`);
      }
      const path = join(dir, ITEM_FILE);
      const r = await run(o.command.map((a) => a.split(PLACEHOLDER).join(path)), d.signal);
      switch (r.kind) {
        case 'aborted': return stopped();
        case 'overflow': return error(EngineErrorCode.SCANNER, `${program} wrote more than ${MAX_OUTPUT_BYTES} bytes of output; its process group was killed`);
        case 'spawn-error': return error(EngineErrorCode.SCANNER, `cannot run ${program}: ${describe(r.error)}`);
      }
      return resultOf(r.exit, o.rules, program);
    } finally {
      // a bug here throws: the scan pipeline counts it as ours (origin internal), never as a
      // scanner error that action.error = "accept" could let through
      release?.();
      d.release();
      if (dir !== undefined) await rm(dir, { recursive: true, force: true }).catch(() => undefined);
    }
  }

  async function version(signal: AbortSignal): Promise<string> {
    if (o.versionCommand.length === 0) return `${o.programPath} (no version_command)`;
    const d = deadline(VERSION_TIMEOUT_MS, signal);
    try {
      const r = await run(o.versionCommand, d.signal);
      const what = o.versionCommand[0]!;
      if (r.kind === 'spawn-error') return `${program} (version unknown: cannot run ${what}: ${describe(r.error)})`;
      if (r.kind !== 'exit') return `${program} (version unknown: ${what} ${r.kind === 'aborted' ? 'did not finish' : 'wrote too much'})`;
      const first = `${r.exit.stdout}\n${r.exit.stderr}`.split('\n').map(clean).find((l) => l !== '');
      if (r.exit.code !== 0 || first === undefined) return `${program} (version unknown: ${what} exited ${r.exit.code ?? r.exit.signal})`;
      return first;
    } finally {
      d.release();
    }
  }

  return {
    label: 'command',
    scan,
    version,
    // no signatureVersion: what the scanner knows is not visible from here, so the verdict
    // cache keeps nothing of this engine
    healthy: () => !shutdown.signal.aborted,
    async close() {
      shutdown.abort();
    },
  };
}

/** The item's bytes into a new 0600 file (`wx`: never through a file or link that was there). */
async function writeItem(source: ScanSource, path: string, signal: AbortSignal): Promise<void> {
  const out = createWriteStream(path, { flags: 'wx', mode: 0o600 });
  await pipeline(source.bytes !== undefined && source.bytes.length === source.size ? [source.bytes] : source.stream(), out, { signal });
  if (out.bytesWritten !== source.size) throw new Error(`wrote ${out.bytesWritten} of the item's ${source.size} bytes`);
}

interface Validated {
  command: readonly string[];
  versionCommand: readonly string[];
  scanTimeoutMs: number;
  maxProcesses: number;
  maxBytes: number;
  rules: ExitRules;
  tmpdir: string;
  /** The executable the command runs (found in PATH when named without a slash). */
  programPath: string;
}

function validate(opts: CommandOptions): Validated {
  if (!Array.isArray(opts.command) || opts.command.length === 0 || opts.command[0] === '') {
    throw badOption(ENGINE, 'command must name a program, e.g. ["clamscan", "--no-summary", "{}"]');
  }
  // Without the item's path the scanner would scan something else and say "clean" every time.
  if (!opts.command.slice(1).some((a) => a.includes(PLACEHOLDER))) {
    throw badOption(ENGINE, `command ${JSON.stringify(opts.command)} has no "{}" argument for the path of the item to scan`);
  }
  // found now, so that --config and a reload refuse a scanner that is not there (every item
  // would be an error otherwise)
  const programPath = findProgram(opts.command[0]);
  positiveInt(ENGINE, 'scanTimeoutMs', opts.scanTimeoutMs, MAX_TIMER_MS);
  positiveInt(ENGINE, 'maxProcesses', opts.maxProcesses, 4096);
  positiveInt(ENGINE, 'maxBytes', opts.maxBytes, Number.MAX_SAFE_INTEGER);
  const codes = (name: string, v: readonly number[]): readonly number[] => {
    if (!Array.isArray(v) || v.length === 0 || v.some((c) => !Number.isInteger(c) || c < 0 || c > 255)) throw badOption(ENGINE, `${name} must list exit codes 0..255`);
    return [...v];
  };
  const cleanExit = codes('cleanExit', opts.cleanExit);
  const infectedExit = codes('infectedExit', opts.infectedExit);
  const both = cleanExit.filter((c) => infectedExit.includes(c));
  if (both.length > 0) throw badOption(ENGINE, `exit code ${both[0]} is in both clean_exit and infected_exit`);
  let namePattern: RegExp;
  try {
    namePattern = new RegExp(opts.namePattern);
  } catch (err) {
    throw badOption(ENGINE, `name_pattern: ${describe(err)}`);
  }
  if (new RegExp(`${namePattern.source}|`).exec('')!.length !== 2) throw badOption(ENGINE, 'name_pattern must have exactly one capture group (the virus name)');
  if (!opts.tmpdir.startsWith('/')) throw badOption(ENGINE, 'tmpdir must be an absolute path');
  return {
    command: [...opts.command],
    versionCommand: [...(opts.versionCommand ?? [])],
    scanTimeoutMs: opts.scanTimeoutMs,
    maxProcesses: opts.maxProcesses,
    maxBytes: opts.maxBytes,
    rules: { cleanExit, infectedExit, namePattern },
    tmpdir: opts.tmpdir,
    programPath,
  };
}

/** The executable spawn() will run: a path as given, else the first in $PATH. Throws EBADOPTION. */
function findProgram(program: string): string {
  const candidates = program.includes('/')
    ? [program]
    : (process.env['PATH'] ?? '').split(delimiter).filter((d) => d.startsWith('/')).map((d) => join(d, program));
  for (const c of candidates) {
    try {
      accessSync(c, fsc.X_OK);
      if (statSync(c).isFile()) return c;
    } catch {
      // not here
    }
  }
  throw badOption(ENGINE, program.includes('/')
    ? `${program} is not an executable file`
    : `${program} is not found in PATH (${process.env['PATH'] ?? ''}); name it with its full path`);
}

function error(code: string, message: string): EngineResult {
  return { status: 'error', code, message };
}

function describe(err: unknown): string {
  if (err instanceof Error) {
    const code = (err as NodeJS.ErrnoException).code;
    return code && !err.message.includes(code) ? `${code}: ${err.message}` : err.message;
  }
  return String(err);
}
