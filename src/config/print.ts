/**
 * `avfilter --config`: the effective configuration as TOML, one key per line with its doc line,
 * generated from the schema so it always lists every key.
 */
import { ACTION_KEYS, ENGINE_KEYS, MIME_KEYS, TOP_KEYS, UNPACK_KEYS, type KeySpec } from './schema.js';
import type { Config } from './load.js';

export function formatConfig(cfg: Config, engineVersions?: readonly string[], unpackVersion?: string): string {
  const out: string[] = [`# effective configuration, from ${cfg.source}`];
  const rec = cfg as unknown as Record<string, unknown>;
  section(out, TOP_KEYS, rec);
  out.push('', '[action]');
  section(out, ACTION_KEYS, cfg.action as unknown as Record<string, unknown>);
  out.push('', '[mime]');
  section(out, MIME_KEYS, cfg.mime as unknown as Record<string, unknown>);
  out.push('', '[unpack]');
  section(out, UNPACK_KEYS, cfg.unpack as unknown as Record<string, unknown>);
  if (unpackVersion) out.push(`# version: ${unpackVersion}`);
  cfg.engine.forEach((e, i) => {
    out.push('', '[[engine]]', `type = ${JSON.stringify(e.type)}`);
    section(out, ENGINE_KEYS[e.type] ?? [], e as unknown as Record<string, unknown>);
    if (engineVersions?.[i]) out.push(`# version: ${engineVersions[i]}`);
  });
  return out.join('\n') + '\n';
}

function section(out: string[], specs: readonly KeySpec[], values: Record<string, unknown>): void {
  for (const s of specs) {
    out.push(`${s.key} = ${toToml(values[s.key])}`.padEnd(56) + ` # ${s.doc}`);
  }
}

function toToml(v: unknown): string {
  // JSON's escapes are TOML's, except that TOML also wants DEL (and we want C1) escaped
  if (typeof v === 'string') return JSON.stringify(v).replace(/[\u007f-\u009f]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
  if (Array.isArray(v)) return `[${v.map(toToml).join(', ')}]`;
  return String(v);
}
