/**
 * What every benchmark section gets (BenchContext) and gives back (SectionReport), and the
 * Markdown table writer. run.ts owns the report file; a section only returns its text, and
 * optionally a headline that run.ts puts at the top of the report and of stdout.
 */
import type { RunningClamd } from '../test/helpers/clamd.js';

export interface BenchContext {
  /** --quick: fewer rounds and messages, a smoke run */
  quick: boolean;
  /** measured rounds (after one warm-up round) */
  rounds: number;
  /** messages in the mix */
  messages: number;
  /** courier section: messages each filter gets after its first pass, before the measured runs (--warm) */
  warm: number;
  /** the run's private clamd (DisableCache yes, generated signatures), started on first use */
  clamd(): Promise<RunningClamd>;
  /** writes a file beside the report, returns its name for a Markdown link */
  asset(suffix: string, content: string): string;
  /** --modes: the mode ids to run (courier and filter sections), or undefined for all */
  modes: readonly string[] | undefined;
  /** a lock file to hold while Courier runs (--lock), or undefined */
  courierLock: string | undefined;
  /** a progress line on stderr */
  log(line: string): void;
}

export interface SectionReport {
  title: string;
  /** the figures that matter, with targets judged: shown first, above every section */
  headline?: { markdown: string; summary: string[] };
  /** the section's Markdown, without its heading */
  markdown: string;
  /** a few lines for stdout */
  summary: string[];
  /** wrong verdicts, errors, timeouts, missing components: shown at the top of the report */
  problems: string[];
}

export type Section = (ctx: BenchContext) => Promise<SectionReport>;

function cell(s: string): string {
  return s.replace(/\|/g, '\\|').replace(/\n/g, ' ');
}

export function table(head: readonly string[], rows: readonly (readonly string[])[]): string {
  const lines = [`| ${head.map(cell).join(' | ')} |`, `|${head.map(() => '---').join('|')}|`];
  for (const r of rows) lines.push(`| ${r.map(cell).join(' | ')} |`);
  return lines.join('\n');
}
