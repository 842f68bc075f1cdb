/**
 * The runtime: a config plus everything built from it that a request needs (engines, MIME
 * limits, the checked tmpdir and spool directories). This is the one validation path: a worker
 * builds it at start and on every reload, `avfilter --config` builds it (and closes it) to
 * refuse exactly what the daemon would refuse, and the command-line modes scan with it.
 *
 * Inputs: a parsed Config (config/load.ts). Outputs: a Runtime, or a ConfigError whose message
 * names the file, the line and the key (an engine that cannot be built is reported at its
 * [[engine]] table: rules that do not compile, an unloadable binding).
 */
import { lstatSync, mkdirSync, realpathSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { ConfigError, whereIs, type Config, type EngineConfig } from '../config/load.js';
import type { Engine, ServerHealth } from '../engines/engine.js';
import { createClamdEngine } from '../engines/clamd/index.js';
import { createCommandEngine } from '../engines/command/index.js';
import { createIcapEngine } from '../engines/icap/index.js';
import { createYaraEngine, DEFAULT_RULES_DIR } from '../engines/yara/index.js';
import { MemoryPool, type MimeLimits } from '../mime/index.js';
import type { ScanDeps, ScanObserver } from '../scan/scan-message.js';
import { cachedEngine, MemoryStore, type CacheCounters, type VerdictStore } from '../scan/verdict-cache.js';
import { failoverEngines } from '../scan/engine-failover.js';
import type { UnpackOptions } from '../unpack/stage.js';
import { createUnpackers } from '../unpack/readers.js';
import { compileSkipSection, type Skip } from '../policy/skip.js';
import { checkTemplate, LINE_MACROS } from '../policy/macros.js';
import { noticeTemplateProblem } from '../policy/notice-template.js';
import { compileBanned, type BannedCheck } from '../policy/banned.js';
import { NetworkError } from '../policy/networks.js';
import { processBlocks, type ProcessBlocks } from '../policy/ip-blocks.js';

export interface Runtime {
  readonly config: Config;
  /** What scans: the configured engines, behind the verdict cache and engine_mode's composition. */
  readonly engines: readonly Engine[];
  /** The verdict cache's counts, when there is a cache. */
  readonly cache?: CacheCounters | undefined;
  readonly mimeLimits: MimeLimits;
  /** spool_dirs resolved through symlinks, for the request path checks. */
  readonly spoolDirs: readonly string[];
  /** The container stage, when [unpack] is enabled. */
  readonly unpack?: UnpackOptions | undefined;
  /** Told every engine result and its time (the worker's counters, worker/counted-engines.ts). */
  readonly observe?: ScanObserver | undefined;
  /** [skip], compiled; undefined when it skips nothing (the default). */
  readonly skip?: Skip | undefined;
  /** [banned], compiled; undefined when it bans nothing (the default). */
  readonly banned?: BannedCheck | undefined;
  /** The client IPs blocked after a virus (action.block_ip_seconds): this process's copy. */
  readonly blocks: ProcessBlocks;
  /** The servers of every engine that has some (clamd), as this process sees them now. */
  health?(): ServerHealth[];
  /** Its readers' versions (`--config -v`); undefined when the stage is off. */
  unpackVersion?(): Promise<string>;
  close(): Promise<void>;
}

/** What scanning a message needs from the runtime. */
export function scanDepsOf(rt: Runtime): ScanDeps {
  return { engines: rt.engines, mimeLimits: rt.mimeLimits, tmpdir: rt.config.tmpdir, unpack: rt.unpack, observe: rt.observe, banned: rt.banned };
}

export interface RuntimeOptions {
  /** Create tmpdir when missing (the daemon and the scanning modes; not --config). */
  readonly makeTmpdir: boolean;
  /** The daemon also insists that tmpdir belongs to the user it runs as. */
  readonly checkOwner?: boolean;
  /** Worker processes sharing the cores: each engine's threads are sized for its share. */
  readonly processes?: number;
  /** An engine's own event (a clamd server down or back), logged at warning severity. */
  readonly engineEvent?: EngineEventSink | undefined;
  /** No verdict cache (`--config`: nothing is scanned, no connection to a cache server). */
  readonly noCache?: boolean | undefined;
  /** A worker: how a block it sets reaches the master (and from there every worker). */
  readonly shareBlock?: ((ip: string, until: number) => void) | undefined;
}

/** How long a cache lookup may take before the item is scanned instead. */
const CACHE_LOOKUP_MS = 100;

function cacheStore(config: Config, opts: RuntimeOptions): VerdictStore | undefined {
  if (config.cache === '' || opts.noCache) return undefined;
  if (config.cache === 'memory') return new MemoryStore(config.cache_size);
  return lazyRedisStore(config.cache, (reason) => opts.engineEvent?.('cache-error', { reason }));
}

/**
 * The Redis store, its client loaded only when a config names Redis: loading it costs every
 * worker start and every -t run a tenth of a second of CPU. Lookups before it is connected miss.
 */
function lazyRedisStore(url: string, onError: (reason: string) => void): VerdictStore {
  let store: VerdictStore | undefined;
  const loading = import('../scan/redis-store.js').then(
    (m) => { store = m.redisStore({ url, onError }); },
    (err: unknown) => onError(`the Redis client could not be loaded: ${err instanceof Error ? err.message : String(err)}`),
  );
  return {
    get: async (key) => (store ? store.get(key) : undefined),
    set: (key, value, ttl) => store?.set(key, value, ttl),
    close: async () => {
      await loading;
      await store?.close();
    },
  };
}

/** Events registered in ops/events.ts (an unregistered one does not compile). */
export type EngineEventSink = (event: 'clamd-down' | 'clamd-up' | 'cache-error', fields: Record<string, string | number>) => void;

/** Seconds as written in the config → whole milliseconds (1.005 s is 1005 ms, never refused). */
export function ms(seconds: number): number {
  return Math.max(1, Math.round(seconds * 1000));
}

/** `tmpdir`: where engines that hand items over as files write them (the config's tmpdir). */
export function createEngine(e: EngineConfig, processes = 1, engineEvent?: EngineEventSink, tmpdir = '/var/lib/avfilter/tmp'): Engine {
  switch (e.type) {
    case 'clamd':
      return createClamdEngine({
        servers: [...e.servers],
        // the limit is the daemon's: each worker process takes its share
        maxScansPerServer: Math.max(1, Math.floor(e.max_scans_per_server / Math.max(1, processes))),
        onEvent: engineEvent && ((ev) => engineEvent(ev.event, ev.event === 'clamd-down'
          ? { server: ev.server, code: ev.code, reason: ev.reason }
          : { server: ev.server, down_ms: ev.downMs })),
        connectTimeoutMs: ms(e.connect_timeout),
        scanTimeoutMs: ms(e.scan_timeout),
        chunkBytes: e.chunk_size,
        maxStreamBytes: e.max_stream_size,
        rawMessage: e.raw_message,
      });
    case 'yara':
      return createYaraEngine({
        rulesDir: e.rules || DEFAULT_RULES_DIR,
        maxScanBytes: e.max_scan_size,
        scanTimeoutMs: ms(e.scan_timeout),
        scanThreads: Math.max(1, Math.ceil(availableParallelism() / Math.max(1, processes))),
      });
    case 'icap':
      return createIcapEngine({
        url: e.url,
        connectTimeoutMs: ms(e.connect_timeout),
        scanTimeoutMs: ms(e.scan_timeout),
        maxBytes: e.max_size,
        maxConnections: e.max_connections,
        processes,
      });
    case 'command':
      return createCommandEngine({
        command: e.command,
        versionCommand: e.version_command,
        scanTimeoutMs: ms(e.scan_timeout),
        maxProcesses: e.max_processes,
        maxBytes: e.max_size,
        cleanExit: e.clean_exit,
        infectedExit: e.infected_exit,
        namePattern: e.name_pattern,
        tmpdir,
      });
  }
}

export function mimeLimitsOf(c: Config, memoryPool?: MemoryPool): MimeLimits {
  return {
    memoryPool,
    maxDepth: c.mime.max_depth,
    maxParts: c.mime.max_parts,
    maxHeaderBytes: c.mime.max_header_size,
    maxDecodedBytes: c.mime.max_decoded_size,
    memoryPartBytes: c.mime.memory_part_size,
    maxExpansionRatio: c.mime.max_expansion_ratio,
    allowPartial: c.mime.allow_partial,
  };
}

/**
 * The templates an admin writes: every [replies] text uses only the reply macros, and the
 * notice template file reads and parses (an unknown macro is a config error now, not a
 * surprise when the first virus comes).
 */
function checkTemplates(config: Config): void {
  for (const [key, text] of Object.entries(config.replies)) {
    const problem = checkTemplate(text, LINE_MACROS);
    if (problem !== undefined) throw new ConfigError('ECONFIG_KEY', `${whereIs(config, `replies.${key}`)}: "replies.${key}" ${problem}`);
  }
  const notice = noticeTemplateProblem(config.notify.template);
  if (notice !== undefined) throw new ConfigError('ECONFIG_KEY', `${whereIs(config, 'notify.template')}: "notify.template": ${notice}`);
}

/** Build engines and check directories. Throws ConfigError (file:line: key: why). */
export function createRuntime(config: Config, opts: RuntimeOptions = { makeTmpdir: true }): Runtime {
  checkTmpdir(config, opts);
  checkTemplates(config);
  let skip: Skip | undefined;
  try {
    skip = compileSkipSection(config.skip);
  } catch (err) {
    if (!(err instanceof NetworkError)) throw err;
    throw new ConfigError('ECONFIG_NETWORK', `${whereIs(config, 'skip.networks')}: skip.networks: ${err.message}`);
  }
  const banned = compileBanned(config.banned);
  processBlocks.configure(config.action.block_ip_max, opts.shareBlock);
  if (config.action.block_ip_seconds === 0) processBlocks.clear();
  const spoolDirs = config.spool_dirs.map((d) => {
    try {
      return realpathSync(d);
    } catch {
      // Not there (yet): compare with the path as written; a request inside it cannot exist.
      return d;
    }
  });
  const engines: Engine[] = [];
  try {
    config.engine.forEach((e, i) => {
      try {
        engines.push(createEngine(e, opts.processes, opts.engineEvent, config.tmpdir));
      } catch (err) {
        const why = err instanceof Error ? err.message : String(err);
        throw new ConfigError('ECONFIG_ENGINE', `${whereIs(config, `engine[${i}].type`)}: engine[${i}] (type = "${e.type}"): ${why}`);
      }
    });
  } catch (err) {
    for (const e of engines) void e.close();
    throw err;
  }
  // what scans: the cache in front of each engine, then the engines as alternatives or all at once
  const store = cacheStore(config, opts);
  const counters: CacheCounters | undefined = store && { hits: 0, misses: 0, skipped: 0 };
  const cached = store ? engines.map((e) => cachedEngine(e, { store, ttlSeconds: config.cache_ttl, lookupMs: CACHE_LOOKUP_MS, counters })) : engines;
  const scanning = config.engine_mode === 'failover' ? [failoverEngines(cached)] : cached;
  // the unpackers (a thread pool for archives, started on first use)
  const unpackers = config.unpack.enabled ? createUnpackers() : undefined;
  const u = config.unpack;
  return {
    config,
    engines: scanning,
    cache: counters,
    // from the engines themselves: the cache and failover wrappers do not pass health on
    health: () => engines.flatMap((e) => e.health?.() ?? []),
    // one pool per runtime: a worker process builds one runtime per generation
    mimeLimits: mimeLimitsOf(config, new MemoryPool(config.memory_budget)),
    spoolDirs,
    skip,
    banned,
    blocks: processBlocks,
    unpack: unpackers && {
      maxDepth: u.max_depth, maxMembers: u.max_members, maxBytes: u.max_size, maxRatio: u.max_ratio, maxTimeMs: ms(u.max_time),
      archives: unpackers.archives, documents: unpackers.documents,
    },
    ...(unpackers !== undefined ? { unpackVersion: () => unpackers.version() } : {}),
    close: async () => {
      await Promise.all([...engines.map((e) => e.close().catch(() => undefined)), unpackers?.close().catch(() => undefined), store?.close().catch(() => undefined)]);
    },
  };
}

/**
 * tmpdir holds decoded attachments: private to avfilter. It must be a real directory (not a
 * symlink another user could point elsewhere) with no group or other access; the daemon also
 * wants it owned by its own user. Missing: created 0700 (when allowed).
 */
function checkTmpdir(config: Config, opts: RuntimeOptions): void {
  const dir = config.tmpdir;
  const fail = (why: string): never => {
    throw new ConfigError('ECONFIG_TMPDIR', `${whereIs(config, 'tmpdir')}: tmpdir ${dir}: ${why}`);
  };
  let st;
  try {
    st = lstatSync(dir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') fail(`cannot be checked: ${(err as NodeJS.ErrnoException).code}`);
    if (!opts.makeTmpdir) return;
    try {
      mkdirSync(dir, { recursive: true, mode: 0o700 });
    } catch (e) {
      fail(`cannot be created: ${(e as NodeJS.ErrnoException).code}`);
    }
    return;
  }
  if (st.isSymbolicLink()) fail('is a symbolic link; name the real directory');
  if (!st.isDirectory()) fail('is not a directory');
  if ((st.mode & 0o077) !== 0) fail(`has mode ${(st.mode & 0o777).toString(8).padStart(4, '0')}; it must be 0700 (chmod 700 ${dir})`);
  if (opts.checkOwner && typeof process.geteuid === 'function' && st.uid !== process.geteuid()) {
    fail(`belongs to uid ${st.uid}, not to this user (uid ${process.geteuid()}); chown it to the user avfilter runs as`);
  }
}
