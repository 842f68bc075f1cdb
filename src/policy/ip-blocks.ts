/**
 * The table of blocked client IPs (action.block_ip_seconds, clamav-milter's --blacklist-time):
 * after a virus from an IP, its mail is tempfailed until the block ends.
 *
 * Owns: the entries (IP in one spelling → end of the block, epoch ms), their bound
 * (action.block_ip_max: the block that was set longest ago goes first) and which IPs may be
 * blocked at all (never loopback, the unspecified address or "no client IP": mail submitted on
 * this host). The same class is the master's table and each worker's copy (master/pool.ts keeps
 * the one that counts and sends every change to every worker). Pure: the clock is passed in.
 * Fails with nothing: an IP that cannot be blocked is refused with `false`.
 */
import { canonicalIp, isLoopback } from './networks.js';

export type BlockEntry = readonly [ip: string, until: number];

/** The IP a block is kept under, or undefined when this IP is never blocked. */
export function blockableIp(ip: string | undefined): string | undefined {
  if (ip === undefined || ip === '') return undefined;
  const c = canonicalIp(ip);
  if (c === undefined || isLoopback(c) || c === '0.0.0.0' || c === '::') return undefined;
  return c;
}

export class BlockTable {
  /** Insertion order is the order blocks were set: the first entry is the oldest. */
  private readonly entries = new Map<string, number>();

  constructor(private max: number) {}

  get size(): number {
    return this.entries.size;
  }

  /** Every block lifted (a reload that turns block_ip_seconds off). */
  clear(): void {
    this.entries.clear();
  }

  /** A new bound (a reload): the oldest blocks beyond it go. */
  resize(max: number): void {
    this.max = Math.max(1, max);
    this.trim();
  }

  /**
   * Blocks `ip` until `until` (epoch ms); a later end replaces an earlier one, never the other
   * way round (two workers may report the same IP out of order). Returns the canonical IP when
   * the table changed, undefined otherwise (not blockable, or already blocked as long).
   */
  add(ip: string, until: number, now: number): string | undefined {
    const key = blockableIp(ip);
    if (key === undefined || !Number.isFinite(until) || until <= now) return undefined;
    const had = this.entries.get(key);
    if (had !== undefined && had >= until) return undefined;
    // delete first: a renewed block is the newest, the last to be pushed out
    this.entries.delete(key);
    this.entries.set(key, until);
    this.trim();
    return key;
  }

  /** When the block on `ip` ends (epoch ms), or undefined when it is not blocked now. */
  blockedUntil(ip: string | undefined, now: number): number | undefined {
    const key = blockableIp(ip);
    if (key === undefined) return undefined;
    const until = this.entries.get(key);
    if (until === undefined) return undefined;
    if (until > now) return until;
    this.entries.delete(key);
    return undefined;
  }

  /** How many blocks are in force (the ended ones are removed on the way). */
  live(now: number): number {
    for (const [ip, until] of this.entries) if (until <= now) this.entries.delete(ip);
    return this.entries.size;
  }

  /** The blocks still in force, oldest first (what a new worker is given). */
  snapshot(now: number): BlockEntry[] {
    const out: BlockEntry[] = [];
    for (const [ip, until] of this.entries) {
      if (until > now) out.push([ip, until]);
      else this.entries.delete(ip);
    }
    return out;
  }

  private trim(): void {
    while (this.entries.size > this.max) {
      const oldest = this.entries.keys().next().value as string;
      this.entries.delete(oldest);
    }
  }
}

/**
 * One process's view of the blocks: a worker's copy of the master's table (`share` reports a
 * new block to the master, which sends it to every worker), or the whole table where there is
 * no master (--batch-test).
 */
export class ProcessBlocks {
  private readonly table: BlockTable;

  constructor(max: number, private share?: (ip: string, until: number) => void, private readonly clock: () => number = Date.now) {
    this.table = new BlockTable(max);
  }

  /** A config's bound (action.block_ip_max) and, in a worker, how a new block reaches the master. */
  configure(max: number, share?: (ip: string, until: number) => void): void {
    this.table.resize(max);
    if (share !== undefined) this.share = share;
  }

  blockedUntil(ip: string | undefined): number | undefined {
    return this.table.blockedUntil(ip, this.clock());
  }

  /**
   * Blocks `ip` for `seconds` here and, through `share`, everywhere. Returns the IP as kept and
   * the end of the block, or undefined when it is never blocked (loopback, no client IP).
   */
  block(ip: string | undefined, seconds: number): { ip: string; until: number } | undefined {
    const key = blockableIp(ip);
    if (key === undefined || !(seconds > 0)) return undefined;
    const now = this.clock();
    const until = now + Math.round(seconds * 1000);
    // shared even when this copy had it already: the master's table is the one that counts
    this.table.add(key, until, now);
    this.share?.(key, until);
    return { ip: key, until };
  }

  /** Every block lifted (block_ip_seconds = 0). */
  clear(): void {
    this.table.clear();
  }

  /** Blocks the master sent (a snapshot at start, then each new one). */
  apply(entries: readonly BlockEntry[]): void {
    const now = this.clock();
    for (const e of entries) {
      if (Array.isArray(e) && typeof e[0] === 'string' && typeof e[1] === 'number') this.table.add(e[0], e[1], now);
    }
  }
}

/** Blocks kept before a config says action.block_ip_max (the schema's default). */
export const DEFAULT_BLOCK_MAX = 10_000;

/**
 * This process's blocks: one per process, as the table is (a worker serves one generation, so
 * one config; --batch-test has only this). The gates read it, the block effect writes it.
 */
export const processBlocks = new ProcessBlocks(DEFAULT_BLOCK_MAX);
