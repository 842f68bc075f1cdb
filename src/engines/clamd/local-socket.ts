/**
 * Where the distribution's clamd listens: the LocalSocket of its clamd.conf
 * (/etc/clamav/clamd.conf, or the file named by $AVFILTER_CLAMD_CONF), else Debian's
 * /run/clamav/clamd.ctl.
 *
 * Owns: reading the one directive avfilter needs from clamd.conf (clamd's syntax: "Name value",
 * `#` comments, the last occurrence wins). Inputs: the environment. Outputs: a socket path and
 * where it came from. Never throws: an unreadable clamd.conf means the fallback path.
 */
import { readFileSync } from 'node:fs';

export const CLAMD_CONF = '/etc/clamav/clamd.conf';
export const CLAMD_SOCKET_FALLBACK = '/run/clamav/clamd.ctl';

export interface LocalSocket {
  readonly path: string;
  /** "CONF:LocalSocket" or "fallback" */
  readonly from: string;
}

/** The LocalSocket directive of clamd.conf text, or undefined. */
export function localSocketOf(text: string): string | undefined {
  let found: string | undefined;
  for (const raw of text.split('\n')) {
    const line = raw.replace(/#.*$/, '').trim();
    const m = /^LocalSocket\s+(.+)$/.exec(line);
    if (m) found = m[1]!.trim().replace(/^"(.*)"$/, '$1');
  }
  return found?.startsWith('/') ? found : undefined;
}

export function clamdLocalSocket(env: NodeJS.ProcessEnv = process.env, fallback = CLAMD_SOCKET_FALLBACK): LocalSocket {
  const conf = env['AVFILTER_CLAMD_CONF'] || CLAMD_CONF;
  try {
    const path = localSocketOf(readFileSync(conf, 'utf8'));
    if (path) return { path, from: `${conf}:LocalSocket` };
  } catch {
    // no clamd.conf (or not readable by this user): the distribution's usual path
  }
  return { path: fallback, from: 'fallback' };
}
