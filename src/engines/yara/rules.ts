/**
 * The YARA rules directory: which files are rules, and compiling them into one rule set.
 *
 * Owns: the rule-file selection (every regular *.yar / *.yara file directly inside the
 * directory, extension case-insensitive, dot-files skipped, sorted by name; NOT recursive, so an
 * admin can park rules in a subdirectory such as disabled/ and rule packs that `include` their
 * own subfiles are not loaded twice), their concatenation in that order into one source (so a
 * later file may use rules of an earlier one, as with `yara a.yar b.yar`), and mapping compiler
 * locations back to file:line. `include` directives are refused: every file is already loaded,
 * and an include path would depend on the daemon's working directory.
 * Inputs: a directory path. Reads synchronously: this runs at start-up and on reload, before
 * the new rules replace the old ones.
 * Outputs: LoadedRules (the source the scan workers compile, counts, warnings), or a YaraError:
 * EYARA_NO_RULES (missing or empty directory, or files without a rule: an engine without rules
 * must never report clean),
 * EYARA_RULES_IO (unreadable), EYARA_COMPILE (names the file, line and the compiler's message),
 * EYARA_UNAVAILABLE (binding). A failed load changes nothing, so a bad reload keeps old rules.
 */
import { readdirSync, readFileSync, statSync, existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadBinding, type YaraCompilerOptions, type YaraDiagnostic } from './binding.js';
import { YaraError, YaraErrorCode } from './errors.js';
import { countRules } from './rule-count.js';

/** Compiler options for every compilation of the rule set (main thread and scan workers). */
export const COMPILE_OPTIONS: Readonly<YaraCompilerOptions> = Object.freeze({
  enableIncludes: false,
});

const RULE_FILE = /\.(yar|yara)$/i;

export interface LoadedRules {
  /** The directory, resolved to an absolute path. */
  readonly dir: string;
  /** Absolute paths of the rule files, in compile order. */
  readonly files: readonly string[];
  /** All files concatenated; what the scan workers compile. */
  readonly source: string;
  readonly ruleCount: number;
  /** Compiler warnings as "FILE:LINE:COL: warning[code]: text", for the caller to log. */
  readonly warnings: readonly string[];
}

/**
 * The rules directory shipped in the package: `rules/` next to the nearest package.json above
 * `fromDir` that has one. Works from the compiled module (dist/src/engines/yara) and from the
 * sources (src/engines/yara) alike, and when installed under node_modules.
 */
export function packageRulesDir(fromDir: string): string {
  for (let dir = resolve(fromDir); ; dir = dirname(dir)) {
    if (existsSync(join(dir, 'package.json')) && existsSync(join(dir, 'rules'))) {
      return join(dir, 'rules');
    }
    if (dirname(dir) === dir) break;
  }
  return resolve(fromDir, '../../../../rules'); // the dist layout; loading reports it if absent
}

/** Default for the `rules` key of a `type = "yara"` engine. */
export const DEFAULT_RULES_DIR = packageRulesDir(dirname(fileURLToPath(import.meta.url)));

/** The rule files in `dir`, sorted. Throws EYARA_NO_RULES / EYARA_RULES_IO. */
export function listRuleFiles(dir: string): string[] {
  const abs = resolve(dir);
  let names: string[];
  try {
    names = readdirSync(abs);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') {
      throw new YaraError(
        YaraErrorCode.NO_RULES,
        `YARA rules directory ${abs} does not exist or is not a directory`,
        { cause: err },
      );
    }
    throw new YaraError(
      YaraErrorCode.RULES_IO,
      `cannot read YARA rules directory ${abs}: ${(err as Error).message}`,
      { cause: err },
    );
  }
  const files: string[] = [];
  // Default sort compares UTF-16 code units: the same order whatever the locale.
  for (const name of names.sort()) {
    if (name.startsWith('.') || !RULE_FILE.test(name)) continue; // editor locks, swap files
    const path = join(abs, name);
    try {
      if (statSync(path).isFile()) files.push(path); // follows symlinks, as admins use them
    } catch (err) {
      throw new YaraError(
        YaraErrorCode.RULES_IO,
        `cannot stat YARA rule file ${path}: ${(err as Error).message}`,
        { cause: err },
      );
    }
  }
  if (files.length === 0) {
    throw new YaraError(
      YaraErrorCode.NO_RULES,
      `YARA rules directory ${abs} holds no *.yar or *.yara file`,
    );
  }
  return files;
}

