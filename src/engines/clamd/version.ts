/**
 * Asking a clamd whether it is there and what it knows: PING, then VERSION, whose line carries
 * the signature database's version and date ("ClamAV 1.0.7/27480/Sat Dec  6 09:25:28 2026").
 *
 * Owns: the probe used to pick clamd as the default engine, and reading the VERSION line.
 * Inputs: a server address and a time bound. Outputs: ClamdProbe (never a rejection).
 */
import { formatServer, type ClamdAddress } from './address.js';
import { ping, version } from './client.js';

export type ClamdProbe =
  | { readonly ok: true; readonly version: string }
  | { readonly ok: false; readonly code: string; readonly message: string };

/** PING (must answer PONG), then VERSION; both within `timeoutMs` each. */
export async function probeClamd(addr: ClamdAddress, timeoutMs: number, signal?: AbortSignal): Promise<ClamdProbe> {
  const opts = { connectTimeoutMs: timeoutMs, replyTimeoutMs: timeoutMs, signal: signal ?? AbortSignal.timeout(2 * timeoutMs + 1000) };
  const p = await ping(addr, opts);
  if (!p.ok) return p;
  const v = await version(addr, opts);
  if (!v.ok) return v;
  return { ok: true, version: v.reply };
}

export interface ClamdVersion {
  /** "ClamAV 1.0.7" */
  readonly engine: string;
  /** The daily database's version, when clamd has an official database loaded. */
  readonly database?: number | undefined;
  /** Its build date as clamd prints it. */
  readonly date?: string | undefined;
}

/** Splits a VERSION line; a line without "/DB/DATE" means clamd has no official database. */
export function parseClamdVersion(line: string): ClamdVersion {
  const [engine = line, db, ...rest] = line.split('/');
  const database = db !== undefined && /^\d+$/.test(db.trim()) ? Number(db.trim()) : undefined;
  const date = rest.length > 0 ? rest.join('/').trim().replace(/\s+/g, ' ') : undefined;
  return { engine: engine.trim(), database, date: date || undefined };
}

/** "ClamAV 1.0.7, database 27480 of Sat Dec 6 09:25:28 2026 at unix:/run/clamav/clamd.ctl" */
export function describeClamdVersion(line: string, addr?: ClamdAddress): string {
  const v = parseClamdVersion(line);
  const at = addr ? ` at ${formatServer(addr)}` : '';
  if (v.database === undefined) return `${v.engine}${at}, no official signature database (only local signature files, if any)`;
  return `${v.engine}${at}, database ${v.database}${v.date ? ` of ${v.date}` : ''}`;
}
