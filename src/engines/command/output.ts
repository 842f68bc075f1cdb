/**
 * What a command-line scanner's exit means: the table from exit status and output to an
 * EngineResult. Pure.
 *
 *   exit code in infectedExit        -> infected: the names namePattern captures on the output
 *                                       lines (stdout, then stderr); none: GENERIC_NAME (the
 *                                       exit code said "infected", which is never "clean")
 *   exit code in cleanExit           -> clean, unless a line matches namePattern (a scanner that
 *                                       says both is not believed: error EPROTOCOL)
 *   another exit code, a signal      -> error ESCANNER with the code and the first stderr line
 */
import { EngineErrorCode, type EngineResult } from '../engine.js';

/** Reported when the scanner's exit code says "infected" and no output line names the threat. */
export const GENERIC_NAME = 'Command.Infected.Unnamed';

const MAX_NAME_CHARS = 200;

export interface Exit {
  readonly code: number | null;
  readonly signal: string | null;
  readonly stdout: string;
  readonly stderr: string;
}

export interface ExitRules {
  readonly cleanExit: readonly number[];
  readonly infectedExit: readonly number[];
  /** One capture group: the name. */
  readonly namePattern: RegExp;
}

export function resultOf(x: Exit, rules: ExitRules, program: string): EngineResult {
  if (x.code === null) {
    return { status: 'error', code: EngineErrorCode.SCANNER, message: `${program} was killed by ${x.signal ?? 'a signal'}${stderrText(x)}` };
  }
  const names = namesIn(`${x.stdout}\n${x.stderr}`, rules.namePattern);
  if (rules.infectedExit.includes(x.code)) return { status: 'infected', names: names.length > 0 ? names : [GENERIC_NAME] };
  if (rules.cleanExit.includes(x.code)) {
    if (names.length === 0) return { status: 'clean' };
    return {
      status: 'error', code: EngineErrorCode.PROTOCOL,
      message: `${program} exited ${x.code} (clean) but reported ${names.slice(0, 3).join(', ')}`,
    };
  }
  return { status: 'error', code: EngineErrorCode.SCANNER, message: `${program} exited ${x.code}${stderrText(x)}` };
}

export function namesIn(text: string, pattern: RegExp): string[] {
  const out: string[] = [];
  for (const raw of text.split('\n')) {
    const m = pattern.exec(raw.replace(/\r$/, ''));
    const name = m?.[1] === undefined ? '' : clean(m[1]);
    if (name !== '' && !out.includes(name)) out.push(name);
  }
  return out;
}

function stderrText(x: Exit): string {
  const first = x.stderr.split('\n').map((l) => clean(l)).find((l) => l !== '');
  return first === undefined ? '' : `: ${first}`;
}

/** One line of printable text, bounded: names and messages go into replies and logs. */
export function clean(s: string): string {
  return s.replace(/[\x00-\x1f\x7f-\x9f]+/g, ' ').trim().slice(0, MAX_NAME_CHARS);
}
