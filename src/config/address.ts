/**
 * Server addresses as written in the configuration (clamd servers).
 *
 * Owns: the accepted forms `unix:/abs/path`, `/abs/path`, `tcp:host:port`, `tcp:[v6addr]:port`.
 * Inputs: one string. Outputs: a frozen ServerAddress.
 * Fails with: an AvError (origin config) with code EBADSERVER whose message names the expected forms (config time,
 * so throwing is right here).
 */
import { isIP, isIPv6 } from 'node:net';
import { AvError } from '../errors.js';

export type ServerAddress =
  | { readonly kind: 'unix'; readonly path: string }
  | { readonly kind: 'tcp'; readonly host: string; readonly port: number };

/**
 * Linux sun_path holds 108 bytes including the terminating NUL; a longer path fails only at
 * connect time with a confusing error, so refuse it when the config is read.
 */
const UNIX_PATH_MAX_BYTES = 107;

const EXPECTED = 'expected unix:/absolute/path, /absolute/path, tcp:host:port or tcp:[ipv6-address]:port';

/** Refuses an address: the error to throw, saying why. */
export type Refuse = (why: string) => Error;

/** A unix socket path as written after `unix:`: absolute, no NUL, short enough for sun_path. */
export function checkUnixPath(path: string, refuse: Refuse): string {
  if (!path.startsWith('/')) throw refuse('the socket path must be absolute');
  if (path.includes('\0')) throw refuse('NUL in socket path');
  if (Buffer.byteLength(path) > UNIX_PATH_MAX_BYTES) throw refuse(`socket path longer than ${UNIX_PATH_MAX_BYTES} bytes`);
  return path;
}

/**
 * What follows `tcp:`: `[IPv6]:port` (the address checked) or `host:port` (the host left to the
 * caller's rules); the port is still text, for the caller to check.
 */
export function splitHostPort(rest: string, refuse: Refuse): { host: string; portText: string; bracketed: boolean } {
  if (rest.startsWith('[')) {
    const close = rest.indexOf(']');
    if (close < 0 || rest[close + 1] !== ':') throw refuse('an IPv6 address needs the form [addr]:port');
    const host = rest.slice(1, close);
    if (!isIPv6(host)) throw refuse(`"${host}" is not an IPv6 address`);
    return { host, portText: rest.slice(close + 2), bracketed: true };
  }
  const colon = rest.lastIndexOf(':');
  if (colon < 0) throw refuse('missing :port');
  return { host: rest.slice(0, colon), portText: rest.slice(colon + 1), bracketed: false };
}

export function parseServer(s: string): ServerAddress {
  if (typeof s !== 'string' || s.length === 0) throw bad(String(s), 'empty');
  if (s.startsWith('unix:') || s.startsWith('/')) {
    const path = checkUnixPath(s.startsWith('unix:') ? s.slice('unix:'.length) : s, (why) => bad(s, why));
    return Object.freeze({ kind: 'unix', path });
  }
  if (s.startsWith('tcp:')) {
    const { host, portText, bracketed } = splitHostPort(s.slice('tcp:'.length), (why) => bad(s, why));
    if (!bracketed) {
      if (host.includes(':')) throw bad(s, 'write an IPv6 address in brackets: tcp:[addr]:port');
      if (isIP(host) === 0 && !/^[A-Za-z0-9](?:[A-Za-z0-9.-]{0,251}[A-Za-z0-9])?$/.test(host)) {
        throw bad(s, `"${host}" is not a host name or IPv4 address`);
      }
    }
    if (!/^[0-9]{1,5}$/.test(portText)) throw bad(s, `port "${portText}" is not a number`);
    const port = Number(portText);
    if (port < 1 || port > 65535) throw bad(s, `port ${port} is not in 1..65535`);
    return Object.freeze({ kind: 'tcp', host, port });
  }
  throw bad(s, 'unknown form');
}

/** The address written back in the canonical form, for messages and logs. */
export function formatServer(a: ServerAddress): string {
  if (a.kind === 'unix') return `unix:${a.path}`;
  return isIPv6(a.host) ? `tcp:[${a.host}]:${a.port}` : `tcp:${a.host}:${a.port}`;
}

function bad(s: string, why: string): AvError {
  return new AvError('EBADSERVER', 'config', `invalid clamd server ${JSON.stringify(s)}: ${why}; ${EXPECTED}`);
}
