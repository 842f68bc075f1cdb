/**
 * Every fixed answer of avfilter, in one place: the 451s of faults, deadlines, shutdown and
 * busy files that no config changes (the configurable texts are [replies]: policy/replies.ts).
 * The master, the connection handler, the workers and the spine all answer with these.
 */
/** An answer to Courier: a code and one line of text, or several (a multi-line reply). */
export interface Reply {
  readonly code: number;
  readonly text: string | readonly string[];
}

export const TIMEOUT_REPLY: Reply = { code: 451, text: '4.3.0 Virus scan timed out, try again later' };
export const INTERNAL_REPLY: Reply = { code: 451, text: '4.3.0 Internal error in the virus filter, try again later' };
export const SHUTDOWN_REPLY: Reply = { code: 451, text: '4.3.2 Virus filter shutting down, try again later' };
export const BAD_REQUEST_REPLY: Reply = { code: 451, text: '4.3.0 Virus filter could not read the request' };
export const CONTROL_BUSY_REPLY: Reply = { code: 451, text: '4.3.0 Virus filter is already processing this message, try again later' };
export const WORKER_FAILED_TEXT = '4.3.0 Virus filter worker failed, try again later';

/** A request that could not be handled before a verdict (a bad path, an unreadable file). */
export function cannotProcess(code: string): Reply {
  return { code: 451, text: `4.3.0 Virus filter cannot process this message (${code}), try again later` };
}

/** An effect of the decision failed (all of them were taken back): what it could not do. */
export function effectFailed(what: string, verb: string): Reply {
  return { code: 451, text: `4.3.0 ${what} but the message could not be ${verb}, try again later` };
}

/** The daemon whose config did not load (degraded mode): FILE:LINE: why. */
export function notConfigured(problem: string): string {
  return `4.3.0 avfilter is not configured: ${problem}`;
}

/** action.handler exited 75 (EX_TEMPFAIL): it asked for the message to be tried again later. */
export const HANDLER_TEMPFAIL_REPLY: Reply = { code: 451, text: '4.7.1 Virus found, the message is held by the virus filter\'s handler, try again later' };
