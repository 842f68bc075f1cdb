/**
 * ICAP service URLs as written in the configuration: `icap://host[:port]/service` (RFC 3507
 * §4.2; default port 1344). Here, with the config, so that `avfilter --config` refuses exactly
 * the URLs the ICAP engine would.
 *
 * Owns: parsing and checking the configured `url` once, at config time.
 * Fails with: an AvError (origin config) with code EBADOPTION naming what is wrong (the config loader reports it at
 * the key).
 */
import { AvError } from '../errors.js';

export const ICAP_DEFAULT_PORT = 1344;

export interface IcapUrl {
  /** Host for connect(): a name, an IPv4 address, or an IPv6 address without brackets. */
  readonly host: string;
  readonly port: number;
  /** Path and query of the service, e.g. "/srv_clamav" or "/virus_scan?allow204=on". */
  readonly path: string;
  /** The URL as written on the request line (the server matches its services on it). */
  readonly text: string;
}

export function parseIcapUrl(text: string): IcapUrl {
  const fail = (why: string): never => {
    throw new AvError('EBADOPTION', 'config', `url ${JSON.stringify(text)}: ${why}; write it like "icap://127.0.0.1:1344/srv_clamav"`);
  };
  if (typeof text !== 'string' || !text.toLowerCase().startsWith('icap://')) fail('must start with icap://');
  // Control characters or spaces would end up on the request line.
  if (/[\s\x00-\x1f\x7f]/.test(text)) fail('must not contain spaces or control characters');
  let u: URL;
  try {
    // URL only knows the authority syntax for special schemes; parse it as http and keep ours.
    u = new URL(`http://${text.slice('icap://'.length)}`);
  } catch {
    return fail('is not a valid URL');
  }
  if (u.username !== '' || u.password !== '') fail('must not carry a user or password');
  if (u.hash !== '') fail('must not have a #fragment');
  if (u.hostname === '') fail('needs a host');
  if (u.pathname === '/' || u.pathname === '') fail('needs a service path, e.g. /srv_clamav');
  const port = u.port === '' ? ICAP_DEFAULT_PORT : Number(u.port);
  const host = u.hostname.startsWith('[') ? u.hostname.slice(1, -1) : u.hostname;
  return Object.freeze({ host, port, path: u.pathname + u.search, text: `icap://${u.host}${u.pathname}${u.search}` });
}

/** The Host header value: host[:port] as in the URL. */
export function hostHeader(u: IcapUrl): string {
  const h = u.host.includes(':') ? `[${u.host}]` : u.host;
  return u.port === ICAP_DEFAULT_PORT ? h : `${h}:${u.port}`;
}
