/**
 * engine_mode = "failover": the engines as alternatives rather than all at once. Each item goes to
 * the first engine of the list that is healthy (Engine.healthy(); an engine that cannot tell is
 * taken as healthy); when it answers with an error that says nothing about the item (it could not
 * scan: connect, timeout, protocol, its own fault) the next healthy engine is asked, and so on.
 * An answer (clean, infected), a size refusal (a limit: another engine may not be allowed to
 * decide what the admin's limit refused) and an abort end the search. With every engine failing,
 * the first error is the answer (the message gets 451). Findings name the engine that found them.
 */
import { EngineErrorCode, type Engine, type EngineResult } from '../engines/engine.js';

const FINAL_ERRORS: ReadonlySet<string> = new Set([EngineErrorCode.SIZE_LIMIT, EngineErrorCode.ABORTED]);

export function failoverEngines(engines: readonly Engine[]): Engine {
  if (engines.length === 1) return engines[0]!;
  return {
    label: engines.map((e) => e.label).join('|'),
    async scan(item, signal): Promise<EngineResult> {
      const ordered = [...engines.filter((e) => e.healthy?.() !== false), ...engines.filter((e) => e.healthy?.() === false)];
      let first: EngineResult | undefined;
      for (const e of ordered) {
        const r = await e.scan(item, signal);
        if (r.status === 'infected') return { ...r, engine: r.engine ?? e.label };
        if (r.status === 'clean' || FINAL_ERRORS.has(r.code) || signal.aborted) return r;
        first ??= { ...r, message: `${e.label}: ${r.message}` };
      }
      return first!;
    },
    async version(signal) {
      const vs = await Promise.all(engines.map((e) => e.version(signal)));
      return `failover: ${vs.join('; then ')}`;
    },
    async close() {
      await Promise.all(engines.map((e) => e.close()));
    },
    healthy: () => engines.some((e) => e.healthy?.() !== false),
  };
}
