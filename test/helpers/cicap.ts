/**
 * Starts a REAL c-icap (Debian packages c-icap and libc-icap-mod-virus-scan) for tests: the
 * virus_scan service with its clamd_mod engine pointed at a test clamd (helpers/clamd.ts).
 *
 * Owns: a private temp dir (c-icap.conf, pid file, commands socket, logs, temp files), a free
 * loopback port, the c-icap process (foreground: -N -D) and its removal.
 * Services: `avscan` (Debian's alias: allow204=on, sizelimit=off, mode=simple) and `srv_clamav`
 * (the plain service, which streams the item back while it scans).
 * Fails with: an Error saying c-icap or the virus_scan module is missing (CI must fail, not
 * skip), or that it did not answer OPTIONS in time, with its log.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile, chmod } from 'node:fs/promises';
import { connect, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const CICAP_BIN = '/usr/bin/c-icap';
export const CICAP_MODULES = '/usr/lib/x86_64-linux-gnu/c_icap';
const START_TIMEOUT_MS = 30_000;

export interface RunningCicap {
  readonly port: number;
  readonly dir: string;
  /** icap://127.0.0.1:PORT/SERVICE */
  url(service?: string): string;
  stop(): Promise<void>;
}

const live = new Set<ChildProcess>();

export async function startCicap(clamdSocket: string): Promise<RunningCicap> {
  if (!existsSync(CICAP_BIN)) throw new Error(`${CICAP_BIN} is missing: install the Debian package c-icap`);
  if (!existsSync(join(CICAP_MODULES, 'virus_scan.so'))) throw new Error('virus_scan.so is missing: install the Debian package libc-icap-mod-virus-scan');
  const dir = await mkdtemp(join(tmpdir(), 'avf-cicap-'));
  await chmod(dir, 0o755);
  const port = await freePort();
  const conf = join(dir, 'c-icap.conf');
  await writeFile(conf, [
    `PidFile ${join(dir, 'c-icap.pid')}`,
    `CommandsSocket ${join(dir, 'c-icap.ctl')}`,
    'Timeout 60',
    'StartServers 1',
    'MaxServers 2',
    'MinSpareThreads 2',
    'MaxSpareThreads 8',
    'ThreadsPerChild 8',
    `Port 127.0.0.1:${port}`,
    'ServerName avfilter-test',
    `TmpDir ${dir}`,
    'MaxMemObject 131072',
    'DebugLevel 1',
    `ModulesDir ${CICAP_MODULES}`,
    `ServicesDir ${CICAP_MODULES}`,
    'TemplateDir /usr/share/c_icap/templates/',
    'TemplateDefaultLanguage en',
    'LoadMagicFile /etc/c-icap/c-icap.magic',
    `ServerLog ${join(dir, 'server.log')}`,
    `AccessLog ${join(dir, 'access.log')}`,
    'Module common clamd_mod.so',
    `clamd_mod.ClamdSocket ${clamdSocket}`,
    'Service antivirus_module virus_scan.so',
    'ServiceAlias srv_clamav virus_scan',
    'ServiceAlias avscan virus_scan?allow204=on&sizelimit=off&mode=simple',
    // every type, and objects as large as the tests send: c-icap passes the others unscanned
    'virus_scan.ScanFileTypes TEXT DATA EXECUTABLE ARCHIVE GRAPHICS STREAM DOCUMENT',
    'virus_scan.MaxObjectSize 100M',
    '',
  ].join('\n'));
  const child = spawn(CICAP_BIN, ['-N', '-D', '-f', conf], { stdio: ['ignore', 'pipe', 'pipe'] });
  live.add(child);
  let output = '';
  child.stdout!.on('data', (d: Buffer) => { output += d.toString(); });
  child.stderr!.on('data', (d: Buffer) => { output += d.toString(); });
  installExitHook();
  const stop = async (): Promise<void> => {
    if (child.exitCode === null && child.signalCode === null) {
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      const t = setTimeout(() => child.kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(t);
    }
    live.delete(child);
    await rm(dir, { recursive: true, force: true });
  };
  const deadline = Date.now() + START_TIMEOUT_MS;
  for (;;) {
    if (child.exitCode !== null || child.signalCode !== null) {
      const log = readLog(dir);
      await stop();
      throw new Error(`c-icap exited during start-up: ${output}\n${log}`);
    }
    if (await answersOptions(port)) break;
    if (Date.now() > deadline) {
      const log = readLog(dir);
      await stop();
      throw new Error(`c-icap did not answer OPTIONS within ${START_TIMEOUT_MS} ms: ${output}\n${log}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  return { port, dir, url: (service = 'avscan') => `icap://127.0.0.1:${port}/${service}`, stop };
}

function readLog(dir: string): string {
  try {
    return readFileSync(join(dir, 'server.log'), 'utf8').split('\n').slice(-20).join('\n');
  } catch {
    return '';
  }
}

function answersOptions(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect(port, '127.0.0.1');
    let got = '';
    const done = (v: boolean): void => { s.destroy(); resolve(v); };
    s.setTimeout(2000, () => done(false));
    s.on('error', () => done(false));
    s.on('data', (d: Buffer) => {
      got += d.toString('latin1');
      if (got.includes('\r\n\r\n')) done(got.startsWith('ICAP/1.0 200'));
    });
    s.on('connect', () => s.write(`OPTIONS icap://127.0.0.1:${port}/avscan ICAP/1.0\r\nHost: 127.0.0.1\r\nEncapsulated: null-body=0\r\n\r\n`));
  });
}

/** A port free on 127.0.0.1, released again for c-icap. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const port = (srv.address() as { port: number }).port;
      srv.close(() => resolve(port));
    });
  });
}

let hooked = false;
function installExitHook(): void {
  if (hooked) return;
  hooked = true;
  process.on('exit', () => {
    for (const c of live) {
      try { c.kill('SIGKILL'); } catch { /* gone */ }
    }
  });
}
