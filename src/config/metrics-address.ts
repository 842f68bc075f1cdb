/**
 * The `metrics` key: where the master serves its counters as Prometheus text (GET /metrics).
 *
 * Owns: the accepted forms and what counts as exposed. "" (off), `unix:/absolute/path`,
 * `tcp:IPV4:PORT`, `tcp:[IPV6]:PORT`, `tcp:localhost:PORT`. Port 0 takes any free port (the
 * `metrics-listening` log line names it). Host names other than localhost are refused: a name
 * could resolve to any interface, and the admin must see which one the counters go out on.
 * A non-loopback address is accepted — naming it is the admin's explicit choice — but flagged
 * (`exposed`), and the master logs it at warning each time it binds: the counters tell anyone
 * who can reach them which viruses arrive and how much mail flows.
 * Inputs: the key's string. Outputs: a frozen MetricsAddress, or undefined for "".
 * Fails with: an AvError (origin config) with code EBADMETRICS whose message names the expected forms.
 */
import { isIP, isIPv6 } from 'node:net';
import { AvError } from '../errors.js';
import { checkUnixPath, splitHostPort } from './address.js';

export type MetricsAddress =
  | { readonly kind: 'unix'; readonly path: string }
  | { readonly kind: 'tcp'; readonly host: string; readonly port: number; readonly exposed: boolean };

export const METRICS_FORMS = '"" (off), "unix:/absolute/path", "tcp:127.0.0.1:PORT", "tcp:[::1]:PORT" or another IP address as "tcp:ADDRESS:PORT"';

export function parseMetricsAddress(s: string): MetricsAddress | undefined {
  if (s === '') return undefined;
  if (s.startsWith('unix:')) {
    const path = checkUnixPath(s.slice('unix:'.length), (why) => bad(s, why));
    return Object.freeze({ kind: 'unix', path });
  }
  if (!s.startsWith('tcp:')) throw bad(s, 'unknown form');
  const split = splitHostPort(s.slice('tcp:'.length), (why) => bad(s, why));
  let host = split.host;
  const portText = split.portText;
  if (!split.bracketed) {
    if (host === 'localhost') host = '127.0.0.1';
    else if (isIP(host) !== 4) throw bad(s, `"${host}" is not an IPv4 address (write an IPv6 address in brackets; host names other than localhost are refused)`);
  }
  if (!/^[0-9]{1,5}$/.test(portText)) throw bad(s, `port "${portText}" is not a number`);
  const port = Number(portText);
  if (port > 65535) throw bad(s, `port ${port} is not in 0..65535`);
  return Object.freeze({ kind: 'tcp', host, port, exposed: !isLoopback(host) });
}

/** 127.0.0.0/8, ::1 and ::ffff:127.x.y.z. */
export function isLoopback(host: string): boolean {
  if (isIP(host) === 4) return host.startsWith('127.');
  const h = host.toLowerCase();
  if (h === '::1' || h === '0:0:0:0:0:0:0:1') return true;
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/.exec(h);
  return mapped !== null && mapped[1]!.startsWith('127.');
}

export function formatMetricsAddress(a: MetricsAddress): string {
  if (a.kind === 'unix') return `unix:${a.path}`;
  return isIPv6(a.host) ? `tcp:[${a.host}]:${a.port}` : `tcp:${a.host}:${a.port}`;
}

function bad(s: string, why: string): AvError {
  return new AvError('EBADMETRICS', 'config', `invalid metrics address ${JSON.stringify(s)}: ${why}; expected ${METRICS_FORMS}`);
}
