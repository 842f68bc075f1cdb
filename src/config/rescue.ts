/**
 * The few keys a daemon needs even when its config file is broken: where its socket and pid
 * file go. A daemon whose config does not load still installs its socket (contract.md: without
 * one Courier would skip the filter and deliver unscanned mail) and answers 451 with the reason,
 * so it must find the socket directories the admin meant, not only the defaults. avfilter_sig
 * picks out pid_file and pipe the same way.
 *
 * Owns: best-effort reading of all_mode, socket_dir_all, socket_dir_optional, pid_file, pipe and
 * watch (a degraded daemon still watches its config file for the fix), and of log_to, log_format
 * and syslog_socket (a config error at start must reach the syslog the admin chose, at error
 * severity), from text that may not parse. Inputs: the file's text. Outputs: those keys, each the file's
 * value when it is readable and of the right type, else the default. Fails with nothing.
 */
import { parse as parseToml } from 'smol-toml';
import { TOP_KEYS } from './schema.js';

export interface DaemonKeys {
  readonly all_mode: boolean;
  readonly socket_dir_all: string;
  readonly socket_dir_optional: string;
  readonly pid_file: string;
  readonly pipe: string;
  readonly log_to: 'stderr' | 'syslog';
  readonly log_format: 'text' | 'json';
  readonly syslog_socket: string;
  readonly watch: boolean;
}

const KEYS = ['all_mode', 'socket_dir_all', 'socket_dir_optional', 'pid_file', 'pipe', 'log_to', 'log_format', 'syslog_socket', 'watch'] as const;
const CHOICES: Readonly<Record<string, readonly string[]>> = { log_to: ['stderr', 'syslog'], log_format: ['text', 'json'] };

function defaults(): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const k of KEYS) out[k] = TOP_KEYS.find((s) => s.key === k)!.default;
  return out;
}

function acceptable(key: string, v: unknown): boolean {
  if (key === 'all_mode' || key === 'watch') return typeof v === 'boolean';
  const choices = CHOICES[key];
  if (choices !== undefined) return typeof v === 'string' && choices.includes(v);
  return typeof v === 'string' && v.startsWith('/') && !v.includes('\0');
}

export function rescueDaemonKeys(text: string): DaemonKeys {
  const out = defaults();
  let doc: Record<string, unknown> | undefined;
  try {
    doc = parseToml(text) as Record<string, unknown>;
  } catch {
    doc = undefined;
  }
  if (doc) {
    for (const k of KEYS) if (acceptable(k, doc[k])) out[k] = doc[k];
    return Object.freeze(out) as unknown as DaemonKeys;
  }
  // Not TOML: read top-level `key = value` lines (before the first table) one by one.
  for (const line of text.split('\n')) {
    if (/^\s*\[/.test(line)) break;
    const m = /^\s*([a-z_]+)\s*=\s*(.*?)\s*(?:#.*)?$/.exec(line);
    if (!m || !(KEYS as readonly string[]).includes(m[1]!)) continue;
    let v: unknown;
    try {
      v = (parseToml(`x = ${m[2]}`) as { x: unknown }).x;
    } catch {
      continue;
    }
    if (acceptable(m[1]!, v)) out[m[1]!] = v;
  }
  return Object.freeze(out) as unknown as DaemonKeys;
}
