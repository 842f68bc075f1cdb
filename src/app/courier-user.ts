/**
 * Courier's user: the account courierfilter runs every filter as, so the one the daemon runs as,
 * and whether that account can read a file.
 *
 * Owns: finding the account (the owner of Courier's socket directory when it is not root, else
 * the `courier` account, else `daemon`, the names Courier's builds use) and the permission
 * arithmetic of "can this account read that file" (mode bits along the path; no ACLs).
 * Inputs: the socket directory of the config. Outputs: a user or undefined. Fails with nothing:
 * an account that cannot be looked up is undefined.
 */
import { spawnSync } from 'node:child_process';
import { statSync } from 'node:fs';
import { dirname, resolve } from 'node:path';

export interface CourierUser {
  readonly name: string;
  readonly uid: number;
  readonly gid: number;
  /** Every group id of the account (its primary group and the others it is in). */
  readonly groups: readonly number[];
}

/** One account by name or uid (getent, so NSS accounts count too). */
export function lookupAccount(nameOrUid: string | number): CourierUser | undefined {
  const r = spawnSync('getent', ['passwd', String(nameOrUid)], { encoding: 'utf8' });
  if (r.status !== 0) return undefined;
  const f = r.stdout.split('\n')[0]!.split(':');
  if (f.length < 4) return undefined;
  const name = f[0]!;
  const uid = Number(f[2]);
  const gid = Number(f[3]);
  if (!Number.isInteger(uid) || !Number.isInteger(gid)) return undefined;
  const g = spawnSync('id', ['-G', name], { encoding: 'utf8' });
  const groups = g.status === 0 ? g.stdout.trim().split(/\s+/).map(Number).filter(Number.isInteger) : [];
  return { name, uid, gid, groups: groups.includes(gid) ? groups : [gid, ...groups] };
}

/**
 * The account Courier runs filters as. Courier makes its socket directory (allfilters) owned by
 * that account, so an existing one that root does not own names it; else the account names
 * Courier's packages use.
 */
export function courierUser(socketDir: string): CourierUser | undefined {
  try {
    const st = statSync(socketDir);
    if (st.uid !== 0) {
      const u = lookupAccount(st.uid);
      if (u) return u;
    }
  } catch {
    // no Courier socket directory (yet): go by name
  }
  return lookupAccount('courier') ?? lookupAccount('daemon');
}

/**
 * The account the daemon will run as, for a config whose socket directory is `socketDir`: the
 * directory's owner when it exists (root too: a daemon run as root with --allow-root binds
 * there), else Courier's account.
 */
export function daemonUser(socketDir: string): CourierUser | undefined {
  try {
    const st = statSync(socketDir);
    if (st.uid === 0) return { name: 'root', uid: 0, gid: 0, groups: [0] };
  } catch {
    // not there: Courier's account, by name
  }
  return courierUser(socketDir);
}

export interface Unreadable {
  /** The file or the directory on its path that stops the account. */
  readonly path: string;
  /** e.g. "mode 0600, owner root:root" */
  readonly why: string;
}

/** The permission bits that apply to `user` for a file of this owner and group (rwx, 0-7). */
function bitsFor(user: CourierUser, st: { uid: number; gid: number; mode: number }): number {
  if (user.uid === 0) return 7;
  if (st.uid === user.uid) return (st.mode >> 6) & 7;
  if (user.groups.includes(st.gid)) return (st.mode >> 3) & 7;
  return st.mode & 7;
}

function describe(st: { uid: number; gid: number; mode: number }, names: (uid: number, gid: number) => string): string {
  return `mode ${(st.mode & 0o7777).toString(8).padStart(4, '0')}, owner ${names(st.uid, st.gid)}`;
}

/**
 * Whether `user` can read `file`: search permission on every directory of the path, read
 * permission on the file. Undefined when it can; else where and why it cannot. A file that
 * cannot be examined (missing) is reported as such.
 */
export function unreadableBy(user: CourierUser, file: string, names: (uid: number, gid: number) => string = ownerNames): Unreadable | undefined {
  const abs = resolve(file);
  const dirs: string[] = [];
  for (let d = dirname(abs); ; d = dirname(d)) {
    dirs.unshift(d);
    if (dirname(d) === d) break;
  }
  for (const d of dirs) {
    let st;
    try {
      st = statSync(d);
    } catch (err) {
      return { path: d, why: `cannot be examined: ${(err as NodeJS.ErrnoException).code}` };
    }
    if ((bitsFor(user, st) & 1) === 0) return { path: d, why: `directory, ${describe(st, names)}` };
  }
  let st;
  try {
    st = statSync(abs);
  } catch (err) {
    return { path: abs, why: `cannot be examined: ${(err as NodeJS.ErrnoException).code}` };
  }
  if ((bitsFor(user, st) & 4) === 0) return { path: abs, why: describe(st, names) };
  return undefined;
}

/** "root:courier" from ids (numbers when there is no name). */
export function ownerNames(uid: number, gid: number): string {
  const u = spawnSync('getent', ['passwd', String(uid)], { encoding: 'utf8' });
  const g = spawnSync('getent', ['group', String(gid)], { encoding: 'utf8' });
  const name = (r: typeof u, id: number): string => (r.status === 0 ? r.stdout.split(':')[0]! : String(id));
  return `${name(u, uid)}:${name(g, gid)}`;
}
