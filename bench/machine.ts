/**
 * The machine a report was made on: cores, CPU model, memory, kernel, load, and the versions of
 * node, clamd, Courier and the peer. Reads os and asks the installed programs; a program that is
 * missing shows as "not installed". calibration() measures two costs that explain most of the
 * difference between machines: a fixed piece of JavaScript, and fork+exec of /bin/true (Courier
 * starts about six processes per message, so its CPU per message follows the second).
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import os from 'node:os';
import { CLK_TCK } from './proc.js';

function ask(cmd: string, args: string[]): string {
  try {
    return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'], timeout: 10_000 }).trim();
  } catch {
    return 'not installed';
  }
}

function debVersion(pkg: string): string {
  const v = ask('dpkg-query', ['-W', '-f=${Version}', pkg]);
  return v || 'not installed';
}

export function loadAverage(): string {
  return os.loadavg().map((x) => x.toFixed(2)).join(' ');
}

export function machineLines(): string[] {
  const cpus = os.cpus();
  return [
    `- cores: ${cpus.length}, ${cpus[0]?.model ?? 'unknown model'}`,
    `- memory: ${(os.totalmem() / 2 ** 30).toFixed(1)} GiB`,
    `- kernel: ${os.type()} ${os.release()} (${os.arch()})`,
    `- OS: ${ask('sh', ['-c', '. /etc/os-release && echo "$PRETTY_NAME"'])}`,
    `- node ${process.version}; ${ask('clamd', ['--version']).split('/')[0]}; courier-mta ${debVersion('courier-mta')}; ` +
      `courier-filter-perl ${debVersion('courier-filter-perl')}; libclamav-client-perl ${debVersion('libclamav-client-perl')}`,
  ];
}

function reapedChildMs(): number {
  const f = readFileSync('/proc/self/stat', 'latin1');
  const rest = f.slice(f.lastIndexOf(')') + 2).split(' ');
  return ((Number(rest[13]) + Number(rest[14])) * 1000) / CLK_TCK;
}

/** "JS loop X ms; fork+exec of /bin/true Y ms CPU each" (medians of `reps`). */
export function calibration(reps = 3): string {
  const spin: number[] = [];
  const exec: number[] = [];
  for (let k = 0; k < reps; k++) {
    const c0 = process.cpuUsage();
    let x = 0;
    for (let i = 0; i < 1e8; i++) x += i % 7;
    const c = process.cpuUsage(c0);
    spin.push((c.user + c.system) / 1000 + (x < 0 ? 1 : 0));
    const before = reapedChildMs();
    spawnSync('/bin/sh', ['-c', 'i=0; while [ $i -lt 100 ]; do /bin/true; i=$((i+1)); done']);
    exec.push((reapedChildMs() - before) / 100);
  }
  const med = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
  return `JavaScript loop of 1e8 steps: ${med(spin).toFixed(0)} ms CPU; fork+exec of /bin/true: ${med(exec).toFixed(2)} ms CPU each (from a shell loop)`;
}
