/**
 * Changes to /etc/courier made by the E2E harness, each one undoable.
 *
 * Owns the backup directory STATE_DIR/backup: before the first change to a file its original
 * content (or the fact that it did not exist) is saved there, once; later changes, and later
 * runs after a crash, never overwrite that first copy, so restoreAll() always puts back what was
 * there before any test touched the machine. Filter links in filters/active that are not ours
 * (e.g. courier-filter-perl) are saved the same way and put back by restoreAll().
 *
 * Fails with the fs error of the file concerned (these run as root on a test machine).
 */
import fs from 'node:fs';
import path from 'node:path';

/** Survives a crashed run (unlike /run or the test's temp dir) so a later run can restore. */
export const STATE_DIR = '/var/lib/avfilter-e2e';
const BACKUP_DIR = path.join(STATE_DIR, 'backup');
const INDEX_FILE = path.join(BACKUP_DIR, 'index.json');
export const ACTIVE_DIR = '/etc/courier/filters/active';
/** Names of the filter links the harness created (removed, not restored, on clean-up). */
const OURS_FILE = path.join(STATE_DIR, 'our-filters.json');

interface BackupIndex {
  /** path -> name of the saved copy in BACKUP_DIR, or null when the file did not exist */
  files: Record<string, string | null>;
  /** filter links moved out of the way: name -> link target */
  links: Record<string, string>;
}

function readJson<T>(file: string, fallback: T): T {
  try {
    return JSON.parse(fs.readFileSync(file, 'utf8')) as T;
  } catch {
    return fallback;
  }
}

function writeJson(file: string, value: unknown): void {
  fs.mkdirSync(path.dirname(file), { recursive: true, mode: 0o755 });
  fs.writeFileSync(`${file}.new`, JSON.stringify(value, null, 2));
  fs.renameSync(`${file}.new`, file);
}

function loadIndex(): BackupIndex {
  const idx = readJson<BackupIndex>(INDEX_FILE, { files: {}, links: {} });
  idx.files ??= {};
  idx.links ??= {};
  return idx;
}

/** Saves the original of `file` unless it was saved before. */
export function backupFile(file: string): void {
  const idx = loadIndex();
  if (file in idx.files) return;
  fs.mkdirSync(BACKUP_DIR, { recursive: true, mode: 0o700 });
  if (fs.existsSync(file)) {
    const saved = `${Object.keys(idx.files).length}-${path.basename(file)}`;
    fs.copyFileSync(file, path.join(BACKUP_DIR, saved));
    const st = fs.statSync(file);
    fs.writeFileSync(path.join(BACKUP_DIR, `${saved}.meta`), JSON.stringify({ mode: st.mode, uid: st.uid, gid: st.gid }));
    idx.files[file] = saved;
  } else {
    idx.files[file] = null;
  }
  writeJson(INDEX_FILE, idx);
}

/** The original content of a file as first saved, or its current content if never changed. */
export function originalContent(file: string): string | undefined {
  const idx = loadIndex();
  if (file in idx.files) {
    const saved = idx.files[file];
    return saved === null ? undefined : fs.readFileSync(path.join(BACKUP_DIR, saved!), 'utf8');
  }
  return fs.existsSync(file) ? fs.readFileSync(file, 'utf8') : undefined;
}

/** Backs the file up, then writes it (atomically, with the given mode and group). */
export function writeEtcFile(file: string, content: string, opts: { mode?: number; gid?: number } = {}): void {
  backupFile(file);
  const tmp = `${file}.avfilter-e2e.new`;
  fs.writeFileSync(tmp, content, { mode: opts.mode ?? 0o644 });
  fs.chmodSync(tmp, opts.mode ?? 0o644);
  if (opts.gid !== undefined) fs.chownSync(tmp, 0, opts.gid);
  fs.renameSync(tmp, file);
}

export function ourFilters(): string[] {
  return readJson<string[]>(OURS_FILE, []);
}

export function setOurFilter(name: string, present: boolean): void {
  const set = new Set(ourFilters());
  if (present) set.add(name);
  else set.delete(name);
  writeJson(OURS_FILE, [...set]);
}

/**
 * Empties filters/active: links the harness made earlier are removed, any other entry is saved
 * (once) and removed, so only the filters a test installs run.
 */
export function clearActiveFilters(): string[] {
  const ours = new Set(ourFilters());
  const idx = loadIndex();
  const moved: string[] = [];
  for (const name of fs.readdirSync(ACTIVE_DIR)) {
    const p = path.join(ACTIVE_DIR, name);
    if (!ours.has(name) && !(name in idx.links)) {
      const st = fs.lstatSync(p);
      if (!st.isSymbolicLink()) throw new Error(`${p} is not a symlink; move it away by hand`);
      idx.links[name] = fs.readlinkSync(p);
      writeJson(INDEX_FILE, idx);
      moved.push(name);
    }
    fs.rmSync(p, { force: true });
  }
  writeJson(OURS_FILE, []);
  return moved;
}

/** Puts back every saved file and filter link, and forgets the backups. */
export function restoreAll(): void {
  const idx = loadIndex();
  for (const name of ourFilters()) fs.rmSync(path.join(ACTIVE_DIR, name), { force: true });
  writeJson(OURS_FILE, []);
  for (const [file, saved] of Object.entries(idx.files)) {
    if (saved === null) {
      fs.rmSync(file, { force: true });
      continue;
    }
    const meta = readJson<{ mode: number; uid: number; gid: number } | null>(path.join(BACKUP_DIR, `${saved}.meta`), null);
    const tmp = `${file}.avfilter-e2e.new`;
    fs.copyFileSync(path.join(BACKUP_DIR, saved), tmp);
    if (meta) {
      fs.chmodSync(tmp, meta.mode & 0o7777);
      fs.chownSync(tmp, meta.uid, meta.gid);
    }
    fs.renameSync(tmp, file);
  }
  for (const [name, target] of Object.entries(idx.links)) {
    const p = path.join(ACTIVE_DIR, name);
    fs.rmSync(p, { force: true });
    fs.symlinkSync(target, p);
  }
  fs.rmSync(BACKUP_DIR, { recursive: true, force: true });
}
