/**
 * `avfilter --quarantine list | show ID | release ID [--to ADDR] | delete ID | expire DAYS`:
 * the admin's side of the quarantine. Lists and shows entries (a table, or JSON with --json),
 * releases one through quarantine_sendmail (release.ts), deletes one, expires old ones.
 * Releases and deletions are logged as events (quarantine-release, quarantine-delete) where the
 * daemon logs; what the admin asked for is answered on stdout, problems on stderr.
 *
 * Exit status: 0 done; 1 no such entry, or already released (or a release under way);
 * 2 usage (an id not of the quarantine's form, a bad DAYS, an unknown command) or a failure
 * (sendmail failed: the entry stays releasable; a file that cannot be read or written).
 * Fails with nothing: every error becomes a message and an exit status.
 */
import { join } from 'node:path';
import type { Config } from '../config/load.js';
import { codeOf, messageOf } from '../errors.js';
import type { Logger } from '../ops/log.js';
import { releaseEntry } from './release.js';
import { QUARANTINE_USAGE } from './usage.js';
import { checkId, deleteEntry, expireEntries, listEntries, MESSAGE_FILE, readEntry, type QuarantineEntry } from './store.js';


export interface QuarantineCliOptions {
  readonly json: boolean;
  readonly to: readonly string[];
  readonly out: (line: string) => void;
  readonly err: (line: string) => void;
  readonly log: Logger;
}

/** Codes that mean "not there / not any more": exit 1. */
const NOT_FOUND_CODES = new Set(['EQUARANTINE_NOT_FOUND', 'EQUARANTINE_RELEASED', 'EQUARANTINE_BUSY']);
/** Codes that mean the command line was wrong: exit 2 with the usage. */
const USAGE_CODES = new Set(['EQUARANTINE_ID', 'EQUARANTINE_ADDRESS']);

/** Text for a terminal: control and format characters (from a sender's address, a virus name) shown escaped. */
function printable(s: string): string {
  return s.replace(/[\p{Cc}\p{Cf}\p{Zl}\p{Zp}]/gu, (c) => `\\u${c.codePointAt(0)!.toString(16).padStart(4, '0')}`);
}

function when(iso: string): string {
  return `${iso.slice(0, 10)} ${iso.slice(11, 19)}`;
}

function table(rows: readonly (readonly string[])[]): string[] {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  return rows.map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!))).join('  ').trimEnd());
}

function showLines(e: QuarantineEntry): string[] {
  const r = e.record;
  const lines = [
    `id: ${r.id}`, `time: ${r.time}`, `state: ${r.state}`, `queue id: ${printable(r.queue_id)}`, `sender: <${printable(r.sender)}>`,
    `recipients: ${r.recipients.map(printable).join(', ')}`, `client ip: ${printable(r.client_ip ?? '')}`,
    `names: ${r.names.map(printable).join(', ')}`, `action: ${r.action}`, `size: ${r.size}`, `message: ${join(e.dir, MESSAGE_FILE)}`,
  ];
  for (const f of r.findings) {
    lines.push(`found: ${printable(f.name)} by ${f.engine} in part ${f.part}${f.filename ? ` "${printable(f.filename)}"` : ''}${f.container ? ` (${f.container})` : ''}`);
  }
  if (r.releasing) lines.push(`releasing: since ${r.releasing.time} to ${r.releasing.to.map(printable).join(', ')}`);
  if (r.released) lines.push(`released: ${r.released.time} to ${r.released.to.map(printable).join(', ')}`);
  if (r.release_error) lines.push(`last release failed: ${r.release_error.time}: ${printable(r.release_error.reason)}`);
  return lines;
}

export async function runQuarantine(args: readonly string[], cfg: Config, o: QuarantineCliOptions): Promise<number> {
  const qdir = cfg.quarantine_dir;
  const [cmd, arg, ...extra] = args;
  const usage = (why: string): number => {
    o.err(`avfilter: ${why}; usage: avfilter [-f FILE] --quarantine ${QUARANTINE_USAGE}`);
    return 2;
  };
  const wants = cmd === 'list' ? 0 : 1;
  if (cmd === undefined || !['list', 'show', 'release', 'delete', 'expire'].includes(cmd)) return usage(`unknown quarantine command ${JSON.stringify(cmd ?? '')}`);
  if ((wants === 0 && arg !== undefined) || extra.length > 0) return usage(`too many arguments for --quarantine ${cmd}`);
  if (wants === 1 && arg === undefined) return usage(`--quarantine ${cmd} needs ${cmd === 'expire' ? 'DAYS' : 'an ID'}`);
  if (o.json && cmd !== 'list' && cmd !== 'show') return usage('--json goes with --quarantine list or show');
  if (o.to.length > 0 && cmd !== 'release') return usage('--to goes with --quarantine release');
  try {
    switch (cmd) {
      case 'list': {
        const { entries, broken } = await listEntries(qdir);
        for (const b of broken) o.err(`avfilter: ${b.id}: ${b.reason}`);
        if (o.json) {
          o.out(JSON.stringify(entries.map((e) => e.record), null, 2));
        } else if (entries.length > 0) {
          const rows = entries.map((e) => [
            e.id, when(e.record.time), `<${printable(e.record.sender)}>`, String(e.record.recipients.length), e.record.state,
            e.record.names.map(printable).join(','),
          ]);
          for (const l of table([['ID', 'TIME (UTC)', 'SENDER', 'RCPTS', 'STATE', 'NAMES'], ...rows])) o.out(l);
        }
        return 0;
      }
      case 'show': {
        const e = await readEntry(qdir, checkId(arg!));
        if (o.json) o.out(JSON.stringify({ ...e.record, message: join(e.dir, MESSAGE_FILE) }, null, 2));
        else for (const l of showLines(e)) o.out(l);
        return 0;
      }
      case 'release': {
        const id = checkId(arg!);
        try {
          const r = await releaseEntry(qdir, id, { to: o.to, sendmail: cfg.quarantine_sendmail });
          o.log.event('quarantine-release', { quarantine: id, id: r.record.queue_id, from: `<${r.record.sender}>`, to: r.to, names: r.record.names });
          o.out(`released ${id} to ${r.to.map(printable).join(', ')}`);
          return 0;
        } catch (err) {
          if (!NOT_FOUND_CODES.has(codeOf(err) ?? '') && !USAGE_CODES.has(codeOf(err) ?? '')) {
            o.log.event('quarantine-release', { quarantine: id, code: codeOf(err) ?? 'EIO', reason: messageOf(err) }, 'error');
          }
          throw err;
        }
      }
      case 'delete': {
        const id = checkId(arg!);
        await deleteEntry(qdir, id);
        o.log.event('quarantine-delete', { quarantine: id, by: 'delete' });
        o.out(`deleted ${id}`);
        return 0;
      }
      case 'expire': {
        if (!/^\d+(\.\d+)?$/.test(arg!)) return usage(`DAYS must be a number of days, not ${JSON.stringify(arg)}`);
        const removed = await expireEntries(qdir, Number(arg));
        for (const id of removed) {
          o.log.event('quarantine-delete', { quarantine: id, by: 'expire', days: Number(arg) });
          o.out(`deleted ${id}`);
        }
        return 0;
      }
    }
  } catch (err) {
    const code = codeOf(err) ?? '';
    if (USAGE_CODES.has(code)) return usage(messageOf(err));
    o.err(`avfilter: ${messageOf(err)}`);
    return NOT_FOUND_CODES.has(code) ? 1 : 2;
  }
  return 2;
}
