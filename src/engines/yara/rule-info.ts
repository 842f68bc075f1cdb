/**
 * What a YARA rules directory knows, without compiling it: how many rules, and whether they are
 * only test rules (the EICAR test file) - an engine that knows nothing else is not a virus
 * scanner, and the daemon and `avfilter --config -v` say so.
 *
 * Owns: the notion of a test rule: a rule whose identifier names EICAR (the shipped
 * `EICAR_Test_File`, or an admin's own copy of it). The EICAR file is harmless by definition;
 * a rule set that finds nothing but it passes every real virus.
 * Inputs: a rules directory (the same file selection as the compiler's, rules.ts).
 * Outputs: RuleInfo. Fails with the YaraErrors of listRuleFiles (no directory, no rule file, an
 * unreadable file); the compiler reports everything else when the engine is built.
 */
import { readFileSync } from 'node:fs';
import { YaraError, YaraErrorCode } from './errors.js';
import { countRules } from './rule-count.js';
import { listRuleFiles } from './rules.js';

export interface RuleInfo {
  readonly dir: string;
  readonly files: number;
  readonly rules: number;
  /** True when every rule is a test rule (also when there is none: nothing real either way). */
  readonly testOnly: boolean;
}

const TEST_RULE = /eicar/i;

export function isTestRule(name: string): boolean {
  return TEST_RULE.test(name);
}

export function ruleInfo(dir: string): RuleInfo {
  const files = listRuleFiles(dir);
  let rules = 0;
  let testOnly = true;
  for (const path of files) {
    let text: string;
    try {
      text = readFileSync(path, 'utf8');
    } catch (err) {
      throw new YaraError(YaraErrorCode.RULES_IO, `cannot read YARA rule file ${path}: ${(err as Error).message}`, { cause: err });
    }
    const shape = countRules(text);
    rules += shape.rules;
    if (shape.names.some((n) => !isTestRule(n))) testOnly = false;
  }
  return Object.freeze({ dir, files: files.length, rules, testOnly });
}

/** One line for `--config -v` and the log: "1 rule in DIR, only the EICAR test rule". */
export function describeRules(info: RuleInfo): string {
  const n = `${info.rules} rule${info.rules === 1 ? '' : 's'} in ${info.dir}`;
  return info.testOnly ? `${n}, only the EICAR test rule` : n;
}
