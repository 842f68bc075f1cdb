/**
 * What the engines in use know: an engine set whose only signatures are test signatures (the
 * embedded engine with only the EICAR rule) scans every message and finds nothing real. That
 * must never look like protection: the daemon logs it at error severity at start and on every
 * reload, and `avfilter --config -v` says what each engine knows.
 *
 * Inputs: a Config. Outputs: a reason (or undefined) and `# signatures:` lines. Never throws:
 * an engine whose rules cannot be read is reported when the engine is built, not here.
 */
import type { Config, EngineConfig } from '../config/load.js';
import { formatServer, parseServer } from '../engines/clamd/address.js';
import { version as clamdVersion } from '../engines/clamd/client.js';
import { describeClamdVersion } from '../engines/clamd/version.js';
import { describeRules, ruleInfo, type RuleInfo } from '../engines/yara/rule-info.js';
import { DEFAULT_RULES_DIR } from '../engines/yara/rules.js';
import { messageOf } from '../errors.js';

export const NO_REAL_SIGNATURES = 'no real signatures: this is not a virus scanner';

function rulesOf(e: EngineConfig & { type: 'yara' }): RuleInfo | undefined {
  try {
    return ruleInfo(e.rules || DEFAULT_RULES_DIR);
  } catch {
    return undefined;
  }
}

/**
 * The reason to log when no engine knows a real signature, else undefined. clamd counts as
 * real: it does not start without a database, and freshclam keeps that current.
 */
export function noRealSignatures(cfg: Config): string | undefined {
  const known: string[] = [];
  for (const e of cfg.engine) {
    if (e.type !== 'yara') return undefined;
    const info = rulesOf(e);
    if (!info || !info.testOnly) return undefined;
    known.push(`yara: ${describeRules(info)}`);
  }
  return `${NO_REAL_SIGNATURES}; ${known.join('; ')}. ` +
    'Use clamd with its signature database (freshclam), or give the yara engine real rules (rules = "DIR")';
}

/**
 * `# signatures:` lines for `avfilter --config -v`: one per clamd server, one per rules
 * directory, one per ICAP service or scanner command.
 */
export async function signatureLines(cfg: Config, timeoutMs = 5000): Promise<string[]> {
  const out: string[] = [];
  for (const e of cfg.engine) {
    if (e.type === 'clamd') {
      for (const s of e.servers) {
        const addr = parseServer(s);
        const r = await clamdVersion(addr, { connectTimeoutMs: timeoutMs, replyTimeoutMs: timeoutMs, signal: AbortSignal.timeout(2 * timeoutMs) });
        out.push(`# signatures: clamd ${r.ok ? describeClamdVersion(r.reply, addr) : `at ${formatServer(addr)} unavailable: ${r.message}`}`);
      }
    } else if (e.type === 'icap' || e.type === 'command') {
      // what the server or the program says of itself: ICAP's Service and ISTag (the ISTag
      // changes with the signatures), a command's version_command
      const what = `${e.type} ${e.type === 'icap' ? e.url : e.command[0]}`;
      try {
        // loaded here, not at the top: the master calls this module, and the runtime is every
        // worker's scanning code (MIME, unpacking, engines), about 20 MB the master never uses
        const { createEngine } = await import('./runtime.js');
        const engine = createEngine(e, 1, undefined, cfg.tmpdir);
        try {
          out.push(`# signatures: ${what}: ${await engine.version(AbortSignal.timeout(2 * timeoutMs))}`);
        } finally {
          await engine.close();
        }
      } catch (err) {
        out.push(`# signatures: ${what} unavailable: ${messageOf(err)}`);
      }
    } else {
      let line: string;
      try {
        line = describeRules(ruleInfo(e.rules || DEFAULT_RULES_DIR));
      } catch (err) {
        line = `unavailable: ${messageOf(err)}`;
      }
      out.push(`# signatures: yara ${line}`);
    }
  }
  const none = noRealSignatures(cfg);
  if (none) out.push(`# ${none}`);
  return out;
}
