/**
 * What avfilter_sig says about itself, defined once: its --help (bin/avfilter_sig.ts) and its
 * man page (man.ts) come from here.
 *
 * In this version avfilter_sig does not reload anything yet: it prints its help, and for any
 * other use says that reloading is not implemented and exits 2. Everything written here must
 * say only what it really does.
 */

export const SIG_SUMMARY = 'reload helper for avfilter (in this version: prints its help only)';

export const SIG_NOT_IMPLEMENTED =
  'avfilter_sig: not implemented in this version; send SIGHUP to avfilter (its pid file) to reload.\n';

export const SIG_RELOAD_NOW = 'kill -HUP "$(cat /run/courier/avfilter.pid)"';

/** The --help text; `configPath` is the config file avfilter reads ($AVFILTER_CONFIG or the default). */
export function sigHelp(configPath: string): string {
  return `usage: avfilter_sig --help

avfilter_sig is meant to ask a running avfilter to reload its configuration and signatures.
In this version it only prints this help; any other use says that reloading is not
implemented and exits with status 2. To reload avfilter now, send it SIGHUP:

  ${SIG_RELOAD_NOW}

Default paths (config keys pid_file and pipe; this version reads no config file):
  config file: ${configPath}
  pid file:    /run/courier/avfilter.pid  (key pid_file)
  pipe:        /run/courier/avfilter_sig.pipe  (key pipe)

Exit status: 0 for --help, 2 for anything else.
`;
}
