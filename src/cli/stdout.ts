/**
 * Output to a reader that goes away (`avfilter --help | head -1`, `avfilter -t dir | less` quit
 * early) ends the program quietly, as a C program ends on SIGPIPE, instead of in a stack trace
 * of an unhandled EPIPE. Other write errors are still reported by whoever writes.
 */
export function quietOnClosedStdout(): void {
  process.stdout.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code === 'EPIPE') process.exit(process.exitCode ?? 0);
  });
}
