/**
 * The ways the benchmark configures avfilter, as data: each mode is an id, a label and the
 * [[engine]] tables of its config. The Courier section runs every mode here between "Courier
 * alone" and the Perl peer; the filter section runs those with the clamd engine. To compare
 * another engine setting, add a mode: nothing else in the benchmark names one.
 *
 * Roles: `default` is avfilter with the clamd engine as shipped (no engine key but `servers`):
 * the headline's targets against the peer are judged on it; `embedded` is the default config
 * with no [[engine]] (the embedded engine); `variant` is any other setting, shown beside the
 * default (the routing comparison) without a target: today one mode per value of the clamd
 * engine's raw_message key other than its default (read from the schema being measured, so the
 * comparison follows a change of default).
 *
 * A mode may name a clamd engine key it needs (`needsKey`): when the avfilter being measured
 * (this tree's config schema) has no such key the mode is left out and the report says why.
 *
 * Before and after in one run: `--baseline DIR` (or $AVFILTER_BENCH_BASELINE) adds the mode
 * `before`, the avfilter built in another checkout DIR (its dist/ and node_modules/), with the
 * clamd engine as that build ships it, measured beside this tree's in every round.
 */
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import * as schema from '../src/config/schema.js';
import { ENGINE_KEYS, TOP_KEYS } from '../src/config/schema.js';

export type AvfilterRole = 'default' | 'embedded' | 'variant';

export interface AvfilterMode {
  id: string;
  label: string;
  engine: 'clamd' | 'yara';
  role: AvfilterRole;
  /** what the clamd engine sends the raw message as, for the routing comparison ('–' for others) */
  routing: string;
  /** the [[engine]] tables; `clamd` is the run's clamd as a `servers` entry ("unix:/path") */
  engines(clamd: string): string[];
  needsKey?: string;
  /** the checkout whose dist/bin/avfilter.js runs (undefined: this one) */
  root?: string;
  /** serve the counters (`metrics` on a unix socket in the run's directory), scraped every second while it runs */
  metrics?: boolean;
  /** run only when `--modes` names it (a measurement on demand, not in every run) */
  optional?: boolean;
  /** TOML tables written after [action] (e.g. [headers]) */
  tables?: string[];
  /**
   * It writes into the data files ([headers]): the filter section, which sends the same spool
   * files again and again, leaves it out (each pass would add to them); the Courier section's
   * messages are new every time.
   */
  rewrites?: boolean;
}

const q = (s: string): string => JSON.stringify(s);
const clamdTable = (clamd: string, ...extra: string[]): string[] => ['[[engine]]', 'type = "clamd"', `servers = [${q(`unix:${clamd}`)}]`, ...extra, ''];

/** Whether the schema being measured has this clamd engine key. */
export function hasClamdKey(key: string): boolean {
  return ENGINE_KEYS.clamd?.some((k) => k.key === key) ?? false;
}

/** The default of a clamd engine key in the schema being measured (undefined without the key). */
export function clamdDefault(key: string): unknown {
  return ENGINE_KEYS.clamd?.find((k) => k.key === key)?.default;
}

const rawDefault = clamdDefault('raw_message');

/** What each raw_message value means, for the routing comparison. */
const RAW_MEANS: Record<string, string> = {
  mail: 'clamd also parses the raw message as mail',
  data: 'plain bytes, clamd does not parse the raw message as mail',
  text: 'plain bytes without the base64 bodies scanned decoded as parts',
  parts: 'the decoded parts only when the message reads one way (as Courier::Filter scans), else as mail (for clamd to parse)',
};

/** The values of the clamd raw_message key, the default first (none without the key). */
function rawValues(): string[] {
  const spec = ENGINE_KEYS.clamd?.find((k) => k.key === 'raw_message');
  const values = spec?.type.kind === 'enum' ? [...spec.type.values] : [];
  return values.sort((a, b) => Number(b === rawDefault) - Number(a === rawDefault));
}

const rawText = (v: string): string => `raw_message = ${q(v)}${RAW_MEANS[v] ? `: ${RAW_MEANS[v]}` : ''}`;

