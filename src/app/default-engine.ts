/**
 * The default engine, for a config with no [[engine]]: the distribution's clamd when one answers
 * at its socket (it has real signatures, kept fresh by freshclam), else the embedded engine with
 * the rules shipped with avfilter.
 *
 * Owns: the decision, made by probing (PING, VERSION) the LocalSocket of clamd.conf
 * (local-socket.ts). Made by whoever reads the config - the daemon's master at start and at
 * every reload, the command-line modes - and then carried with the config text
 * (parseOptionsOf), never made again by the workers.
 * Inputs: the config text. Outputs: a Config whose engine_origin says what was chosen.
 * Fails with the parser's ConfigError only; a clamd that does not answer is not an error.
 */
import { parseConfig, readConfigText, type Config, type ConfigText } from '../config/load.js';
import { clamdLocalSocket, CLAMD_SOCKET_FALLBACK } from '../engines/clamd/local-socket.js';
import { probeClamd } from '../engines/clamd/version.js';

/** A local clamd answers PING in microseconds; a second covers a loaded host, not a hung one. */
export const DEFAULT_PROBE_TIMEOUT_MS = 1000;

export interface DefaultEngineOptions {
  readonly env?: NodeJS.ProcessEnv;
  /** The socket tried when clamd.conf names none (tests point it elsewhere). */
  readonly fallbackSocket?: string;
  readonly probeTimeoutMs?: number;
}

export interface FoundClamd {
  readonly path: string;
  /** Where the path came from: "CONF:LocalSocket" or "fallback". */
  readonly from: string;
  readonly version: string;
}

/** The distribution's clamd, when it answers PING and VERSION; else undefined. */
export async function findDefaultClamd(opts: DefaultEngineOptions = {}): Promise<FoundClamd | undefined> {
  const sock = clamdLocalSocket(opts.env ?? process.env, opts.fallbackSocket ?? CLAMD_SOCKET_FALLBACK);
  const r = await probeClamd({ kind: 'unix', path: sock.path }, opts.probeTimeoutMs ?? DEFAULT_PROBE_TIMEOUT_MS);
  return r.ok ? { path: sock.path, from: sock.from, version: r.version } : undefined;
}

/** parseConfig, with the default engine decided when the text names none. */
export async function resolveConfig(text: ConfigText, opts: DefaultEngineOptions = {}): Promise<Config> {
  const cfg = parseConfig(text.text, text.source);
  if (cfg.engine_origin !== 'default-embedded') return cfg;
  const clamd = await findDefaultClamd(opts);
  if (!clamd) return cfg;
  return parseConfig(text.text, text.source, { defaultClamdSocket: clamd.path });
}

/** loadConfig with the default engine decided (the command-line modes). */
export async function loadResolvedConfig(explicit?: string, env: NodeJS.ProcessEnv = process.env): Promise<Config> {
  return resolveConfig(readConfigText(explicit, env), { env });
}
