/**
 * One Courier request, start to finish: control files → waitfile → scan → decision → action
 * (drop marks recipients delivered) → reply, and the one log line for the message.
 *
 * Composition module: joins src/courierfilter (control files) with the scan pipeline and the
 * policy table. Every failure before a verdict (unreadable control file, missing data file) is a
 * 451 whatever action.error says: those are not scanner errors, and fail-open applies only to
 * scanner errors, by name.
 */
import { existsSync } from 'node:fs';
import { stat } from 'node:fs/promises';
import type { CourierRequest } from '../courierfilter/request.js';
import type { Reply } from '../courierfilter/server.js';
import { readControlFile, markDelivered } from '../courierfilter/control-io.js';
import { summarize, type ControlFile } from '../courierfilter/control.js';
import { decide, type Decision } from '../policy/actions.js';
import type { Verdict } from '../policy/verdict.js';
import type { Logger } from './log.js';
import type { Runtime } from './runtime.js';
import { scanMessage } from './scan-message.js';
import { insertHeader } from '../courierfilter/data-header.js';
import { quarantine } from './quarantine.js';

export interface Handled {
  readonly reply: Reply;
  readonly decision?: Decision | undefined;
  readonly verdict?: Verdict | undefined;
}

/** The text recorded in the control file for each dropped recipient. */
const DROP_REASON = '250 Ok - virus found, message dropped by avfilter';

export async function handleRequest(req: CourierRequest, rt: Runtime, log: Logger, signal: AbortSignal): Promise<Handled> {
  const t0 = performance.now();
  const base = { data: req.dataPath } as Record<string, string | number | undefined | readonly string[]>;
  const fail = (code: string, why: string): Handled => {
    log.message({ ...base, verdict: 'tempfail', action: 'tempfail', reply: 451, code, reason: why, ms: Math.round(performance.now() - t0) });
    return { reply: { code: 451, text: `4.3.0 Virus filter cannot process this message (${code}), try again later` } };
  };

  let controls: ControlFile[];
  try {
    controls = await Promise.all(req.controlPaths.map((p) => readControlFile(p, rt.config.max_control_size)));
  } catch (err) {
    return fail(codeOf(err, 'ECONTROL'), `control file: ${messageOf(err)}`);
  }
  const env = summarize(controls);
  base['id'] = env.queueId;
  base['from'] = `<${env.sender}>`;
  base['rcpts'] = env.pending;
  base['ip'] = env.clientIp;
  base['auth'] = env.authUser;

  try {
    const st = await stat(req.dataPath);
    if (!st.isFile()) return fail('ENOT_FILE', 'data file is not a regular file');
  } catch (err) {
    return fail(codeOf(err, 'EDATA'), 'cannot open data file');
  }

  let verdict: Verdict;
  let items = 0;
  if (rt.config.waitfile && existsSync(rt.config.waitfile)) {
    verdict = { kind: 'busy', reason: 'waitfile present' };
  } else {
    const report = await scanMessage(req.dataPath, { engines: rt.engines, mimeLimits: rt.mimeLimits, tmpdir: rt.config.tmpdir }, signal);
    verdict = report.verdict;
    items = report.items;
  }
  let decision = decide(verdict, rt.config.action);

  // Keep a copy before anything else happens to an infected message; no copy, no drop.
  if (verdict.kind === 'infected' && rt.config.action.quarantine && decision.code < 400) {
    try {
      base['quarantine'] = await quarantine(rt.config.quarantine_dir, req.dataPath, {
        queueId: env.queueId, sender: env.sender, clientIp: env.clientIp, names: verdict.names,
        recipients: controls.flatMap((c) => c.recipients.filter((r) => !r.done).map((r) => r.address)),
      });
    } catch (err) {
      decision = { action: 'tempfail', code: 451, text: '4.3.0 Virus found but the message could not be quarantined, try again later', verdict: 'infected' };
      base['quarantine_error'] = codeOf(err, 'EIO');
    }
  }

  if (decision.action === 'pass' && verdict.kind === 'infected') {
    try {
      await insertHeader(req.dataPath, `X-Virus-Found: ${verdict.names.join(', ')} (avfilter)`, rt.config.tmpdir);
    } catch (err) {
      decision = { action: 'tempfail', code: 451, text: '4.3.0 Virus found but the message could not be marked, try again later', verdict: 'infected' };
      base['header_error'] = codeOf(err, 'EIO');
    }
  }

  let dropped: number | undefined;
  const dropList = decision.action === 'drop' ? pendingAddresses(controls) : undefined;
  if (decision.action === 'drop') {
    try {
      const now = Math.floor(Date.now() / 1000);
      dropped = 0;
      for (const c of controls) dropped += await markDelivered(c, DROP_REASON, now);
    } catch (err) {
      // Not every recipient could be marked: answer 4xx so Courier discards the whole
      // submission and the sender retries. Nothing is delivered, nothing is lost.
      decision = { action: 'tempfail', code: 451, text: '4.3.0 Virus found but the message could not be dropped, try again later', verdict: 'infected' };
      base['drop_error'] = codeOf(err, 'EIO');
    }
  }

  log.message({
    ...base,
    verdict: decision.verdict,
    names: verdict.kind === 'infected' ? verdict.names : undefined,
    where: verdict.kind === 'infected' ? verdict.findings.map((f) => `${f.engine}:${f.itemId}`) : undefined,
    action: decision.action,
    dropped,
    to: decision.action === 'drop' ? dropList : undefined,
    reply: decision.code,
    code: verdict.kind === 'error' || verdict.kind === 'limit' ? verdict.code : undefined,
    reason: verdict.kind === 'error' || verdict.kind === 'limit' || verdict.kind === 'busy' ? verdict.reason : undefined,
    items,
    ms: Math.round(performance.now() - t0),
  });
  return { reply: { code: decision.code, text: decision.text }, decision, verdict };
}

/** Courier logs nothing about recipients a filter marks delivered, so we name them. */
function pendingAddresses(controls: readonly ControlFile[]): string[] {
  const all = controls.flatMap((c) => c.recipients.filter((r) => !r.done).map((r) => r.address));
  const MAX_LOGGED = 20;
  return all.length > MAX_LOGGED ? [...all.slice(0, MAX_LOGGED), `+${all.length - MAX_LOGGED}`] : all;
}

function codeOf(err: unknown, fallback: string): string {
  const c = (err as { code?: unknown } | null)?.code;
  return typeof c === 'string' ? c : fallback;
}

function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
