/** The --quarantine commands' usage, shared by --help (cli/program.ts) and their own messages (cli.ts), without loading either. */
export const QUARANTINE_USAGE = 'list [--json] | show ID [--json] | release ID [--to ADDR]... | delete ID | expire DAYS';