interface Part {
  readonly path: string;
  /** Line of the concatenated source where this file starts (1-based). */
  readonly firstLine: number;
  readonly text: string;
}

/** Reads, checks and compiles every rule file in `dir`. Throws YaraError (see header). */
export function loadRules(dir: string): LoadedRules {
  const files = listRuleFiles(dir);
  const parts: Part[] = [];
  let line = 1;
  for (const path of files) {
    const text = readRuleFile(path);
    const chunk = text.endsWith('\n') ? text : `${text}\n`;
    parts.push({ path, firstLine: line, text: chunk });
    line += countNewlines(chunk);
  }
  const source = parts.map((p) => p.text).join('');
  const binding = loadBinding();
  let warnings: YaraDiagnostic[];
  try {
    warnings = binding.compile(source, COMPILE_OPTIONS).getWarnings();
  } catch (err) {
    throw compileError(err, parts, resolve(dir));
  }
  // Checked after the compiler, whose message is more precise for a broken file.
  let ruleCount = 0;
  for (const part of parts) {
    const shape = countRules(part.text);
    if (!shape.complete) {
      throw new YaraError(
        YaraErrorCode.COMPILE,
        `${part.path}: YARA rule file ends inside a comment, string or rule body`,
      );
    }
    ruleCount += shape.rules;
  }
  if (ruleCount === 0) {
    throw new YaraError(YaraErrorCode.NO_RULES, `YARA rule files in ${resolve(dir)} declare no rule`);
  }
  return Object.freeze({
    dir: resolve(dir),
    files: Object.freeze(files),
    source,
    ruleCount,
    warnings: Object.freeze(warnings.map((w) => locate(w.message, parts) ?? w.message)),
  });
}

function readRuleFile(path: string): string {
  let bytes: Buffer;
  try {
    bytes = readFileSync(path);
  } catch (err) {
    throw new YaraError(
      YaraErrorCode.RULES_IO,
      `cannot read YARA rule file ${path}: ${(err as Error).message}`,
      { cause: err },
    );
  }
  try {
    // fatal: a replacement character would silently change the bytes a string literal matches.
    // The decoder drops a leading BOM, which YARA-X rejects as a syntax error.
    return new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch (err) {
    throw new YaraError(YaraErrorCode.COMPILE, `${path}: YARA rule file is not valid UTF-8`, {
      cause: err,
    });
  }
}

function countNewlines(s: string): number {
  let n = 0;
  for (let i = s.indexOf('\n'); i >= 0; i = s.indexOf('\n', i + 1)) n++;
  return n;
}

/**
 * "FILE:LINE:COL: error[E009]: unknown identifier `foo` (this identifier has not been
 * declared)" from the compiler's report on the concatenated source; undefined when the report
 * carries no "--> line:L:C".
 */
function locate(report: string, parts: readonly Part[]): string | undefined {
  const at = /-->\s*line:(\d+):(\d+)/.exec(report);
  if (!at) return undefined;
  const line = Number(at[1]);
  const part = [...parts].reverse().find((p) => p.firstLine <= line);
  if (!part) return undefined;
  const headline = (report.split('\n')[0] ?? '').replace(/^Compilation error \([^)]*\):\s*/, '');
  // The snippet's primary label ("^^^ text"), else a secondary one ("--- text", warnings).
  const label = (/^[ \t]*\|[ \t-]*\^+[ \t]+(.+)$/m.exec(report) ??
    /^[ \t]*\|[ \t]*-+[ \t]+(.+)$/m.exec(report))?.[1];
  const where = `${part.path}:${line - part.firstLine + 1}:${at[2]}`;
  return `${where}: ${headline}${label ? ` (${label})` : ''}`;
}

function compileError(err: unknown, parts: readonly Part[], dir: string): YaraError {
  const report = err instanceof Error ? err.message : String(err);
  let where = locate(report, parts);
  if (!where) {
    // No location in the report: compile each file alone to find the culprit.
    const binding = loadBinding();
    const bad = parts.find((p) => binding.validate(p.text, COMPILE_OPTIONS).errors.length > 0);
    where = `${bad ? bad.path : `rules in ${dir}`}: ${report.split('\n')[0] ?? report}`;
  }
  return new YaraError(YaraErrorCode.COMPILE, `YARA rules do not compile: ${where}`, {
    cause: err,
  });
}
