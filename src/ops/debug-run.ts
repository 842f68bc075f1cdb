/**
 * `avfilter --foreground --debug`: a developer's run of the real daemon. The socket and
 * avfilter_sig's pipe go in the current directory (`./avfilter`, the filter name, so requests
 * can be sent with socat or a --batch-test-like client), no pid file is written (no running
 * filter's is touched), every line down to debug is logged, and each message is traced through
 * its stages (trace.ts).
 *
 * Owns: where a debug run puts its files. Fails with nothing: it is data.
 */
import { resolve } from 'node:path';
import type { DaemonKeys } from '../config/rescue.js';

/** The keys a run uses: the config's, or with --debug the socket and pipe under `cwd`. */
export function runKeys<K extends DaemonKeys>(keys: K, debug: boolean | undefined, cwd = process.cwd()): K {
  if (!debug) return keys;
  const here = resolve(cwd);
  return Object.freeze({ ...keys, socket_dir_all: here, socket_dir_optional: here, pipe: resolve(here, 'avfilter_sig.pipe') });
}
