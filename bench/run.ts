/**
 * `npm run bench [-- --only courier,filter --modes ID,... --quick --rounds N --messages N --warm N
 * --out DIR --lock FILE]`: runs the benchmark sections and writes bench/results/<date>.md (the headline
 * first: the figures that hold from machine to machine, targets judged met / missed / inside the
 * noise; then the machine, then every section's tables and raw values) with its SVG chart beside
 * it, plus the headline and a short summary on stdout.
 *
 * A section is one entry of SECTIONS: a function that gets the BenchContext and returns a
 * SectionReport (report.ts). On a machine shared with others who run the Courier e2e tests, the
 * Courier section holds their lock file: `--lock FILE` (or $AVFILTER_BENCH_LOCK); the rest of
 * the run does not need it. Exit status: 0, or 3 when a run was
 * invalid (a wrong verdict, an error, a timeout, a missing component), 1 on a crash.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { type RunningClamd, startClamd } from '../test/helpers/clamd.js';
import { AVFILTER_MODES } from './avfilter-modes.js';
import { DEFAULT_WARM_MESSAGES } from './courier-run.js';
import { courierSection } from './courier-section.js';
import { enginesSection } from './engines-section.js';
import { filterSection } from './filter-section.js';
import { calibration, loadAverage, machineLines } from './machine.js';
import { memorySection } from './memory-section.js';
import { mimeSection } from './mime.js';
import { shapesSection } from './shapes.js';
import { unpackSection } from './unpack-section.js';
import type { BenchContext, Section, SectionReport } from './report.js';

const SECTIONS: ReadonlyArray<[name: string, run: Section]> = [
  ['courier', courierSection],
  ['filter', filterSection],
  ['memory', memorySection],
  ['engines', enginesSection],
  ['mime', mimeSection],
  ['shapes', shapesSection],
  ['unpack', unpackSection],
];

interface Options {
  only: string[];
  quick: boolean;
  rounds: number;
  messages: number;
  warm: number;
  out: string;
  lock: string | undefined;
  modes: string[] | undefined;
}

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

function usageLine(): string {
  return `usage: npm run bench -- [--only ${SECTIONS.map((s) => s[0]).join(',')}] [--modes ${['alone', ...AVFILTER_MODES.map((m) => m.id), 'peer'].join(',')}] [--quick] [--rounds N] [--messages N] [--warm N] [--out DIR] [--lock FILE] [--baseline DIR]`;
}

function usage(msg: string): never {
  console.error(`${msg}\n${usageLine()}`);
  process.exit(2);
}

const HELP = `
  --only LIST      sections to run (default: all)
  --modes LIST     filter setups to compare in the courier and filter sections
  --quick          one round of 40 messages (a smoke run)
  --rounds N       interleaved rounds per section (default 5)
  --messages N     messages in the mix (default 300)
  --warm N         courier and filter sections: messages each filter gets before the measured
                   runs (courier: after its first pass), in whole passes of the mix
                   (default 2400; --quick: 0)
  --out DIR        where the report goes (default bench/results)
  --lock FILE      hold this lock file while Courier runs (or AVFILTER_BENCH_LOCK)
  --baseline DIR   another checkout's build, run beside this one as mode "before"
`;

function parseArgs(argv: string[]): Options {
  const o: Options = { only: SECTIONS.map((s) => s[0]), quick: false, rounds: NaN, messages: NaN, warm: NaN, out: path.join(REPO, 'bench', 'results'), lock: process.env.AVFILTER_BENCH_LOCK || undefined, modes: undefined };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const val = (): string => argv[++i] ?? usage(`${a} needs a value`);
    if (a === '--help' || a === '-h') {
      console.log(usageLine() + HELP);
      process.exit(0);
    }
    if (a === '--quick') o.quick = true;
    else if (a === '--only') o.only = val().split(',').filter(Boolean);
    else if (a === '--rounds') o.rounds = Number(val());
    else if (a === '--messages') o.messages = Number(val());
    else if (a === '--warm') o.warm = Number(val());
    else if (a === '--out') o.out = path.resolve(val());
    else if (a === '--lock') o.lock = val();
    else if (a === '--modes') o.modes = val().split(',').filter(Boolean);
    else if (a === '--baseline') process.env.AVFILTER_BENCH_BASELINE = val();
    else usage(`unknown option ${a}`);
  }
  const unknown = o.only.filter((s) => !SECTIONS.some(([n]) => n === s));
  if (unknown.length) usage(`unknown section(s): ${unknown.join(', ')}`);
  const modeIds = ['alone', ...(process.env.AVFILTER_BENCH_BASELINE ? ['before'] : []), ...AVFILTER_MODES.map((m) => m.id), 'peer'];
  const badModes = (o.modes ?? []).filter((m) => !modeIds.includes(m));
  if (badModes.length) usage(`unknown mode(s): ${badModes.join(', ')}; modes: ${modeIds.join(', ')}`);
  if (Number.isNaN(o.rounds)) o.rounds = o.quick ? 1 : 5;
  if (Number.isNaN(o.messages)) o.messages = o.quick ? 40 : 300;
  if (Number.isNaN(o.warm)) o.warm = o.quick ? 0 : DEFAULT_WARM_MESSAGES;
  if (!(o.rounds >= 1 && Number.isInteger(o.rounds))) usage('--rounds must be a positive integer');
  if (!(o.messages >= 3 && Number.isInteger(o.messages))) usage('--messages must be an integer >= 3');
  if (!(o.warm >= 0 && Number.isInteger(o.warm))) usage('--warm must be an integer >= 0');
  return o;
}

function today(): string {
  const d = new Date();
  return `${d.getFullYear()}-${String(d.getMonth() + 1).padStart(2, '0')}-${String(d.getDate()).padStart(2, '0')}`;
}

async function main(): Promise<number> {
  const opts = parseArgs(process.argv.slice(2));
  const all = opts.only.length === SECTIONS.length;
  const base = `${today()}${all ? '' : `-${opts.only.join('-')}`}${opts.quick ? '-quick' : ''}`;
  mkdirSync(opts.out, { recursive: true });
  let clamd: Promise<RunningClamd> | undefined;
  const ctx: BenchContext = {
    quick: opts.quick,
    rounds: opts.rounds,
    messages: opts.messages,
    warm: opts.warm,
    courierLock: opts.lock,
    modes: opts.modes,
    clamd: () => (clamd ??= startClamd({ streamMaxLength: '200M', extraConfig: ['DisableCache yes', 'MaxFileSize 200M', 'MaxScanSize 400M'] })),
    asset: (suffix, content) => {
      const name = `${base}-${suffix}`;
      writeFileSync(path.join(opts.out, name), content);
      return name;
    },
    log: (line) => console.error(`[bench ${new Date().toISOString().slice(11, 19)}] ${line}`),
  };
  const started = new Date();
  const loadBefore = loadAverage();
  const calReps = opts.quick ? 1 : 3;
  const calBefore = calibration(calReps);
  const reports: Array<[string, SectionReport]> = [];
  try {
    for (const [name, run] of SECTIONS) {
      if (!opts.only.includes(name)) continue;
      ctx.log(`section ${name}`);
      try {
        reports.push([name, await run(ctx)]);
      } catch (err) {
        const e = err as Error & { code?: string };
        ctx.log(`section ${name} FAILED: ${e.stack ?? e.message}`);
        reports.push([name, { title: name, markdown: `**Section failed:** ${e.code ? `${e.code}: ` : ''}${e.message}`, summary: [`${name}: FAILED (${e.message.split('\n')[0]})`], problems: [`SECTION ${name} FAILED: ${e.code ? `${e.code}: ` : ''}${e.message}`] }]);
      }
    }
  } finally {
    if (clamd) await (await clamd.catch(() => undefined))?.stop();
  }
  const problems = reports.flatMap(([, r]) => r.problems);
  const headlines = reports.filter(([, r]) => r.headline);
  const md = [
    `# avfilter benchmark, ${today()}${opts.quick ? ' (quick smoke run: few rounds and messages, figures not comparable)' : ''}`,
    `Started ${started.toISOString()}, finished ${new Date().toISOString()}; sections: ${opts.only.join(', ')}; ${opts.rounds} measured round(s) after a warm-up; mix of ${opts.messages} messages. ` +
      `Command: \`npm run bench${process.argv.length > 2 ? ` -- ${process.argv.slice(2).join(' ')}` : ''}\`.`,
    ...(problems.length ? [`**${problems.length} problem(s): some runs are INVALID (listed under PROBLEMS below); the headline's ratios leave invalid runs out.**`] : []),
    '## Headline',
    'The figures that hold from machine to machine: CPU per message as a ratio to a peer measured in the same run (each ratio computed within its round), and the memory targets. ' +
      'Throughput and latency are judged against the run\'s own noise.',
    ...(headlines.length ? headlines.map(([, r]) => r.headline!.markdown) : ['(none of the sections run has a headline: courier, filter and memory do)']),
    '## Machine',
    [...machineLines(), `- load average (1/5/15 min) at start: ${loadBefore}; at end: ${loadAverage()} (other work on the machine shows here)`,
      `- calibration at start: ${calBefore}`, `- calibration at end: ${calibration(calReps)}`].join('\n'),
    ...(problems.length ? ['## PROBLEMS: the runs below are INVALID where marked', problems.map((p) => `- ${p}`).join('\n')] : []),
    ...reports.flatMap(([, r]) => [`## ${r.title}`, r.markdown]),
  ].join('\n\n') + '\n';
  const file = path.join(opts.out, `${base}.md`);
  writeFileSync(file, md);
  console.log(['HEADLINE', ...headlines.flatMap(([, r]) => r.headline!.summary), '', 'DETAILS', ...reports.flatMap(([, r]) => r.summary)].join('\n'));
  if (problems.length) {
    console.log(`\n*** ${problems.length} PROBLEM(S): some runs are INVALID ***`);
    for (const p of problems.slice(0, 20)) console.log(`  ${p}`);
  }
  console.log(`\nreport: ${path.relative(process.cwd(), file)}`);
  return problems.length ? 3 : 0;
}

main().then((code) => process.exit(code), (err) => {
  console.error(err);
  process.exit(1);
});
