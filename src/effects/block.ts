/**
 * The block effect (action.block_ip_seconds, as clamav-milter's --blacklist-time): after a
 * virus from a client IP, its further mail is answered 451 for a while, by every worker.
 *
 * Owns: setting the block in this process's table, which reports it to the master (it keeps the
 * table and sends the block on to every worker: master/pool.ts). Phase "after": the answer
 * already stands, a failure is logged and changes nothing. Loopback, the unspecified address
 * and mail without a client IP are never blocked (policy/ip-blocks.ts), nor an IP in [skip]
 * networks (its mail is never scanned, so it never gets here; checked again all the same).
 * Inputs: the effect (ip, seconds) and the message's env. Outputs: `blocked=IP` and
 * `blocked_until=` on the message's log line. Fails with nothing.
 */
import { processBlocks } from '../policy/ip-blocks.js';
import { compileNetworks } from '../policy/networks.js';
import type { EffectRunner } from './types.js';

/** The networks of a config's [skip], compiled once per config (its list is frozen). */
const skipNetworks = new WeakMap<readonly string[], ((ip: string) => boolean) | undefined>();

function inSkipNetworks(networks: readonly string[], ip: string): boolean {
  if (networks.length === 0) return false;
  if (!skipNetworks.has(networks)) skipNetworks.set(networks, compileNetworks(networks));
  return skipNetworks.get(networks)?.(ip) ?? false;
}

export const blockRunner: EffectRunner<'block'> = {
  kind: 'block',
  phase: 'after',
  writes: false,
  failVerb: 'blocked',
  async run(effect, env) {
    if (inSkipNetworks(env.config.skip.networks, effect.ip)) return;
    const set = processBlocks.block(effect.ip, effect.seconds);
    if (set === undefined) return;
    env.fields['blocked'] = set.ip;
    env.fields['blocked_until'] = new Date(set.until).toISOString();
  },
};
