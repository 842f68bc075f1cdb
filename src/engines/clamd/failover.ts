/**
 * Which clamd server gets a request: the seam a later server pool (health checks, per-server
 * concurrency) replaces.
 *
 * Owns today: ordered failover. Servers are tried in configuration order; only a failure
 * before the connection was up (ECONNECT, ECONNECT_TIMEOUT) moves on to the next server,
 * because then clamd has seen nothing of the item. A failure after the scan started is
 * returned as it is: resending a message a server may have choked on just doubles the damage.
 * Inputs: the addresses and one attempt function. Outputs: the attempt's result, or the last
 * connect failure with every server's reason in the message.
 */
import { EngineErrorCode, type EngineResult } from '../engine.js';
import type { ClamdAddress } from './address.js';

export interface ServerSelector {
  /** Runs `attempt` against servers until one gets past the connect phase. */
  run(attempt: (addr: ClamdAddress) => Promise<EngineResult>): Promise<EngineResult>;
}

const CONNECT_PHASE: ReadonlySet<string> = new Set([EngineErrorCode.CONNECT, EngineErrorCode.CONNECT_TIMEOUT]);

export function isConnectPhaseFailure(r: EngineResult): boolean {
  return r.status === 'error' && CONNECT_PHASE.has(r.code);
}

export function orderedFailover(servers: readonly ClamdAddress[]): ServerSelector {
  if (servers.length === 0) throw new RangeError('orderedFailover needs at least one server');
  return {
    async run(attempt) {
      const reasons: string[] = [];
      let last: EngineResult | undefined;
      for (const addr of servers) {
        const r = await attempt(addr);
        if (!isConnectPhaseFailure(r)) return r;
        last = r;
        if (r.status === 'error') reasons.push(r.message);
      }
      if (servers.length === 1 || last === undefined || last.status !== 'error') return last!;
      return { status: 'error', code: last.code, message: `no clamd server reachable: ${reasons.join('; ')}` };
    },
  };
}
