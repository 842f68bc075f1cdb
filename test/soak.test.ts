/**
 * Fault soak: thousands of messages at 16 concurrent
 * connections to the daemon's socket while faults are injected at seeded random moments
 * (helpers/soak-faults.ts: the real clamd killed, stopped, slowed, answering garbage, closing
 * mid-stream, hanging, refusing over its stream limit; a worker killed; tmpdir full or
 * unwritable; control files read-only; reloads and reload storms).
 *
 * The daemon runs as Courier's user (root ignores file modes, and the daemon refuses root
 * anyway), its tmpdir is a small tmpfs of its own, its only engine is a real clamd reached
 * through a fault proxy. Asserted: no infected message ever gets a 2xx unless every recipient
 * was dropped; no clean one is rejected; no control file holds half a record or a record
 * twice; every request gets exactly one reply or a closed connection, never a hang; a probe
 * sent every second is always answered (or, held by a worker the soak killed, closed at that
 * moment, as every connection of a dead worker is); afterwards the descriptors and memory of the master
 * and the workers and the files in tmpdir are back at their baseline, and after shutdown no
 * worker is left.
 *
 * Size: AVFILTER_SOAK_MESSAGES (default 2000; the soak also runs until every fault kind came
 * up at least once) or AVFILTER_SOAK_SECONDS (run that long instead); AVFILTER_SOAK_SEED
 * (default 1); AVFILTER_SOAK_REPORT=FILE writes the summary as JSON.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, chownSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { startClamd } from './helpers/clamd.js';
import { startClamdProxy } from './helpers/clamd-proxy.js';
import { exists, lookupUser, waitFor, type User } from './helpers/avfilter-proc.js';
import { daemonEnv, stopDaemon, waitForWorkers, workerPids } from './helpers/daemon-env.js';
import { exchange, readReply } from './helpers/exchange.js';
import { alive, entriesUnder, fdCount, fdTargets, rssBytes } from './helpers/proc-stats.js';
import { CLAMD_FAULTS, DAEMON_FAULTS, FaultInjector, mountTmpfs, unmount } from './helpers/soak-faults.js';
import { controlState, controlText, isInfected, judge, KINDS, messageMix, VIOLATIONS, type Kind, type Outcome } from './helpers/soak-mix.js';

const MESSAGES = Number(process.env.AVFILTER_SOAK_MESSAGES ?? 2000);
const SECONDS = process.env.AVFILTER_SOAK_SECONDS ? Number(process.env.AVFILTER_SOAK_SECONDS) : undefined;
const SEED = Number(process.env.AVFILTER_SOAK_SEED ?? 1);
const CONCURRENCY = 16;
const WORKERS = 2;
const REQUEST_TIMEOUT_S = 5;
/** The master answers for a worker this long past the deadline (master.ts BACKSTOP_MS). */
const BACKSTOP_S = 2;
/** A request unanswered this long is a hang: well above request_timeout + the backstop. */
const HANG_MS = (REQUEST_TIMEOUT_S + BACKSTOP_S + 8) * 1000;
const PROBE_EVERY_MS = 1000;
const TMPFS_BYTES = 16 * 1024 * 1024;
/** Messages before the baseline and after the faults, with exact verdicts expected. */
const CALM_MESSAGES = 64;
/** Tolerances for "back at the baseline". */
const FD_TOLERANCE = 2;
const RSS_TOLERANCE = (before: number): number => Math.max(before * 0.5, 24 * 1024 * 1024);

const MiB = (n: number | undefined): string => (n === undefined ? '?' : (n / 1048576).toFixed(1));

function config(proxy: string, infected: 'reject' | 'drop'): string {
  return [
    `workers = ${WORKERS}`, `max_connections = ${CONCURRENCY}`, `request_timeout = ${REQUEST_TIMEOUT_S}`,
    'request_read_timeout = 5', 'shutdown_timeout = 5',
    // small, so attachments are spilled to tmpdir and its faults bite
    '[mime]', 'memory_part_size = 8192',
    '[[engine]]', 'type = "clamd"', `servers = ["${proxy}"]`, 'connect_timeout = 1', 'scan_timeout = 1',
    '[action]', `infected = "${infected}"`,
  ].join('\n');
}

interface Snapshot {
  masterFds: number | undefined;
  masterRss: number | undefined;
  workers: Array<{ pid: number; fds: number | undefined; rss: number | undefined }>;
  tmpFiles: string[];
  masterFdTargets: string[];
}

