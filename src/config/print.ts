/**
 * `avfilter --config`: the effective configuration as TOML, one key per line with its doc line,
 * generated from the schema so it always lists every key.
 */
import { ENGINE_SPECS, SECTIONS, TOP_KEYS, type KeySpec } from './schema.js';
import type { Config } from './load.js';

const ORIGIN: Record<Config['engine_origin'], string> = {
  'configured': '',
  'default-clamd': '# engine: none configured, so the default: the clamd that answered at the distribution\'s socket',
  'default-embedded': '# engine: none configured, so the default: the embedded engine (no clamd answered at the distribution\'s socket)',
};

/**
 * `signatures`: the `# signatures:` lines (app/signatures.ts), printed after the engines;
 * like the versions, only with -v (they ask the engines).
 */
export function formatConfig(cfg: Config, engineVersions?: readonly string[], unpackVersion?: string, signatures?: readonly string[]): string {
  const out: string[] = [`# effective configuration, from ${cfg.source}`];
  const rec = cfg as unknown as Record<string, unknown>;
  section(out, TOP_KEYS, rec);
  for (const { name, specs } of SECTIONS) {
    out.push('', `[${name}]`);
    section(out, specs, rec[name] as Record<string, unknown>);
    if (name === 'unpack' && unpackVersion) out.push(`# version: ${unpackVersion}`);
  }
  if (ORIGIN[cfg.engine_origin]) out.push('', ORIGIN[cfg.engine_origin]);
  cfg.engine.forEach((e, i) => {
    out.push('', '[[engine]]', `type = ${JSON.stringify(e.type)}`);
    section(out, ENGINE_SPECS[e.type] ?? [], e as unknown as Record<string, unknown>);
    if (engineVersions?.[i]) out.push(`# version: ${engineVersions[i]}`);
  });
  if (signatures?.length) out.push('', ...signatures);
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
  // a table ([action.by_name]) printed inline: { "pattern" = "action", ... }
  if (typeof v === 'object' && v !== null) {
    const kv = Object.entries(v).map(([k, x]) => `${toToml(k)} = ${toToml(x)}`);
    return kv.length === 0 ? '{}' : `{ ${kv.join(', ')} }`;
  }
  return String(v);
}
