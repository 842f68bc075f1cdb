#!/usr/bin/env node
/**
 * avfilter_sig: asks a running avfilter to reload its config and/or signatures and prints the
 * answer it writes into the FIFO. The FIFO protocol arrives with the operations issue; until
 * then this program says so and exits 2 (contract: 2 or more for everything else). `--help`
 * already prints the paths it will use.
 */
import { DEFAULT_CONFIG_PATH } from '../src/config/schema.js';

const USAGE = `usage: avfilter_sig [-f FILE] [-p PID] [-t SECONDS] [-l] [reload [config | virus]]

Asks a running avfilter to reload (HUP: both, USR1: config, USR2: virus signatures)
and prints its answer.

  config file: ${process.env['AVFILTER_CONFIG'] || DEFAULT_CONFIG_PATH}
  pid file:    /run/courier/avfilter.pid  (key pid_file)
  pipe:        /run/courier/avfilter_sig.pipe  (key pipe)

Exit status: 0 reload done, 1 avfilter reported an error, 2 or more anything else.
`;

const args = process.argv.slice(2);
if (args.includes('--help') || args.includes('-h')) {
  process.stdout.write(USAGE);
  process.exitCode = 0;
} else {
  process.stderr.write('avfilter_sig: not implemented in this version; send SIGHUP to avfilter (its pid file) to reload.\n');
  process.exitCode = 2;
}
