/**
 * Network lists ([skip] networks) as matchers over client IPs, with node's net.BlockList.
 *
 * Owns: the grammar of one entry — "192.0.2.0/24", "2001:db8::/32", a single address (a /32 or
 * /128), an IPv4-mapped IPv6 network "::ffff:192.0.2.0/120" — and the one predicate a list
 * compiles to. BlockList answers for IPv4-mapped IPv6 addresses in both directions: an IPv4
 * network covers "::ffff:192.0.2.7" and a mapped network covers "192.0.2.7", so it does not
 * matter which form Courier wrote.
 * Inputs: the config's strings. Outputs: a predicate (undefined for an empty list).
 * Fails with: NetworkError (a message fit to follow "key: ") for an entry that is not a network.
 */
import { BlockList, isIP } from 'node:net';
import { AvError } from '../errors.js';

export class NetworkError extends AvError {
  constructor(message: string) {
    super('ECONFIG_NETWORK', 'config', message);
    this.name = 'NetworkError';
  }
}

export interface Network {
  readonly address: string;
  readonly prefix: number;
  readonly family: 'ipv4' | 'ipv6';
}

/** One entry, or NetworkError saying what is wrong and what to write instead. */
export function parseNetwork(entry: string): Network {
  const slash = entry.indexOf('/');
  const address = (slash === -1 ? entry : entry.slice(0, slash)).trim();
  const v = isIP(address);
  if (v === 0) {
    throw new NetworkError(`"${entry}" is not a network: write an address or ADDRESS/PREFIX, e.g. "192.0.2.0/24" or "2001:db8::/32" (host names are not allowed)`);
  }
  const family = v === 4 ? 'ipv4' : 'ipv6';
  const max = v === 4 ? 32 : 128;
  if (slash === -1) return { address, prefix: max, family };
  const p = entry.slice(slash + 1).trim();
  if (!/^\d{1,3}$/.test(p) || Number(p) > max) {
    throw new NetworkError(`"${entry}": the prefix length must be a number from 0 to ${max}`);
  }
  return { address, prefix: Number(p), family };
}

/** A predicate over client IPs for a list of networks; undefined for an empty list. */
export function compileNetworks(entries: readonly string[]): ((ip: string) => boolean) | undefined {
  if (entries.length === 0) return undefined;
  const list = new BlockList();
  for (const e of entries) {
    const n = parseNetwork(e);
    try {
      list.addSubnet(n.address, n.prefix, n.family);
    } catch (err) {
      throw new NetworkError(`"${e}" is not a network node can match: ${err instanceof Error ? err.message : String(err)}`);
    }
  }
  return (ip) => {
    const v = isIP(ip);
    // anything that is not an address is in no network: never a reason to skip the scan
    return v !== 0 && list.check(ip, v === 4 ? 'ipv4' : 'ipv6');
  };
}

/**
 * An address in one spelling (IPv6 lower-case and compressed, "::ffff:a.b.c.d" unwrapped), so
 * one client is one entry of a table whatever form its address was written in; undefined when
 * it is not an address.
 */
export function canonicalIp(ip: string): string | undefined {
  const v = isIP(ip);
  if (v === 0) return undefined;
  if (v === 4) return ip;
  // the URL parser writes IPv6 the one way RFC 5952 asks for (lower case, longest zero run "::")
  let host: string;
  try {
    host = new URL(`http://[${ip}]/`).hostname.slice(1, -1);
  } catch {
    return undefined; // a zone index ("fe80::1%eth0"): a link-local peer, not a mail client's address
  }
  const mapped = /^::ffff:([0-9a-f]{1,4}):([0-9a-f]{1,4})$/.exec(host);
  if (mapped === null) return host;
  const hi = parseInt(mapped[1]!, 16);
  const lo = parseInt(mapped[2]!, 16);
  return `${hi >> 8}.${hi & 255}.${lo >> 8}.${lo & 255}`;
}

/** Loopback: mail submitted on this host (no client to block). */
export function isLoopback(ip: string): boolean {
  const c = canonicalIp(ip);
  return c !== undefined && (c === '::1' || c.startsWith('127.'));
}
