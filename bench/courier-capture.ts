/**
 * The mix as Courier hands it to a filter: each message sent once through a real Courier over
 * SMTP (one session) with the harness's probe filter (test/helpers/probe-filter.mjs) as its only
 * global filter, which passes every message and, with a capture/ directory beside it, keeps a
 * copy of every data file. Courier's submit rewrites what it queues (its own Received: line;
 * a multipart message gets Courier's MIME notice as its preamble), and a filter scans what
 * submit wrote: the filter section feeds avfilter these bytes when they can be had.
 *
 * Inputs: the mix, the lock file to hold while Courier runs, a progress log. Output: one data
 * file's bytes per message, by mix index. Fails with HarnessError (Courier missing or not
 * startable) or an Error naming the messages that were not captured; Courier is stopped and
 * the host given back in every case.
 */
import fs from 'node:fs';
import path from 'node:path';
import { startCourier } from '../test/helpers/courier.js';
import { probeFilterProgram } from '../test/helpers/courier-app.js';
import { withFileLock } from './lock.js';
import type { MixMessage } from './mix.js';
import { smtpLoad } from './smtp-load.js';

const FILTER_NAME = 'avfbenchcapture';
const REPLY_TIMEOUT_MS = 60_000;

export async function captureCourierData(mix: readonly MixMessage[], lock: string | undefined, log: (line: string) => void): Promise<Buffer[]> {
  return withFileLock(lock, log, async () => {
    const h = await startCourier();
    try {
      // the probe (in the runtime dir) copies each data file to capture/ beside it
      const program = probeFilterProgram(h);
      const out = h.courierDir('capture', 0o700);
      await h.installFilter(FILTER_NAME, program);
      const load = await smtpLoad({ port: h.port, to: h.address('avtest'), messages: mix, concurrency: 1, rejectInfected: false, replyTimeoutMs: REPLY_TIMEOUT_MS });
      const files = mix.map((m) => {
        try {
          return fs.readFileSync(path.join(out, String(m.index)));
        } catch {
          return undefined;
        }
      });
      const missing = mix.filter((_m, i) => files[i] === undefined).map((m) => m.index);
      if (missing.length > 0) {
        const why = load.outcomes.find((o) => o.error !== undefined || o.code === undefined || o.code >= 400);
        throw new Error(`Courier did not hand ${missing.length} of ${mix.length} messages to the capture filter (first: #${missing[0]})${why ? `: ${why.error ?? why.code}` : ''}`);
      }
      await h.removeFilter(FILTER_NAME);
      return files as Buffer[];
    } finally {
      await h.stop();
    }
  });
}