/** The clamd engine as shipped with one feature on: a variant measured beside the default. */
function defaultWith(id: string, what: string): Pick<AvfilterMode, 'id' | 'label' | 'engine' | 'role' | 'routing' | 'engines'> {
  return {
    id, label: `avfilter (clamd, ${what})`, engine: 'clamd', role: 'variant',
    routing: rawDefault === undefined ? 'as the built avfilter does' : `${rawText(String(rawDefault))} (the default)`,
    engines: (clamd: string) => clamdTable(clamd),
  };
}

export const AVFILTER_MODES: readonly AvfilterMode[] = [
  {
    id: 'clamd',
    label: rawDefault === undefined ? 'avfilter (clamd engine)' : `avfilter (clamd, raw as ${String(rawDefault)}: default)`,
    engine: 'clamd',
    role: 'default',
    routing: rawDefault === undefined ? 'as the built avfilter does (no raw_message key)' : `${rawText(String(rawDefault))} (the default, not written in the config)`,
    engines: (clamd) => clamdTable(clamd),
  },
  // every other raw_message value, written in the config: the routing comparison
  ...rawValues().filter((v) => v !== rawDefault).map((v): AvfilterMode => ({
    id: `clamd-${v}`,
    label: `avfilter (clamd, raw as ${v})`,
    engine: 'clamd',
    role: 'variant',
    routing: rawText(v),
    engines: (clamd) => clamdTable(clamd, `raw_message = ${q(v)}`),
    needsKey: 'raw_message',
  })),
  // the cost of the metrics endpoint under load: the default with `metrics` on, scraped every second
  ...(TOP_KEYS.some((k) => k.key === 'metrics') ? [{
    ...defaultWith('clamd-metrics', 'metrics on, scraped every second'),
    metrics: true,
    optional: true,
  } satisfies AvfilterMode] : []),
  // the cost of [headers] on the clean path: both fields written into every delivered message,
  // beside the default without them in the same run
  ...('HEADERS_KEYS' in schema ? [{
    ...defaultWith('clamd-headers', '[headers] scanned and status on'),
    tables: ['[headers]', 'scanned = true', 'status = true', ''],
    rewrites: true,
  } satisfies AvfilterMode] : []),
  {
    id: 'yara',
    label: 'avfilter (embedded engine)',
    engine: 'yara',
    role: 'embedded',
    routing: '–',
    engines: () => [],
  },
];

/** The checkout `--baseline` named (set by run.ts), if any. */
export function baselineRoot(): string | undefined {
  const dir = process.env.AVFILTER_BENCH_BASELINE;
  return dir ? resolve(dir) : undefined;
}

/** What the baseline checkout is: its commit, for the report. */
export function describeBaseline(root: string): string {
  try {
    return execFileSync('git', ['-C', root, 'log', '-1', '--format=%h %s'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim().slice(0, 100);
  } catch {
    return root;
  }
}

function baselineMode(root: string): AvfilterMode {
  return {
    id: 'before',
    label: `avfilter before (clamd engine; ${describeBaseline(root).split(' ')[0]})`,
    engine: 'clamd',
    role: 'variant',
    routing: 'as the baseline build does',
    engines: (clamd) => clamdTable(clamd),
    root,
  };
}

/** The modes this avfilter can run, and a line for each one left out. */
export function availableModes(): { modes: AvfilterMode[]; skipped: string[] } {
  const modes: AvfilterMode[] = [];
  const skipped: string[] = [];
  const base = baselineRoot();
  if (base !== undefined) {
    if (existsSync(join(base, 'dist', 'bin', 'avfilter.js'))) modes.push(baselineMode(base));
    else skipped.push(`avfilter before: ${base} has no dist/bin/avfilter.js (build it there first)`);
  }
  for (const m of AVFILTER_MODES) {
    if (m.needsKey && !hasClamdKey(m.needsKey)) skipped.push(`${m.label}: this avfilter's clamd engine has no key ${m.needsKey}`);
    else modes.push(m);
  }
  return { modes, skipped };
}
