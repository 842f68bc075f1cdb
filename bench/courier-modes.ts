/**
 * The ways the Courier section runs Courier: alone (no global filter), avfilter in each mode of
 * avfilter-modes.ts (the clamd engine as shipped, its variants, the embedded engine), and the
 * peer, Courier::Filter + ClamAVd (Debian courier-filter-perl with
 * ../shared/bench-peers/courier-filter-perl.conf, which redefines ClamAV::Client::scan_stream
 * with INSTREAM). Both filters reject viruses with a 5xx so every verdict shows in the SMTP
 * reply.
 *
 * avfilter is a black box here: courierfilter starts dist/bin/avfilter.js as
 * /etc/courier/filters/active/avfilter with /etc/courier/filters/avfilter.toml (written through
 * the harness, restored when Courier stops); its processes are the pid in its pid_file and all
 * that pid's descendants. The peer's process is the one running its active/ link.
 *
 * Fails with HarnessError from the Courier harness, or BenchSetupError (code BENCH_PEER_MISSING,
 * BENCH_FILTER_PID, BENCH_SOCKETS) naming what to install, what did not appear, or which filter
 * sockets are there that should not be.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { type CourierHarness, repoRoot } from '../test/helpers/courier.js';
import { avfilterProgram } from '../test/helpers/courier-app.js';
import { ACTIVE_DIR } from '../test/helpers/courier-etc.js';
import { processesWithArg } from '../test/helpers/courier-proc.js';
import { SOCKET_DIRS } from '../test/helpers/courier-setup.js';
import type { RunningClamd } from '../test/helpers/clamd.js';
import type { AvfilterMode } from './avfilter-modes.js';
import { startScraper } from './metrics-scraper.js';
import { pidFromFile } from './proc.js';

/** One way of running Courier: `av` is set for the avfilter modes. */
export interface CourierMode {
  id: string;
  label: string;
  kind: 'alone' | 'avfilter' | 'peer';
  av?: AvfilterMode;
}

export const ALONE: CourierMode = { id: 'alone', label: 'Courier alone', kind: 'alone' };
export const PEER: CourierMode = { id: 'peer', label: 'Courier::Filter + ClamAVd (peer)', kind: 'peer' };

/** alone, then every avfilter mode, then the peer: the order of a round. */
export function courierModes(av: readonly AvfilterMode[]): CourierMode[] {
  return [ALONE, ...av.map((m): CourierMode => ({ id: m.id, label: m.label, kind: 'avfilter', av: m })), PEER];
}

export class BenchSetupError extends Error {
  constructor(readonly code: 'BENCH_PEER_MISSING' | 'BENCH_FILTER_PID' | 'BENCH_SOCKETS', message: string) {
    super(message);
    this.name = 'BenchSetupError';
  }
}

const AVFILTER_CONFIG = '/etc/courier/filters/avfilter.toml';
const PEER_NAME = 'courier-filter-perl';
const PEER_PROGRAM = '/usr/lib/courier/filters/courier-filter-perl';
const PEER_CONFIG = '/etc/courier/filters/courier-filter-perl.conf';
const PEER_PACKAGES = ['courier-filter-perl', 'libclamav-client-perl', 'libmime-tools-perl'];
// The pid file is written before avfilter closes fd 3, so it is there when the socket is; a
// little room for a loaded machine.
const PID_WAIT_MS = 10_000;

export interface ActiveMode {
  id: string;
  /** the socket names expected in allfilters/ while this mode runs */
  sockets: readonly string[];
  /** infected mail must get 5xx */
  rejectInfected: boolean;
  /** roots of the filter's process tree now (empty for Courier alone) */
  filterPids(): number[];
  /** removes the filter (waits until courierfilter stopped it) */
  remove(): Promise<void>;
}

/** The peer's config as shipped in ../shared/bench-peers (or $AVFILTER_BENCH_PEER_CONF). */
export function peerConfigSource(): string {
  return process.env.AVFILTER_BENCH_PEER_CONF ?? path.join(repoRoot(), '..', 'shared', 'bench-peers', 'courier-filter-perl.conf');
}

/** Why the peer cannot run here (missing packages or config), or undefined when it can. */
export function peerMissing(): string | undefined {
  const missing = PEER_PACKAGES.filter((p) => {
    try {
      return !execFileSync('dpkg-query', ['-W', '-f=${Status}', p], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).includes('install ok installed');
    } catch {
      return true;
    }
  });
  if (missing.length) {
    return `the peer needs Debian packages ${missing.join(' ')}: apt-get install -y ${PEER_PACKAGES.join(' ')} && rm -f ${path.join(ACTIVE_DIR, PEER_NAME)} (installing the package activates its filter; the benchmark starts it itself)`;
  }
  if (!fs.existsSync(peerConfigSource())) return `the peer's config ${peerConfigSource()} is missing (set AVFILTER_BENCH_PEER_CONF to its path)`;
  return undefined;
}

