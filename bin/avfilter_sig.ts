#!/usr/bin/env node
/**
 * avfilter_sig: asks a running avfilter to reload (or for its stats) and prints its answer.
 * Everything is in src/cli/sig.ts; its texts, shared with the man page, in src/cli/sig-usage.ts.
 */
import { runSig } from '../src/cli/sig.js';
import { quietOnClosedStdout } from '../src/cli/stdout.js';

quietOnClosedStdout();
process.exitCode = await runSig(process.argv.slice(2));
