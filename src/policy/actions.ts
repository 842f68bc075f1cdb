/**
 * The one table from verdict + [action] config to what avfilter does and what it answers.
 * Read it top to bottom: most severe first. A 2xx comes only from an explicit clean verdict or
 * from an explicit, named policy (action.infected = "drop" or "pass", action.error = "accept"
 * for scanner errors only), and each of those is visible in the log's verdict/action fields.
 */
import type { Verdict } from './verdict.js';

export interface ActionPolicy {
  readonly infected: 'drop' | 'reject' | 'tempfail' | 'pass';
  readonly error: 'tempfail' | 'accept';
  readonly limit: 'tempfail' | 'reject';
  /** Absent (an older caller): reject, the default. */
  readonly encrypted?: 'reject' | 'tempfail' | 'pass';
}

/** What the log calls the outcome (contract: clean, infected, tempfail, accepted-unscanned). */
export type LogVerdict = 'clean' | 'infected' | 'tempfail' | 'accepted-unscanned' | 'unscannable' | 'encrypted';

export interface Decision {
  /** drop: mark every pending recipient delivered before answering. */
  readonly action: 'accept' | 'drop' | 'reject' | 'tempfail' | 'pass' | 'accept-unscanned';
  readonly code: number;
  readonly text: string;
  readonly verdict: LogVerdict;
}

const TEMPFAIL = 451;
const REJECT_VIRUS = 550;
const REJECT_UNSCANNABLE = 554;

export function decide(v: Verdict, policy: ActionPolicy): Decision {
  switch (v.kind) {
    case 'infected': {
      const names = v.names.join(', ');
      switch (policy.infected) {
        case 'reject':
          return { action: 'reject', code: REJECT_VIRUS, text: `5.7.1 Message rejected: virus found: ${names}`, verdict: 'infected' };
        case 'tempfail':
          return { action: 'tempfail', code: TEMPFAIL, text: `4.7.1 Message held: virus found: ${names}`, verdict: 'infected' };
        case 'drop':
          return { action: 'drop', code: 200, text: 'Ok', verdict: 'infected' };
        case 'pass':
          return { action: 'pass', code: 200, text: 'Ok', verdict: 'infected' };
      }
      break;
    }
    case 'encrypted':
      // Malware is routinely mailed in encrypted zips with the password in the body: nothing
      // can scan the members, so by default the message is refused, saying why. The path (a
      // name the sender chose) stays in the log; the reply names the format only.
      switch (policy.encrypted ?? 'reject') {
        case 'reject':
          return { action: 'reject', code: REJECT_UNSCANNABLE, text: `5.7.1 Message rejected: encrypted archive cannot be scanned (${v.name})`, verdict: 'encrypted' };
        case 'tempfail':
          return { action: 'tempfail', code: TEMPFAIL, text: `4.7.1 Message held: encrypted archive cannot be scanned (${v.name})`, verdict: 'encrypted' };
        case 'pass':
          return { action: 'pass', code: 200, text: 'Ok', verdict: 'encrypted' };
      }
      break;
    case 'busy':
      // The admin asked for it (waitfile): never accept, whatever action.error says.
      return { action: 'tempfail', code: TEMPFAIL, text: `4.3.2 Virus scanner busy, try again later (${v.reason})`, verdict: 'tempfail' };
    case 'limit':
      if (policy.limit === 'reject') {
        return { action: 'reject', code: REJECT_UNSCANNABLE, text: `5.7.1 Message cannot be scanned: ${v.reason}`, verdict: 'unscannable' };
      }
      return { action: 'tempfail', code: TEMPFAIL, text: `4.7.1 Message cannot be scanned now: ${v.reason}`, verdict: 'tempfail' };
    case 'error':
      // Fail open applies to the scanners' own failures only: an abort (deadline, shutdown), a
      // bad request or a fault in avfilter is never a reason to deliver unscanned mail.
      if (policy.error === 'accept' && v.origin === 'scanner') {
        return { action: 'accept-unscanned', code: 200, text: 'Ok (not scanned)', verdict: 'accepted-unscanned' };
      }
      return { action: 'tempfail', code: TEMPFAIL, text: `4.3.0 Virus scan failed, try again later (${v.code})`, verdict: 'tempfail' };
    case 'clean':
      return { action: 'accept', code: 200, text: 'Ok', verdict: 'clean' };
  }
  // Unreachable with a well-typed verdict; fail closed anyway.
  return { action: 'tempfail', code: TEMPFAIL, text: '4.3.0 Internal error, try again later', verdict: 'tempfail' };
}
