/**
 * The headers effect ([headers] scanned / status): delivered mail says that avfilter looked at
 * it and what it found, right after Courier's own Received:.
 *
 *   X-Virus-Scanned: avfilter <version> (<engine> <signatures>; ...) on <host>
 *   X-Virus-Status: Clean | Clean (stripped: <names>) | Infected (<names>) | Banned (<file>)
 *                 | Unscanned (<reason>)
 *
 * A field of the same name that came with the message (anywhere in its top-level header
 * block) is renamed X-Old-<name>: a sender must not be able to forge a verdict that a later
 * filter or the user's client trusts. Names and reasons are made safe (no CR, LF or control
 * characters, ASCII only) and long values folded (courierfilter/data-header.ts, which also owns
 * the in-place write). Only `clean` says Clean: every verdict that is neither clean nor a virus
 * (a scanner error accepted, a skip, an encrypted archive passed...) says Unscanned and why.
 *
 * Owns: the fields' texts. Inputs: the verdict, the engines, the config's [headers]. Outputs:
 * the edit (undoable). Fails as editHeaderBlock fails (the caller answers 4xx).
 */
import { readFileSync, statSync } from 'node:fs';
import { hostname } from 'node:os';
import { editHeaderBlock, headerSafe, type DataTarget, type HeaderEdit, type HeaderField } from '../courierfilter/data-header.js';
import type { Engine } from '../engines/engine.js';
import type { Verdict } from '../policy/verdict.js';
import { strippedOf } from './strip.js';
import type { EffectEnv, EffectRunner } from './types.js';

export const SCANNED_FIELD = 'X-Virus-Scanned';
export const STATUS_FIELD = 'X-Virus-Status';

/** Names listed in X-Virus-Status; more are counted ("and 3 more"). */
const MAX_LISTED_NAMES = 10;
/** Longest virus name or reason written (a sender or a scanner can make them huge). */
const MAX_TEXT = 200;
/** Longest signature version shown per engine (clamd's has a date; yara's is a digest, cut). */
const MAX_SIGNATURE_TEXT = 60;

export interface HeadersWanted {
  readonly scanned: boolean;
  readonly status: boolean;
}

/** The fields to write for this message (none when neither key is on). */
export function headerFields(want: HeadersWanted, v: StatusInput, engines: readonly Pick<Engine, 'label' | 'signatureVersion'>[]): HeaderField[] {
  const out: HeaderField[] = [];
  if (want.scanned) out.push({ name: SCANNED_FIELD, value: scannedValue(engines) });
  if (want.status) out.push({ name: STATUS_FIELD, value: statusValue(v) });
  return out;
}

export async function writeVerdictHeaders(target: DataTarget, fields: readonly HeaderField[]): Promise<HeaderEdit> {
  return editHeaderBlock(target, { add: fields, rename: fields.map((f) => f.name) });
}

/** What X-Virus-Status is made from: the verdict, and the names a strip took out (then the verdict is the rescan's clean one). */
export interface StatusInput {
  readonly verdict: Verdict | { readonly kind: string; readonly reason?: string; readonly names?: readonly string[] };
  readonly stripped?: readonly string[] | undefined;
}

export function statusValue({ verdict: v, stripped }: StatusInput): string {
  if (stripped !== undefined && stripped.length > 0) return `Clean (stripped: ${listNames(stripped)})`;
  if (v.kind === 'clean') return 'Clean';
  if (v.kind === 'infected' && 'names' in v && v.names !== undefined) return `Infected (${listNames(v.names)})`;
  // an attachment [banned] refuses, delivered on purpose (banned.action = "pass"): not a virus, not clean
  if (v.kind === 'banned' && 'name' in v && typeof v.name === 'string') return `Banned (${short(v.name)})`;
  return `Unscanned (${short(reasonOf(v))})`;
}

function reasonOf(v: StatusInput['verdict']): string {
  const r = v as { kind: string; reason?: unknown; name?: unknown; code?: unknown };
  if (v.kind === 'encrypted' && typeof r.name === 'string') return `encrypted: ${r.name}`;
  if (typeof r.reason === 'string' && r.reason !== '') return typeof r.code === 'string' ? `${r.code}: ${r.reason}` : r.reason;
  if (typeof r.name === 'string') return `${v.kind}: ${r.name}`;
  return v.kind;
}

function listNames(names: readonly string[]): string {
  const shown = names.slice(0, MAX_LISTED_NAMES).map((n) => short(n));
  return names.length > MAX_LISTED_NAMES ? `${shown.join(', ')} and ${names.length - MAX_LISTED_NAMES} more` : shown.join(', ');
}

function short(s: string, max = MAX_TEXT): string {
  return s.length > max ? `${s.slice(0, max - 3)}...` : s;
}

/** `avfilter 0.1.0 (clamd 1.4.3/27500; yara 0f3a...) on mx.example` */
export function scannedValue(engines: readonly Pick<Engine, 'label' | 'signatureVersion'>[], host = thisHost()): string {
  const parts = engines.map((e) => {
    const sig = e.signatureVersion?.();
    return sig === undefined || sig === '' ? e.label : `${e.label} ${short(sig.replace(/\s+/g, ' ').trim(), MAX_SIGNATURE_TEXT)}`;
  });
  return `avfilter ${packageVersion()} (${parts.join('; ')}) on ${host}`;
}

let host: string | undefined;

/** The host name, asked once per process (a system call per delivered message otherwise). */
function thisHost(): string {
  return (host ??= headerSafe(hostname()));
}

let version: string | undefined;

/** The version in the package.json above this module (dist/src/effects or src/effects). */
export function packageVersion(): string {
  if (version !== undefined) return version;
  for (const up of ['../../../package.json', '../../package.json']) {
    try {
      const pkg = JSON.parse(readFileSync(new URL(up, import.meta.url), 'utf8')) as { name?: unknown; version?: unknown };
      if (pkg.name === 'avfilter' && typeof pkg.version === 'string') return (version = pkg.version);
    } catch {
      // not there: the next one up
    }
  }
  return (version = 'unknown');
}

/**
 * The runner. The message may have been rewritten by an effect before this one (strip, mark):
 * then the spine's bytes and size are stale and the file is what counts (strip hands over its
 * result; after a mark the file is read again).
 */
export const headersRunner: EffectRunner<'headers'> = {
  kind: 'headers',
  phase: 'commit',
  writes: true,
  failVerb: 'delivered with its headers',
  async run(_effect, env) {
    const stripped = strippedOf(env.state);
    const fields = headerFields(env.config.headers, { verdict: env.verdict, stripped: stripped?.names }, engines(env));
    if (fields.length === 0) return;
    const marked = env.decision.effects.some((e) => e.kind === 'mark');
    const target: DataTarget = stripped !== undefined
      ? { path: env.data.readPath, size: stripped.size, bytes: stripped.bytes, signal: env.signal }
      : marked
        ? { path: env.data.readPath, size: statSync(env.data.readPath).size, signal: env.signal }
        : { path: env.data.readPath, size: env.data.size, bytes: env.bytes, signal: env.signal };
    const edit = await writeVerdictHeaders(target, fields);
    if (edit.renamed > 0) env.fields['headers_renamed'] = edit.renamed;
    return { undo: () => edit.undo() };
  },
};

/** The engines that scanned (from the spine), else the configured ones by type (no versions). */
function engines(env: EffectEnv): readonly Pick<Engine, 'label' | 'signatureVersion'>[] {
  return env.engines ?? env.config.engine.map((e) => ({ label: e.type }));
}