function snapshot(master: number, tmpdir: string): Snapshot {
  return {
    masterFds: fdCount(master),
    masterRss: rssBytes(master),
    workers: workerPids(master).map((pid) => ({ pid, fds: fdCount(pid), rss: rssBytes(pid) })),
    tmpFiles: entriesUnder(tmpdir, ['.soak-filler']),
    masterFdTargets: fdTargets(master),
  };
}

test('fault soak: thousands of messages at 16 connections under random faults; no virus accepted, no hang, no interruption, back to baseline', { timeout: SECONDS ? (SECONDS + 600) * 1000 : 20 * 60_000 }, async (t) => {
  assert.equal(process.getuid?.(), 0, 'the soak mounts a tmpfs and runs the daemon as Courier\'s user: it needs root (CI runs as root)');
  const courier: User | undefined = lookupUser('courier');
  assert.ok(courier, 'the soak runs the daemon as user courier: install courier-mta (CI does)');

  const clamd = await startClamd();
  const env = daemonEnv('', 'avf-soak-', { owner: courier });
  const tmpdir = join(env.dir, 'work');
  mkdirSync(tmpdir, { mode: 0o700 });
  mountTmpfs(tmpdir, TMPFS_BYTES, courier);
  const unmountAtExit = (): void => unmount(tmpdir);
  process.on('exit', unmountAtExit);
  const proxy = await startClamdProxy(clamd.socketPath, { dir: env.dir });
  let infectedAction: 'reject' | 'drop' = 'reject';
  env.write(config(proxy.server, infectedAction));
  const d = await env.up();
  const master = d.child.pid!;
  const mix = messageMix(SEED);
  const seenWorkers = new Set<number>();
  const watchWorkers = setInterval(() => { for (const p of workerPids(master)) seenWorkers.add(p); }, 100);
  const controls = { readOnly: false };

  // ---- one message: write its files, send, read, judge, clean up
  const stats = {
    codes: new Map<string, number>(),
    outcomes: new Map<string, number>(),
    byKind: new Map<Kind, Map<string, number>>(KINDS.map((k) => [k, new Map()])),
    violations: [] as string[],
    hangs: [] as string[],
    connectErrors: [] as string[],
    closedNoReply: 0,
    readOnlyControls: 0,
    maxMs: 0,
  };
  const bump = (m: Map<string, number>, k: string): void => { m.set(k, (m.get(k) ?? 0) + 1); };
  const put = (p: string, body: string | Buffer, mode = 0o600): void => {
    writeFileSync(p, body, { mode });
    chownSync(p, courier.uid, courier.gid);
    chmodSync(p, mode);
  };

  const send = async (i: number, expectExact: boolean): Promise<Outcome | 'hang' | 'connect-error' | 'closed'> => {
    const m = mix.message(i);
    const dataPath = join(env.spool, `D${i}`);
    put(dataPath, m.data);
    const readOnly = controls.readOnly;
    if (readOnly) stats.readOnlyControls++;
    const ctl = m.controls.map((c, f) => {
      const p = join(env.spool, `C${i}.${f}`);
      put(p, c, readOnly ? 0o444 : 0o600);
      return p;
    });
    try {
      const ex = await exchange(env.sock, `${dataPath}\n${ctl.join('\n')}\n\n`, HANG_MS);
      stats.maxMs = Math.max(stats.maxMs, ex.ms);
      if (ex.end === 'hang') {
        stats.hangs.push(`message ${i} (${m.kind}): no reply and no close within ${HANG_MS} ms (faults: last ${faults.last})`);
        bump(stats.codes, 'hang');
        return 'hang';
      }
      if (ex.end === 'connect-error') {
        stats.connectErrors.push(`message ${i}: connect failed: ${ex.error}`);
        bump(stats.codes, 'connect-error');
        return 'connect-error';
      }
      const r = readReply(ex.bytes);
      if (r.kind === 'no-reply') {
        stats.closedNoReply++;
        bump(stats.codes, 'closed');
        return 'closed';
      }
      let outcome: Outcome;
      if (r.kind === 'bad') {
        outcome = 'bad-reply';
        stats.violations.push(`message ${i} (${m.kind}): not exactly one reply: ${r.why}: ${JSON.stringify(ex.bytes.toString('latin1').slice(0, 200))}`);
      } else {
        bump(stats.codes, String(r.code));
        const states = ctl.map((p, f) => controlState(m.controls[f]!, readFileSync(p, 'latin1')));
        outcome = judge(m.kind, r.code, r.text, states);
        if (VIOLATIONS.has(outcome)) stats.violations.push(`message ${i} (${m.kind}): ${outcome}: ${r.code} ${r.text}; control files: ${JSON.stringify(states)}`);
        if (expectExact && outcome !== (isInfected(m.kind) ? (infectedAction === 'reject' ? 'infected-rejected' : 'infected-dropped') : 'clean-accepted')) {
          stats.violations.push(`message ${i} (${m.kind}) without faults: ${outcome}: ${r.code} ${r.text}`);
        }
      }
      bump(stats.outcomes, outcome);
      bump(stats.byKind.get(m.kind)!, outcome === 'tempfail' ? `${r.kind === 'reply' ? r.code : '4xx'}` : outcome);
      return outcome;
    } finally {
      for (const p of [dataPath, ...ctl]) rmSync(p, { force: true });
    }
  };

  /** Messages numbered from `first` on, CONCURRENCY at a time, while `more(sent so far)` says so. */
  const traffic = async (first: number, more: (sent: number) => boolean, expectExact: boolean): Promise<number> => {
    let next = first;
    const loop = async (): Promise<void> => {
      while (more(next - first)) await send(next++, expectExact);
    };
    await Promise.all(Array.from({ length: CONCURRENCY }, loop));
    return next - first;
  };

  // ---- probes: one every second, each must be answered (any reply: 451 while clamd is down is an answer)
  const probes = { sent: 0, answered: 0, closedByKill: 0, codes: new Map<string, number>(), interruptions: [] as string[], maxMs: 0 };
  const probing = new Set<Promise<void>>();
  const probe = async (): Promise<void> => {
    const n = probes.sent++;
    const dataPath = join(env.spool, `P${n}`);
    const ctl = join(env.spool, `PC${n}`);
    put(dataPath, `Subject: probe ${n}\n\nprobe\n`);
    put(ctl, controlText(`probe.${n}`, 1));
    try {
      const started = Date.now();
      const ex = await exchange(env.sock, `${dataPath}\n${ctl}\n\n`, HANG_MS);
      probes.maxMs = Math.max(probes.maxMs, ex.ms);
      const r = ex.end === 'closed' ? readReply(ex.bytes) : undefined;
      // the worker holding it was killed meanwhile: its connections close unanswered, which
      // Courier answers with a temporary failure (the sender retries): no interruption
      const killed = ex.end === 'closed' && r?.kind !== 'reply' && faults.workerKills.some((k) => k >= started - 50 && k <= started + ex.ms + 50);
      if (r?.kind === 'reply') {
        probes.answered++;
        bump(probes.codes, String(r.code));
      } else if (killed) {
        probes.closedByKill++;
      } else {
        probes.interruptions.push(`probe ${n} at ${new Date().toISOString()}: ${ex.end}${ex.error ? ` ${ex.error}` : ''}${r ? ` (${r.kind})` : ''} after ${ex.ms} ms`);
      }
    } finally {
      rmSync(dataPath, { force: true });
      rmSync(ctl, { force: true });
    }
  };

  const faults = new FaultInjector({
    clamd, proxy, masterPid: master, tmpdir, controls,
    rewriteConfig: (rng) => {
      infectedAction = rng() < 0.5 ? 'reject' : 'drop';
      env.write(config(proxy.server, infectedAction));
    },
  }, SEED);

  const reloads = (): number => (d.stderr().match(/event=reloaded /g) ?? []).length;
  const settle = async (): Promise<void> => {
    // one generation of WORKERS, nothing retiring, then a moment of quiet
    await waitFor(() => workerPids(master).length === WORKERS, 30_000, `${WORKERS} workers`);
    await new Promise((r) => setTimeout(r, 1000));
  };

  let before: Snapshot | undefined;
  let after: Snapshot | undefined;
  let exitCode: number | null = null;
  let leftWorkers: number[] = [];
  let soakMs = 0;
  let sent = 0;
  let calmSent = 0;
  try {
    await waitForWorkers(master, WORKERS, 30_000);
    // ---- warm-up (exact verdicts: the setup finds what it should), then the baseline
    calmSent += await traffic(1_000_000_000, (n) => n < CALM_MESSAGES, true);
    await settle();
    before = snapshot(master, tmpdir);

    // ---- the soak
    const t0 = Date.now();
    const probeTimer = setInterval(() => {
      const p = probe().finally(() => probing.delete(p));
      probing.add(p);
    }, PROBE_EVERY_MS);
    faults.start();
    const more = SECONDS !== undefined
      ? () => Date.now() - t0 < SECONDS * 1000 && faults.failure === undefined
      : (n: number) => (n < MESSAGES || faults.rounds < 1) && faults.failure === undefined;
    try {
      sent = await traffic(0, more, false);
    } finally {
      soakMs = Date.now() - t0;
      clearInterval(probeTimer);
      await faults.stop();
      await Promise.all(probing);
    }

    // ---- recovery: back to a known config, exact verdicts again, then the measurement
    infectedAction = 'reject';
    env.write(config(proxy.server, infectedAction));
    const r0 = reloads();
    d.child.kill('SIGHUP');
    await waitFor(() => reloads() > r0, 60_000, `the final reload\n${d.stderr().slice(-3000)}`);
    await settle();
    calmSent += await traffic(2_000_000_000, (n) => n < CALM_MESSAGES, true);
    await settle();
    after = snapshot(master, tmpdir);
  } finally {
    clearInterval(watchWorkers);
    exitCode = await stopDaemon(d);
    await new Promise((r) => setTimeout(r, 500));
    leftWorkers = [...seenWorkers].filter(alive);
    for (const p of leftWorkers) process.kill(p, 'SIGKILL');
    await proxy.stop();
    await clamd.stop();
    unmount(tmpdir);
    process.off('exit', unmountAtExit);
  }

  // ---- the summary (printed before the assertions, so a failing run still shows it)
  const log = d.stderr();
  const events = (name: string): number => (log.match(new RegExp(`event=${name}[ \\n]`, 'g')) ?? []).length;
  const infectedAccepted = stats.outcomes.get('infected-accepted') ?? 0;
  const interruptions = probes.interruptions.length + stats.connectErrors.length;
  const summary = {
    seed: SEED, messages: sent, calm_messages: calmSent, concurrency: CONCURRENCY, workers: WORKERS,
    duration_s: Number((soakMs / 1000).toFixed(1)),
    faults: Object.fromEntries([...CLAMD_FAULTS, ...DAEMON_FAULTS].map((k) => [k, faults.counts.get(k) ?? 0])),
    faults_total: faults.total, sighups: faults.signals, read_only_control_messages: stats.readOnlyControls,
    replies: Object.fromEntries([...stats.codes].sort()),
    outcomes: Object.fromEntries([...stats.outcomes].sort()),
    by_kind: Object.fromEntries([...stats.byKind].map(([k, m]) => [k, Object.fromEntries([...m].sort())])),
    infected_accepted: infectedAccepted, violations: stats.violations.length, hangs: stats.hangs.length,
    closed_without_reply: stats.closedNoReply, service_interruptions: interruptions,
    probes: { sent: probes.sent, answered: probes.answered, closed_by_kill: probes.closedByKill, replies: Object.fromEntries([...probes.codes].sort()), max_ms: probes.maxMs },
    max_request_ms: stats.maxMs,
    master_fds: [before?.masterFds, after?.masterFds],
    worker_fds: [before?.workers.map((w) => w.fds), after?.workers.map((w) => w.fds)],
    master_rss_mib: [MiB(before?.masterRss), MiB(after?.masterRss)],
    worker_rss_mib: [before?.workers.map((w) => MiB(w.rss)), after?.workers.map((w) => MiB(w.rss))],
    tmpdir_files: [before?.tmpFiles.length, after?.tmpFiles.length],
    log_events: {
      'worker-exit': events('worker-exit'), 'worker-overdue': events('worker-overdue'), 'request-overdue': events('request-overdue'),
      reloaded: events('reloaded'), 'reload-failed': events('reload-failed'), 'worker-fault': events('worker-fault'), 'master-fault': events('master-fault'),
      'worker-restart-delayed': events('worker-restart-delayed'),
    },
    exit_code: exitCode, workers_left_after_shutdown: leftWorkers.length,
  };
  /** The summary as a few lines a closing note can quote. */
  const summaryLines = (s: typeof summary): string[] => {
    const kv = (o: Record<string, unknown>): string => Object.entries(o).map(([k, v]) => `${k}=${v}`).join(' ');
    const list = (xs: unknown): string => `[${Array.isArray(xs) ? xs.join(', ') : '?'}]`;
    return [
      `soak: seed=${s.seed} messages=${s.messages} (+${s.calm_messages} without faults) duration=${s.duration_s}s concurrency=${s.concurrency} workers=${s.workers}`,
      `faults (${s.faults_total}): ${kv(s.faults)}; SIGHUPs sent=${s.sighups}; messages with read-only control files=${s.read_only_control_messages}`,
      `replies: ${kv(s.replies)}`,
      `outcomes: ${kv(s.outcomes)}`,
      ...Object.entries(s.by_kind).map(([k, v]) => `  ${k}: ${kv(v)}`),
      `infected accepted: ${s.infected_accepted}; violations: ${s.violations}; hangs: ${s.hangs}; closed without reply: ${s.closed_without_reply}; service interruptions: ${s.service_interruptions}`,
      `probes: sent=${s.probes.sent} answered=${s.probes.answered} (${kv(s.probes.replies)}) closed-by-worker-kill=${s.probes.closed_by_kill} slowest=${s.probes.max_ms}ms; slowest request=${s.max_request_ms}ms`,
      `fds: master ${s.master_fds[0]} -> ${s.master_fds[1]}, workers ${list(s.worker_fds[0])} -> ${list(s.worker_fds[1])} (tolerance +${FD_TOLERANCE})`,
      `RSS MiB: master ${s.master_rss_mib[0]} -> ${s.master_rss_mib[1]}, workers ${list(s.worker_rss_mib[0])} -> ${list(s.worker_rss_mib[1])} (tolerance +max(50%, 24 MiB))`,
      `tmpdir files: ${s.tmpdir_files[0]} -> ${s.tmpdir_files[1]}; exit status ${s.exit_code}; workers left after shutdown: ${s.workers_left_after_shutdown}`,
      `log events: ${kv(s.log_events)}`,
    ];
  };
  for (const line of summaryLines(summary)) t.diagnostic(line);
  if (process.env.AVFILTER_SOAK_REPORT) writeFileSync(process.env.AVFILTER_SOAK_REPORT, JSON.stringify(summary, null, 2) + '\n');

  // ---- the assertions
  assert.ok(before && after, 'baseline and final measurements taken');
  assert.deepEqual(stats.violations.slice(0, 20), [], `${stats.violations.length} violations`);
  assert.equal(infectedAccepted, 0);
  assert.deepEqual(stats.hangs.slice(0, 20), [], 'requests that hung');
  assert.deepEqual([...probes.interruptions, ...stats.connectErrors].slice(0, 20), [], 'service interruptions');
  for (const k of [...CLAMD_FAULTS, ...DAEMON_FAULTS]) assert.ok((faults.counts.get(k) ?? 0) > 0, `fault ${k} was injected`);
  assert.ok(sent >= (SECONDS ? 1 : MESSAGES), `${sent} messages sent`);
  assert.ok((stats.outcomes.get('infected-rejected') ?? 0) + (stats.outcomes.get('infected-dropped') ?? 0) > 0, 'some infected messages were scanned and caught during the soak');
  assert.ok((stats.outcomes.get('clean-accepted') ?? 0) > 0, 'some clean messages were scanned and accepted during the soak');
  assert.equal(summary.log_events['worker-fault'], 0, 'no worker hit an uncaught fault');
  assert.equal(summary.log_events['master-fault'], 0, 'the master hit no fault');
  assert.equal(after.workers.length, WORKERS);
  assert.ok(after.masterFds! <= before.masterFds! + FD_TOLERANCE,
    `master fds ${before.masterFds} -> ${after.masterFds}\nbefore: ${before.masterFdTargets.join(' ')}\nafter:  ${after.masterFdTargets.join(' ')}`);
  const maxWorkerFds = Math.max(...before.workers.map((w) => w.fds ?? 0));
  for (const w of after.workers) assert.ok(w.fds! <= maxWorkerFds + FD_TOLERANCE, `worker ${w.pid} fds ${w.fds}, baseline at most ${maxWorkerFds}: ${fdTargets(w.pid).join(' ')}`);
  assert.ok(after.masterRss! <= before.masterRss! + RSS_TOLERANCE(before.masterRss!), `master RSS ${MiB(before.masterRss)} -> ${MiB(after.masterRss)} MiB`);
  const maxWorkerRss = Math.max(...before.workers.map((w) => w.rss ?? 0));
  for (const w of after.workers) assert.ok(w.rss! <= maxWorkerRss + RSS_TOLERANCE(maxWorkerRss), `worker ${w.pid} RSS ${MiB(w.rss)} MiB, baseline at most ${MiB(maxWorkerRss)}`);
  assert.deepEqual(after.tmpFiles, before.tmpFiles, 'files in tmpdir back at the baseline');
  assert.equal(exitCode, 0, 'clean shutdown');
  assert.deepEqual(leftWorkers, [], 'no worker left after shutdown');
  assert.equal(exists(env.sock), false, 'socket removed');
  assert.equal(exists(env.pidFile), false, 'pid file removed');
  rmSync(env.dir, { recursive: true, force: true });
});

