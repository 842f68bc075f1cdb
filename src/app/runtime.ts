/**
 * The runtime: a config plus the engines built from it, everything a request needs. Built once
 * at start-up (before the socket appears, so a bad config or unloadable rules stop the start),
 * and again on reload (a later issue) — a failed build leaves the old runtime in place.
 */
import { mkdirSync } from 'node:fs';
import type { Config, EngineConfig } from '../config/load.js';
import type { Engine } from '../engines/engine.js';
import { createClamdEngine } from '../engines/clamd/index.js';
import { createYaraEngine, DEFAULT_RULES_DIR } from '../engines/yara/index.js';
import type { MimeLimits } from '../mime/index.js';

export interface Runtime {
  readonly config: Config;
  readonly engines: readonly Engine[];
  readonly mimeLimits: MimeLimits;
  close(): Promise<void>;
}

export function createEngine(e: EngineConfig): Engine {
  switch (e.type) {
    case 'clamd':
      return createClamdEngine({
        servers: [...e.servers],
        connectTimeoutMs: e.connect_timeout * 1000,
        scanTimeoutMs: e.scan_timeout * 1000,
        chunkBytes: e.chunk_size,
        maxStreamBytes: e.max_stream_size,
      });
    case 'yara':
      return createYaraEngine({
        rulesDir: e.rules || DEFAULT_RULES_DIR,
        maxScanBytes: e.max_scan_size,
        scanTimeoutMs: e.scan_timeout * 1000,
      });
  }
}

export function mimeLimitsOf(c: Config): MimeLimits {
  return {
    maxDepth: c.mime.max_depth,
    maxParts: c.mime.max_parts,
    maxHeaderBytes: c.mime.max_header_size,
    maxDecodedBytes: c.mime.max_decoded_size,
    memoryPartBytes: c.mime.memory_part_size,
    maxExpansionRatio: c.mime.max_expansion_ratio,
    allowPartial: c.mime.allow_partial,
  };
}

/** Build engines (may throw: bad rules, bad server address) and make sure tmpdir exists. */
export function createRuntime(config: Config, opts: { makeTmpdir: boolean } = { makeTmpdir: true }): Runtime {
  const engines: Engine[] = [];
  try {
    for (const e of config.engine) engines.push(createEngine(e));
  } catch (err) {
    for (const e of engines) void e.close();
    throw err;
  }
  if (opts.makeTmpdir) mkdirSync(config.tmpdir, { recursive: true, mode: 0o700 });
  return {
    config,
    engines,
    mimeLimits: mimeLimitsOf(config),
    close: async () => {
      await Promise.all(engines.map((e) => e.close().catch(() => undefined)));
    },
  };
}
