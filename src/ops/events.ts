/**
 * Every event avfilter logs (`event=NAME`), with its severity and what it means: the one list
 * the logger's type, the docs table (docs/log-events.md, written by `npm run man`) and the
 * tests read, so a new event cannot be logged without being documented.
 *
 * Owns: event names, their levels, one line of meaning each. Fails with nothing: it is data.
 * `levels`: the severities an event is logged at; the first is the usual one. An admin's
 * `mail.err` rule with log_to = "syslog" sees every event whose levels include error.
 */
import type { Level } from './levels.js';

interface EventSpec {
  readonly levels: readonly Level[];
  readonly meaning: string;
}

export const EVENTS = {
  // ---- life cycle
  started: { levels: ['info'], meaning: 'the daemon is in service: its socket is in place (name, socket, pid, config, workers)' },
  stopping: { levels: ['info'], meaning: 'asked to stop (SIGTERM, SIGINT, end of stdin): the socket is removed, messages in hand finish' },
  stopped: { levels: ['info'], meaning: 'the daemon is done; unfinished= messages got 451 at the end of shutdown_timeout, log_lines_lost= lines never written' },
  reloaded: { levels: ['info'], meaning: 'a reload loaded: a new generation of workers serves (service=restored: out of the degraded mode)' },
  'reload-failed': { levels: ['error'], meaning: 'a reload did not load (reason=); the running configuration, or the degraded mode, is kept' },
  'reload-warning': { levels: ['warning'], meaning: 'a reloaded key that takes effect only after a restart (key=)' },
  'watch-reload': { levels: ['info'], meaning: 'a watched file (the config, a rules directory) changed: a reload follows after 2 s of quiet (path=)' },
  'watch-error': { levels: ['error'], meaning: 'watching the config and rule files failed: no more watching; reload with avfilter_sig or a signal' },
  'clamd-reload': { levels: ['info', 'error'], meaning: 'reload_clamd: a clamd server was sent RELOAD (info: it answered RELOADING; error: it did not)' },
  'pipe-refused': { levels: ['warning'], meaning: "avfilter_sig's pipe was not written: not a FIFO, a symbolic link, or not ours (path=, reason=)" },
  'stats-request': { levels: ['debug'], meaning: 'SIGWINCH asked for the counters, and no avfilter_sig read them' },
  'stats-failed': { levels: ['error'], meaning: 'the counters could not be written into the pipe' },
  stats: { levels: ['info'], meaning: 'at stop: the counters since start, one line each (text=)' },
  'metrics-listening': { levels: ['info'], meaning: 'the Prometheus endpoint is up (address=; port 0 gives the port chosen)' },
  'metrics-exposed': { levels: ['warning'], meaning: 'the metrics address is not loopback: anyone who reaches it sees the counters' },
  'metrics-closed': { levels: ['info'], meaning: 'the metrics endpoint was closed (a reload changed metrics, or shutdown)' },
  'metrics-error': { levels: ['error'], meaning: 'the metrics endpoint could not listen or failed; the filter goes on without it' },
  degraded: { levels: ['error'], meaning: 'the config or the engines do not load: every message is answered 451 with the reason, said again every minute' },
  'no-real-signatures': { levels: ['error'], meaning: 'the engines know only test signatures (EICAR): avfilter is not a virus scanner like this' },
  'debug-run': { levels: ['info'], meaning: '--debug: socket in the current directory, no pid file, every debug line' },
  // ---- the master's faults
  'master-fault': { levels: ['error'], meaning: 'an exception nobody caught in the master; it goes on serving' },
  'socket-error': { levels: ['error'], meaning: 'the filter socket failed or could not be put in place' },
  'pidfile-error': { levels: ['error'], meaning: 'the pid file could not be written (avfilter_sig will not find the daemon)' },
  'no-worker': { levels: ['error'], meaning: 'no worker took the socket at start: the master answers every message 451 itself' },
  'responder-failed': { levels: ['error'], meaning: 'the worker that answers 451 in the degraded mode did not start; the master answers itself' },
  'node-warning': { levels: ['warning'], meaning: "a warning of Node's own (a deprecation, too many listeners)" },
  // ---- workers
  'worker-start-failed': { levels: ['error'], meaning: 'a worker could not load its engines (code=, reason=); the others, or the old generation, go on' },
  'worker-exit': { levels: ['error', 'info'], meaning: 'a worker ended unexpectedly (error; held= connections Courier retries) or while leaving with work in hand (info)' },
  'worker-error': { levels: ['error'], meaning: 'a worker process could not be started or signalled' },
  'worker-fault': { levels: ['error'], meaning: 'an uncaught exception in a worker: it exits (status 70) and is replaced' },
  'worker-overdue': { levels: ['error'], meaning: 'a worker let a request pass its deadline, or stopped beating: killed and replaced' },
  'worker-recycle': { levels: ['info', 'warning'], meaning: 'a worker is replaced for its memory: idle and large (info) or past worker_memory_limit (warning)' },
  'worker-restart-delayed': { levels: ['warning'], meaning: 'workers keep dying: the next restart waits ms=' },
  'worker-fallback': { levels: ['warning'], meaning: 'no scanning worker accepting: a responder answers 451 meanwhile' },
  'worker-output': { levels: ['warning'], meaning: "a worker wrote to its own stderr (text=): not a log line of ours" },
  drained: { levels: ['info'], meaning: 'at shutdown a worker answered its unfinished= requests 451' },
  'ip-blocked': { levels: ['info'], meaning: 'a virus came from client ip=: its mail is answered 451 for seconds= (until=), by every worker; blocked= IPs in the table (action.block_ip_seconds)' },
  'tmp-swept': { levels: ['info'], meaning: 'temp files left by workers that are gone were removed (entries=)' },
  // ---- engines and the verdict cache (logged by the worker, or by -t / --batch-test on stderr)
  'clamd-down': { levels: ['warning'], meaning: 'a clamd server failed without a verdict (code=, reason=): marked down, the others scan, it is probed back with PING' },
  'clamd-up': { levels: ['warning'], meaning: 'a clamd server marked down answers again (down_ms=)' },
  'cache-error': { levels: ['warning'], meaning: 'the verdict cache (Redis) failed: items are scanned instead, never trusted on doubt' },
  // ---- connections and requests
  'bad-request': { levels: ['warning'], meaning: 'a client sent something that is not a Courier request (code=): closed, no reply' },
  'request-read-timeout': { levels: ['warning'], meaning: 'a client did not finish its request within request_read_timeout: closed' },
  'request-truncated': { levels: ['warning'], meaning: 'a client hung up in the middle of its request' },
  'request-overdue': { levels: ['error'], meaning: 'a request passed its deadline and the backstop: answered 451' },
  'connection-error': { levels: ['warning'], meaning: 'a socket error on a client connection (code=)' },
  'internal-error': { levels: ['error'], meaning: 'a fault of ours while answering a request: answered 451' },
  'control-busy': { levels: ['warning'], meaning: "a file of this request is in use by another request: 451, Courier retries" },
  'control-lock-error': { levels: ['error'], meaning: 'the lock on the request files could not be taken (code=): 451' },
  'effect-failed': { levels: ['warning'], meaning: 'an effect that runs once the answer stands (block, notify), or the undo of one, failed (effect=, code=): logged, the answer stands' },
  suppressed: { levels: ['warning', 'error'], meaning: 'count= lines of event of= were held back in the last seconds= (a flood), at that event\'s level' },
  // ---- the quarantine (logged by avfilter --quarantine where the daemon logs)
  'quarantine-release': { levels: ['info', 'error'], meaning: 'a quarantined message was handed to sendmail (info: quarantine=, to=) or could not be (error: code=, reason=; it stays releasable)' },
  'quarantine-delete': { levels: ['info'], meaning: 'a quarantine entry was removed (quarantine=; by=delete, or by=expire with days=)' },
  // ---- notices and the handler (effects/notify.ts, effects/handler.ts)
  'notice-sent': { levels: ['info'], meaning: '[notify]: a notice about an infected message was handed to sendmail (id=, to=, names=)' },
  'notice-failed': { levels: ['error'], meaning: '[notify]: the notice could not be sent (code=, reason=); the answer to the message is not changed' },
  'handler-tempfail': { levels: ['warning'], meaning: 'action.handler exited 75: the message is answered 451 (id=, program=, text= what it said)' },
  'handler-failed': { levels: ['error'], meaning: 'action.handler failed (code= EHANDLER_EXIT, _TIMEOUT, _SPAWN, _COPY; reason=): logged, the action stands' },
  // ---- debug runs (log_level = "debug")
  trace: { levels: ['debug'], meaning: 'one stage of one message (stage=read, gates, mime, unpack, banned, engine, policy, reply; ms= since accept)' },
} as const satisfies Record<string, EventSpec>;

export type EventName = keyof typeof EVENTS;
/** The levels an event may be logged at: logging it at another is a compile-time error. */
export type EventLevel<E extends EventName> = (typeof EVENTS)[E]['levels'][number];

export function levelsOf(event: EventName): readonly Level[] {
  return EVENTS[event].levels;
}
