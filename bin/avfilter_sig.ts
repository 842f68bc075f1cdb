#!/usr/bin/env node
/**
 * avfilter_sig: in this version it prints its help (the paths avfilter uses) and otherwise says
 * that reloading is not implemented and exits 2 (contract: 2 or more for everything else). The
 * texts live in src/cli/sig-usage.ts, shared with its man page.
 */
import { DEFAULT_CONFIG_PATH } from '../src/config/schema.js';
import { SIG_NOT_IMPLEMENTED, sigHelp } from '../src/cli/sig-usage.js';

const args = process.argv.slice(2);
if (args.includes('--help') || args.includes('-h')) {
  process.stdout.write(sigHelp(process.env['AVFILTER_CONFIG'] || DEFAULT_CONFIG_PATH));
  process.exitCode = 0;
} else {
  process.stderr.write(SIG_NOT_IMPLEMENTED);
  process.exitCode = 2;
}
