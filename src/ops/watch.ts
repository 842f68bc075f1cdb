/**
 * Watching the config file and the YARA rule directories (config key `watch`): an edit asks for
 * the same reload as SIGHUP once the files have been quiet for QUIET_MS.
 *
 * Owns: which paths count (the config file itself; *.yar / *.yara files directly in a rules
 * directory, as the rules loader reads them — editor swap and backup files do not count), the
 * debounce, and the watcher's failures. Directories are watched rather than files, so an
 * editor's write-then-rename (a new inode at the same name) is seen like an in-place write.
 * A half-written or broken file is not special here: the reload it causes fails, is logged and
 * keeps the old state, and the next edit tries again.
 * Inputs: the paths (from the config in force). Outputs: calls to `onSettled(paths)`; log events
 * `watch-error` (a watcher that fails is logged and closed: the filter goes on without it).
 * Runs in the master only, on file-system events: nothing per message.
 */
import { watch, type FSWatcher } from 'chokidar';
import { basename, dirname, resolve } from 'node:path';
import type { Logger } from './log.js';
import { messageOf } from '../errors.js';

/** Quiet time after the last change before the reload: editors write in several steps. */
export const QUIET_MS = 2000;

const RULE_FILE = /\.(yar|yara)$/i;

export interface WatchTargets {
  /** The config file ('' when the daemon runs on built-in defaults). */
  readonly configFile: string;
  readonly ruleDirs: readonly string[];
}

export class FileWatcher {
  private watcher: FSWatcher | undefined;
  private timer: NodeJS.Timeout | undefined;
  private changed = new Set<string>();
  private key = '';
  private targets: WatchTargets = { configFile: '', ruleDirs: [] };

  constructor(private readonly log: Logger, private readonly onSettled: (paths: string[]) => void, private readonly quietMs = QUIET_MS) {}

  /** Watches `targets` (undefined: nothing); the same targets again change nothing. */
  set(targets: WatchTargets | undefined): void {
    const norm = targets && { configFile: targets.configFile && resolve(targets.configFile), ruleDirs: [...new Set(targets.ruleDirs.map((d) => resolve(d)))].sort() };
    const key = norm ? JSON.stringify(norm) : '';
    if (key === this.key) return;
    this.close();
    this.key = key;
    if (!norm) return;
    this.targets = norm;
    const dirs = [...new Set([...(norm.configFile ? [dirname(norm.configFile)] : []), ...norm.ruleDirs])];
    if (dirs.length === 0) return;
    try {
      // depth 0: the files directly in each directory (the rules loader does not recurse either)
      // and nothing but the files that matter: a tmpdir or spool beside the config file would
      // otherwise cost the master an event for every temp file of every message
      const roots = new Set(dirs);
      const ignored = (path: string): boolean => !roots.has(resolve(path)) && !this.relevant(path);
      const w = watch(dirs, { ignoreInitial: true, depth: 0, persistent: true, ignored });
      w.on('all', (_event, path) => this.seen(path));
      w.on('error', (err) => this.failed(w, messageOf(err)));
      this.watcher = w;
    } catch (err) {
      this.log.event('watch-error', { reason: messageOf(err), kept: 'no watching; reload with avfilter_sig or a signal' }, 'error');
    }
  }

  /** A reload started for another reason reads the files now: pending changes are covered. */
  covered(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    this.changed.clear();
  }

  close(): void {
    this.covered();
    const w = this.watcher;
    this.watcher = undefined;
    this.key = '';
    if (w) void w.close().catch(() => undefined);
  }

  private relevant(path: string): boolean {
    const p = resolve(path);
    if (p === this.targets.configFile) return true;
    return RULE_FILE.test(p) && !basename(p).startsWith('.') && this.targets.ruleDirs.includes(dirname(p));
  }

  private seen(path: string): void {
    if (!this.relevant(path)) return;
    this.changed.add(resolve(path));
    clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.timer = undefined;
      const paths = [...this.changed];
      this.changed.clear();
      this.onSettled(paths);
    }, this.quietMs);
  }

  private failed(w: FSWatcher, reason: string): void {
    if (this.watcher !== w) return;
    this.log.event('watch-error', { reason, kept: 'no watching; reload with avfilter_sig or a signal' }, 'error');
    this.close();
  }
}