function toml(s: string): string {
  return JSON.stringify(s);
}

async function waitPid(file: string): Promise<number> {
  const deadline = Date.now() + PID_WAIT_MS;
  for (;;) {
    const pid = pidFromFile(file);
    if (pid !== undefined) return pid;
    if (Date.now() > deadline) throw new BenchSetupError('BENCH_FILTER_PID', `no live pid in ${file} ${PID_WAIT_MS} ms after avfilter's socket appeared`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function installAvfilter(h: CourierHarness, av: AvfilterMode, clamd: RunningClamd): Promise<ActiveMode> {
  const dir = h.courierDir('avfilter-bench', 0o700);
  const pidFile = `${dir}/avfilter.pid`;
  fs.rmSync(pidFile, { force: true });
  const metricsSock = `${dir}/metrics.sock`;
  h.writeEtcFile(AVFILTER_CONFIG, [
    ...(av.metrics ? [`metrics = ${toml(`unix:${metricsSock}`)}`] : []),
    `pid_file = ${toml(pidFile)}`,
    `pipe = ${toml(`${dir}/avfilter_sig.pipe`)}`,
    `tmpdir = ${toml(`${dir}/tmp`)}`,
    `quarantine_dir = ${toml(`${dir}/quarantine`)}`,
    '',
    ...av.engines(clamd.socketPath),
    '[action]',
    'infected = "reject"',
    '',
    ...(av.tables ?? []),
  ].join('\n'));
  await h.installFilter('avfilter', await avfilterProgram(h, av.root));
  await waitPid(pidFile);
  const scraper = av.metrics ? startScraper(metricsSock) : undefined;
  return {
    id: av.id,
    sockets: ['avfilter'],
    rejectInfected: true,
    filterPids: () => {
      const pid = pidFromFile(pidFile);
      return pid === undefined ? [] : [pid];
    },
    remove: async () => {
      if (scraper !== undefined) {
        const r = await scraper.stop();
        process.stderr.write(`bench: ${av.id}: ${r.ok} scrapes of /metrics answered, ${r.failed} not\n`);
      }
      await h.removeFilter('avfilter');
    },
  };
}

async function installPeer(h: CourierHarness, clamd: RunningClamd): Promise<ActiveMode> {
  const why = peerMissing();
  if (why) throw new BenchSetupError('BENCH_PEER_MISSING', why);
  const conf = fs.readFileSync(peerConfigSource(), 'utf8').replace(/__CLAMD_HOST__/g, '127.0.0.1').replace(/__CLAMD_PORT__/g, String(clamd.tcpPort));
  h.writeEtcFile(PEER_CONFIG, conf, 0o640);
  await h.installFilter(PEER_NAME, PEER_PROGRAM);
  const arg = path.join(ACTIVE_DIR, PEER_NAME);
  return {
    id: 'peer',
    sockets: [PEER_NAME],
    rejectInfected: true,
    filterPids: () => processesWithArg(arg),
    remove: () => h.removeFilter(PEER_NAME),
  };
}

/** Installs the mode's filter (none for `alone`) and returns how to observe and remove it. */
export async function installMode(mode: CourierMode, h: CourierHarness, clamd: RunningClamd): Promise<ActiveMode> {
  switch (mode.kind) {
    case 'alone':
      return { id: mode.id, sockets: [], rejectInfected: false, filterPids: () => [], remove: async () => undefined };
    case 'avfilter':
      return installAvfilter(h, mode.av!, clamd);
    case 'peer':
      return installPeer(h, clamd);
  }
}

/**
 * Throws unless the filter sockets Courier will use are exactly the mode's: a leftover socket
 * (a filter courierfilter did not stop, a lost HUP) would answer every message 432 or filter
 * mail the mode should not.
 */
export function assertSockets(mode: ActiveMode): void {
  const found = Object.values(SOCKET_DIRS).flatMap((d) => fs.readdirSync(d).filter((n) => !n.startsWith('.')).map((n) => (d === SOCKET_DIRS.allfilters ? n : `filters/${n}`)));
  if (found.sort().join(',') !== [...mode.sockets].sort().join(',')) {
    throw new BenchSetupError('BENCH_SOCKETS', `mode ${mode.id} expects filter sockets [${mode.sockets.join(', ')}] but Courier has [${found.join(', ')}]`);
  }
}
