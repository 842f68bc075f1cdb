/**
 * The one config schema: every key avfilter reads, with its type, default, bounds and one line
 * of documentation. The loader (load.ts), `avfilter --config` and the README's key table all come
 * from these tables, so they cannot drift apart.
 *
 * Owns: key names, types, defaults, bounds. Fails with nothing: it is data.
 */

export type KeyType =
  | { kind: 'bool' }
  | { kind: 'string' }
  | { kind: 'path'; allowEmpty?: boolean }
  | { kind: 'seconds'; min: number; max: number }
  | { kind: 'bytes'; min: number; max: number }
  | { kind: 'int'; min: number; max: number }
  | { kind: 'enum'; values: readonly string[] }
  | { kind: 'strings'; minItems: number }
  | { kind: 'paths' }
  | { kind: 'addresses' }
  | { kind: 'command'; allowEmpty?: boolean }
  | { kind: 'icap-url' }
  | { kind: 'exit-codes' }
  | { kind: 'regex' }
  /** "" or where the master serves Prometheus text (metrics-address.ts). */
  | { kind: 'metrics' }
  /** A list of glob patterns (addresses, file names); matching is the caller's (policy/globs.ts). */
  | { kind: 'globs' }
  /** A list of networks: "192.0.2.0/24", "2001:db8::/32", or a single address. */
  | { kind: 'cidrs' }
  /** A table of glob -> one of `values` ([action.by_name]). */
  | { kind: 'action-map'; values: readonly string[] }
  /** "CODE TEXT": a reply line whose code must be in `class` (2, 4 or 5), with reply macros. */
  | { kind: 'reply'; class: 2 | 4 | 5 }
  /** An address ("" allowed: none). */
  | { kind: 'address'; allowEmpty?: boolean };

export interface KeySpec {
  readonly key: string;
  readonly type: KeyType;
  /** undefined means "required" (only engine keys are required). */
  readonly default: unknown;
  readonly doc: string;
}

const MiB = 1024 * 1024;
const HOUR = 3600;

/** Top-level keys. */
export const TOP_KEYS = [
  { key: 'all_mode', type: { kind: 'bool' }, default: true, doc: 'socket in allfilters (every message) rather than filters (skipped for whitelisted recipients)' },
  { key: 'socket_dir_all', type: { kind: 'path' }, default: '/var/lib/courier/allfilters', doc: "Courier's directory of mandatory filter sockets" },
  { key: 'socket_dir_optional', type: { kind: 'path' }, default: '/var/lib/courier/filters', doc: "Courier's directory of optional filter sockets" },
  { key: 'pid_file', type: { kind: 'path' }, default: '/run/courier/avfilter.pid', doc: 'pid file of the daemon (reload: kill -HUP with the pid in it)' },
  { key: 'pipe', type: { kind: 'path' }, default: '/run/courier/avfilter_sig.pipe', doc: "FIFO avfilter_sig creates for the daemon's answer to a reload or stats request (the daemon never creates it, follows no symlink, and writes only to a FIFO)" },
  { key: 'watch', type: { kind: 'bool' }, default: true, doc: 'reload (as on SIGHUP) after edits of the config file and of the YARA rule directories settle for 2 s' },
  { key: 'tmpdir', type: { kind: 'path' }, default: '/var/lib/avfilter/tmp', doc: 'private working files (decoded parts), created 0700' },
  { key: 'quarantine_dir', type: { kind: 'path' }, default: '/var/lib/avfilter/quarantine', doc: 'where infected mail is kept when action.quarantine is true' },
  { key: 'quarantine_sendmail', type: { kind: 'command' }, default: ['/usr/sbin/sendmail', '-oi', '-f', '{sender}'], doc: 'how avfilter --quarantine release re-injects a message, run without a shell: the program and its arguments ({sender}: the envelope sender kept with it); the recipients follow as further arguments and the message goes to its standard input' },
  { key: 'waitfile', type: { kind: 'path', allowEmpty: true }, default: '', doc: 'when set and the file exists, every message is tempfailed at once (e.g. during a signature update)' },
  { key: 'request_timeout', type: { kind: 'seconds', min: 1, max: HOUR }, default: 120, doc: 'whole request, from accept to reply; past it the answer is 451' },
  { key: 'request_read_timeout', type: { kind: 'seconds', min: 1, max: 600 }, default: 30, doc: 'time for Courier to send the request lines; a client that never finishes is closed without a reply' },
  { key: 'max_connections', type: { kind: 'int', min: 1, max: 1024 }, default: 16, doc: 'requests scanned at once over all workers; more wait for a slot (within request_timeout)' },
  { key: 'workers', type: { kind: 'int', min: 0, max: 64 }, default: 0, doc: 'worker processes that scan (0: one per two cores, at most 4); the master holds the socket and restarts them' },
  { key: 'worker_memory_limit', type: { kind: 'bytes', min: 64 * MiB, max: 64 * 1024 * MiB }, default: 1024 * MiB, doc: 'a worker whose resident memory passes this is replaced once its requests are done' },
  { key: 'worker_idle_memory_limit', type: { kind: 'bytes', min: 0, max: 64 * 1024 * MiB }, default: 96 * MiB, doc: 'a worker idle for 15 s whose resident memory is above this (and 16 MiB above its size at start) is replaced, giving the memory back; 0: never' },
  { key: 'memory_budget', type: { kind: 'bytes', min: 0, max: 16 * 1024 * MiB }, default: 128 * MiB, doc: 'decoded message data one worker keeps in memory over all its requests; beyond it parts go to tmpdir' },
  { key: 'spool_dirs', type: { kind: 'paths' }, default: ['/var/lib/courier/tmp'], doc: 'request paths (data and control files) must be inside one of these directories; [] allows any absolute path' },
  { key: 'metrics', type: { kind: 'metrics' }, default: '', doc: 'where the master serves the counters as Prometheus text at GET /metrics: "" (off), "unix:/path" or "tcp:127.0.0.1:PORT"; a non-loopback address is served but logged at warning' },
  { key: 'log_level', type: { kind: 'enum', values: ['error', 'warning', 'info', 'debug'] }, default: 'info', doc: 'least severe log lines written: error, warning, info (one line per message) or debug' },
  { key: 'log_to', type: { kind: 'enum', values: ['stderr', 'syslog'] }, default: 'stderr', doc: 'the daemon\'s lines: stderr (courierfilter sends it to syslog, all at one severity) or syslog: straight to syslog_socket, facility mail, each line at its own severity (--batch-test logs on stderr)' },
  { key: 'log_format', type: { kind: 'enum', values: ['text', 'json'] }, default: 'text', doc: 'text (key=value) or json (one object per line: ts, level, then the same fields)' },
  { key: 'syslog_socket', type: { kind: 'path' }, default: '/dev/log', doc: 'the local syslog socket log_to = "syslog" sends to' },
  { key: 'shutdown_timeout', type: { kind: 'seconds', min: 0, max: 600 }, default: 10, doc: 'on stdin EOF or SIGTERM, how long in-flight requests may finish before they get 451' },
  { key: 'max_request_line', type: { kind: 'bytes', min: 256, max: 64 * 1024 }, default: 4096, doc: 'longest path line accepted in a request' },
  { key: 'max_request_lines', type: { kind: 'int', min: 2, max: 10000 }, default: 1000, doc: 'most lines (data + control paths) in one request' },
  { key: 'max_control_size', type: { kind: 'bytes', min: 1024, max: 1024 * MiB }, default: 1 * MiB, doc: 'largest control file read; 100 recipients take about 3 KB' },
  { key: 'engine_mode', type: { kind: 'enum', values: ['all', 'failover'] }, default: 'all', doc: 'all: every engine scans every item (infected if any finds, an error if any fails and none finds); failover: each item goes to the first healthy engine of the list, the next one when it cannot scan' },
  { key: 'cache', type: { kind: 'string' }, default: '', doc: 'verdict cache, keyed by the SHA-256 of the bytes and each engine\'s signature version: "" (none), "memory" (this host, per worker) or "redis://[:PASSWORD@]HOST:PORT[/DB]" (shared between hosts)' },
  { key: 'cache_ttl', type: { kind: 'seconds', min: 1, max: 30 * 24 * HOUR }, default: 3600, doc: 'how long a cached verdict is used' },
  { key: 'cache_size', type: { kind: 'int', min: 100, max: 10_000_000 }, default: 100_000, doc: 'cache = "memory": most verdicts kept per worker (least recently used go first)' },
] as const satisfies readonly KeySpec[];

/** What may be done with infected mail, by default or for some virus names. */
export const INFECTED_ACTIONS = ['drop', 'reject', 'tempfail', 'pass', 'strip', 'quarantine'] as const;

/** [action] keys. */
export const ACTION_KEYS = [
  { key: 'infected', type: { kind: 'enum', values: INFECTED_ACTIONS }, default: 'drop', doc: 'what happens to infected mail: drop (mark recipients delivered, 2xx), reject (550), tempfail (451), pass (deliver with an X-Virus-Found header, logged), strip (replace the infected attachments by a note, deliver the rest), quarantine (keep a copy, then drop)' },
  { key: 'by_name', type: { kind: 'action-map', values: INFECTED_ACTIONS }, default: {}, doc: 'table [action.by_name]: virus-name glob -> action (as action.infected), e.g. "Heuristics.Phishing.*" = "pass"; names no glob matches get action.infected; with several names the most severe action wins (reject, tempfail, quarantine, drop, strip, pass)' },
  { key: 'error', type: { kind: 'enum', values: ['tempfail', 'accept'] }, default: 'tempfail', doc: 'when scanning fails: tempfail (451) or accept unscanned (fail open, always logged)' },
  { key: 'quarantine', type: { kind: 'bool' }, default: false, doc: 'keep a copy of infected mail that is not refused in quarantine_dir (avfilter --quarantine lists, releases and expires it)' },
  { key: 'limit', type: { kind: 'enum', values: ['tempfail', 'reject'] }, default: 'tempfail', doc: 'when a resource limit is hit (MIME depth or parts, decoded or unpacked size, ratio, members, time): tempfail (451) or reject (554)' },
  { key: 'encrypted', type: { kind: 'enum', values: ['reject', 'tempfail', 'pass', 'drop'] }, default: 'reject', doc: 'an encrypted archive (its members cannot be scanned): reject (554), tempfail (451), pass (deliver, logged) or drop' },
  { key: 'damaged', type: { kind: 'enum', values: ['reject', 'tempfail', 'pass', 'drop'] }, default: 'reject', doc: 'a damaged container or an unsupported compression method (retrying cannot change it): reject (554 naming the file), tempfail (451), pass (deliver, logged) or drop' },
  { key: 'handler', type: { kind: 'path', allowEmpty: true }, default: '', doc: 'a program run (no shell) on infected mail with a private copy of the message, the sender, the virus names and the recipients; exit 0: the action stands; exit 75: 451; anything else: logged, the action stands' },
  { key: 'handler_timeout', type: { kind: 'seconds', min: 1, max: 600 }, default: 30, doc: "time the handler may take; past it its process group is killed (logged, the action stands)" },
  { key: 'block_ip_seconds', type: { kind: 'int', min: 0, max: 30 * 24 * HOUR }, default: 0, doc: 'after a virus from a client IP, tempfail further mail from it for this many seconds (0: never; [skip] networks and local mail are never blocked); shared by all workers' },
  { key: 'block_ip_max', type: { kind: 'int', min: 1, max: 1_000_000 }, default: 10_000, doc: 'most client IPs blocked at once (the oldest block goes first)' },
] as const satisfies readonly KeySpec[];

/** [skip]: mail not scanned at all (logged as skipped). */
export const SKIP_KEYS = [
  { key: 'networks', type: { kind: 'cidrs' }, default: [], doc: 'client networks whose mail is not scanned, e.g. ["192.0.2.0/24", "2001:db8::/32"]' },
  { key: 'authenticated', type: { kind: 'bool' }, default: false, doc: 'true: mail from authenticated senders (SMTP AUTH) is not scanned' },
  { key: 'senders', type: { kind: 'globs' }, default: [], doc: 'envelope senders whose mail is not scanned (address globs, e.g. "*@example.com"; senders are easily forged)' },
  { key: 'recipients', type: { kind: 'globs' }, default: [], doc: 'recipients who want their mail unscanned (address globs); a message is skipped only when every recipient matches' },
  { key: 'pass_recipients', type: { kind: 'globs' }, default: [], doc: 'recipients who get infected mail delivered with an X-Virus-Found header while the others get the action (a refusal then becomes a drop for the others)' },
] as const satisfies readonly KeySpec[];

/** [banned]: attachments refused by name or type, whatever the engines say. */
export const BANNED_KEYS = [
  { key: 'names', type: { kind: 'globs' }, default: [], doc: 'file names refused (globs, case-insensitive; names inside archives too), e.g. ["*.exe", "*.pdf.exe", "*.scr"]' },
  { key: 'types', type: { kind: 'strings', minItems: 0 }, default: [], doc: 'types refused, detected from the bytes or declared: MIME types or extensions, e.g. ["application/x-msdownload", "exe"]' },
  { key: 'action', type: { kind: 'enum', values: ['reject', 'tempfail', 'drop', 'pass', 'quarantine'] }, default: 'reject', doc: 'what happens to mail with a banned attachment: reject (554 naming the file), tempfail, drop, pass (logged), quarantine (keep a copy, then drop)' },
] as const satisfies readonly KeySpec[];

/** [headers]: fields added to delivered mail. */
export const HEADERS_KEYS = [
  { key: 'scanned', type: { kind: 'bool' }, default: false, doc: 'add X-Virus-Scanned: avfilter VERSION (engines and signature versions) on HOST' },
  { key: 'status', type: { kind: 'bool' }, default: false, doc: 'add X-Virus-Status: Clean, Infected (names) or Unscanned (reason); a field of the same name from outside is renamed X-Old-X-Virus-Status' },
] as const satisfies readonly KeySpec[];

/** [notify]: notices about infected mail (none by default). */
export const NOTIFY_KEYS = [
  { key: 'postmaster', type: { kind: 'address', allowEmpty: true }, default: '', doc: 'address that gets a notice for each infected message ("" : none)' },
  { key: 'recipients', type: { kind: 'bool' }, default: false, doc: 'the recipients of an infected message get a notice' },
  { key: 'sender', type: { kind: 'bool' }, default: false, doc: 'the sender gets a notice (senders of viruses are nearly always forged: off unless you know better)' },
  { key: 'sendmail', type: { kind: 'command' }, default: ['/usr/sbin/sendmail', '-f', ''], doc: 'program (no shell) that sends a notice, given the addresses as arguments and the notice on its input; the null sender keeps bounces from looping' },
  { key: 'template', type: { kind: 'path', allowEmpty: true }, default: '', doc: 'file with the notice (headers, a blank line, the body) and macros %v names, %s sender, %r recipients, %q queue id, %i client IP, %h original headers, %f file names, %%; "" : the built-in notice' },
] as const satisfies readonly KeySpec[];

/**
 * [replies]: what Courier is told, "CODE TEXT" with macros (%v names, %s sender, %r recipients,
 * %q queue id, %i client IP, %f file names, %e the reason, %%); values from the message are
 * escaped (no CR, LF or control character reaches a reply).
 */
export const REPLIES_KEYS = [
  { key: 'accept', type: { kind: 'reply', class: 2 }, default: '200 Ok', doc: 'mail accepted (clean, dropped, passed, stripped)' },
  { key: 'infected_reject', type: { kind: 'reply', class: 5 }, default: '550 5.7.1 Message rejected: virus found: %v', doc: 'infected mail refused' },
  { key: 'infected_tempfail', type: { kind: 'reply', class: 4 }, default: '451 4.7.1 Message held: virus found: %v', doc: 'infected mail held (action tempfail)' },
  { key: 'banned_reject', type: { kind: 'reply', class: 5 }, default: '554 5.7.1 Message rejected: banned attachment: %f', doc: 'mail with a banned attachment refused' },
  { key: 'banned_tempfail', type: { kind: 'reply', class: 4 }, default: '451 4.7.1 Message held: banned attachment: %f', doc: 'mail with a banned attachment held' },
  { key: 'encrypted_reject', type: { kind: 'reply', class: 5 }, default: '554 5.7.1 Message rejected: encrypted archive cannot be scanned (%v)', doc: 'an encrypted archive refused' },
  { key: 'encrypted_tempfail', type: { kind: 'reply', class: 4 }, default: '451 4.7.1 Message held: encrypted archive cannot be scanned (%v)', doc: 'an encrypted archive held' },
  { key: 'damaged_reject', type: { kind: 'reply', class: 5 }, default: '554 5.7.1 Message rejected: damaged attachment cannot be scanned: %f (%e)', doc: 'a damaged container refused' },
  { key: 'damaged_tempfail', type: { kind: 'reply', class: 4 }, default: '451 4.7.1 Message held: damaged attachment cannot be scanned: %f (%e)', doc: 'a damaged container held' },
  { key: 'limit_reject', type: { kind: 'reply', class: 5 }, default: '554 5.7.1 Message cannot be scanned: %e', doc: 'a message beyond a resource limit refused' },
  { key: 'limit_tempfail', type: { kind: 'reply', class: 4 }, default: '451 4.7.1 Message cannot be scanned now: %e', doc: 'a message beyond a resource limit held' },
  { key: 'error', type: { kind: 'reply', class: 4 }, default: '451 4.3.0 Virus scan failed, try again later (%e)', doc: 'scanning failed' },
  { key: 'busy', type: { kind: 'reply', class: 4 }, default: '451 4.3.2 Virus scanner busy, try again later (%e)', doc: 'waitfile present' },
  { key: 'blocked', type: { kind: 'reply', class: 4 }, default: '451 4.7.1 Mail from %i is deferred for a while: it sent a virus', doc: 'mail from a client IP blocked by action.block_ip_seconds' },
] as const satisfies readonly KeySpec[];

/** [mime] keys: limits of the MIME extractor; hitting one is a verdict, never "clean". */
export const MIME_KEYS = [
  { key: 'max_depth', type: { kind: 'int', min: 1, max: 100 }, default: 20, doc: 'deepest nesting of multiparts and attached messages' },
  { key: 'max_parts', type: { kind: 'int', min: 1, max: 100000 }, default: 1000, doc: 'most MIME parts in one message' },
  { key: 'max_header_size', type: { kind: 'bytes', min: 1024, max: 64 * MiB }, default: 1 * MiB, doc: 'largest header block of one part' },
  { key: 'max_decoded_size', type: { kind: 'bytes', min: 1024, max: 16 * 1024 * MiB }, default: 512 * MiB, doc: 'most decoded bytes over all parts of one message' },
  { key: 'memory_part_size', type: { kind: 'bytes', min: 0, max: 256 * MiB }, default: 1 * MiB, doc: 'decoded parts larger than this are written to tmpdir instead of memory' },
  { key: 'max_expansion_ratio', type: { kind: 'int', min: 1, max: 10000 }, default: 16, doc: 'decoded bytes may be at most this many times the message size (plus 4 MiB)' },
  { key: 'allow_partial', type: { kind: 'bool' }, default: false, doc: 'accept message/partial fragments (they cannot be scanned whole; refused by default)' },
] as const satisfies readonly KeySpec[];

/**
 * [unpack] keys: the container stage (archives, documents, attached mail and mbox files found
 * by their bytes), whose members every engine scans; a limit
 * crossed is a verdict (action.limit), never "clean".
 */
export const UNPACK_KEYS = [
  { key: 'enabled', type: { kind: 'bool' }, default: true, doc: 'unpack containers and scan their members with every engine (false: engines see containers as bytes; clamd then unpacks them itself)' },
  { key: 'max_depth', type: { kind: 'int', min: 1, max: 64 }, default: 10, doc: 'deepest nesting of containers (a zip in a tar.gz in a zip is 3)' },
  { key: 'max_members', type: { kind: 'int', min: 1, max: 1000000 }, default: 10000, doc: 'most members unpacked from all containers of one message' },
  { key: 'max_size', type: { kind: 'bytes', min: 1024, max: 16 * 1024 * MiB }, default: 256 * MiB, doc: 'most bytes unpacked from all containers of one message' },
  { key: 'max_ratio', type: { kind: 'int', min: 1, max: 100000 }, default: 200, doc: 'unpacked bytes may be at most this many times the message size (plus 16 MiB)' },
  { key: 'max_time', type: { kind: 'seconds', min: 1, max: HOUR }, default: 30, doc: 'time for all unpacking of one message' },
] as const satisfies readonly KeySpec[];

/** The tables of the file besides the top level and [[engine]], in the order they are printed. */
export const SECTIONS = [
  { name: 'action', specs: ACTION_KEYS },
  { name: 'mime', specs: MIME_KEYS },
  { name: 'unpack', specs: UNPACK_KEYS },
  { name: 'skip', specs: SKIP_KEYS },
  { name: 'banned', specs: BANNED_KEYS },
  { name: 'headers', specs: HEADERS_KEYS },
  { name: 'notify', specs: NOTIFY_KEYS },
  { name: 'replies', specs: REPLIES_KEYS },
] as const satisfies readonly { readonly name: string; readonly specs: readonly KeySpec[] }[];

/** Keys of every [[engine]] table, by type. `type` itself is checked first. */
export const ENGINE_KEYS = {
  clamd: [
    { key: 'servers', type: { kind: 'addresses' }, default: ['unix:/run/clamav/clamd.ctl'], doc: 'clamd servers: unix:/path, tcp:host:port, tcp:[v6]:port; each item goes to the up server with the fewest scans in flight, a server that fails without a verdict is left until it answers PING again, and the item is sent once more to another' },
    { key: 'max_scans_per_server', type: { kind: 'int', min: 1, max: 1024 }, default: 10, doc: "scans in flight to one clamd server over the whole daemon (each worker takes an equal share, at least 1); keep it below clamd's MaxThreads; more wait for a slot within the request's deadline" },
    { key: 'connect_timeout', type: { kind: 'seconds', min: 0.1, max: 600 }, default: 5, doc: 'time to connect to one clamd' },
    { key: 'scan_timeout', type: { kind: 'seconds', min: 1, max: HOUR }, default: 60, doc: 'time for one item, from the first byte sent to the reply' },
    { key: 'max_stream_size', type: { kind: 'bytes', min: 1024, max: 4096 * MiB }, default: 25 * MiB, doc: "clamd's StreamMaxLength: larger items are not sent and count as a scanner error" },
    { key: 'chunk_size', type: { kind: 'bytes', min: 1024, max: 16 * MiB }, default: 64 * 1024, doc: 'INSTREAM chunk size' },
    { key: 'reload_clamd', type: { kind: 'bool' }, default: false, doc: 'a signature reload (SIGHUP, SIGUSR2, avfilter_sig reload [virus]) also sends RELOAD to each of these servers' },
    { key: 'raw_message', type: { kind: 'enum', values: ['text', 'data', 'mail', 'parts'] }, default: 'parts', doc: 'the whole message, besides every decoded part: "parts" = not given to clamd when the message reads one way only, as Courier::Filter and amavis give clamd the decoded parts (its headers and MIME delimiters then meet no clamd signature: preamble, epilogue and bodies are parts of their own), else (a message mail readers may read differently, or larger than 1 MiB) as "mail" (clamd then reads it with its own MIME parser too); "text" = scanned as plain bytes, without the base64 bodies each scanned decoded as a part of its own when the message reads one way only (one clamd scan more per message); "data" = every byte scanned as plain bytes; "mail" = clamd also parses it as mail (its mail and phishing signatures; about 1.7 times the clamd CPU of "text")' },
  ],
  yara: [
    { key: 'rules', type: { kind: 'path', allowEmpty: true }, default: '', doc: 'directory of *.yar rule files (empty: the rules shipped with avfilter)' },
    { key: 'max_scan_size', type: { kind: 'bytes', min: 1024, max: 4096 * MiB }, default: 64 * MiB, doc: 'larger items are not scanned and count as a scanner error' },
    { key: 'scan_timeout', type: { kind: 'seconds', min: 1, max: HOUR }, default: 30, doc: 'time for one item' },
  ],
  icap: [
    { key: 'url', type: { kind: 'icap-url' }, default: undefined, doc: 'the ICAP service: icap://host[:port]/service, e.g. icap://127.0.0.1:1344/avscan (c-icap\'s virus_scan in simple mode)' },
    { key: 'connect_timeout', type: { kind: 'seconds', min: 0.1, max: 600 }, default: 5, doc: 'time to connect to the ICAP server' },
    { key: 'scan_timeout', type: { kind: 'seconds', min: 1, max: HOUR }, default: 60, doc: 'time for one item, from the connection being up to the whole answer' },
    { key: 'max_size', type: { kind: 'bytes', min: 1024, max: 4096 * MiB }, default: 5 * MiB, doc: "larger items are not sent and count as a scanner error; keep it at most the server's own limit: c-icap's srv_clamav passes objects over virus_scan.MaxObjectSize (5M by default) unscanned (its avscan alias has no size limit)" },
    { key: 'max_connections', type: { kind: 'int', min: 0, max: 1024 }, default: 0, doc: "connections to the server open at once, per worker process (0: the server's Max-Connections shared among the workers, else 8)" },
  ],
  command: [
    { key: 'command', type: { kind: 'command' }, default: undefined, doc: 'the scanner and its arguments, run without a shell; {} is replaced by the path of the item, e.g. ["clamscan", "--no-summary", "{}"]' },
    { key: 'version_command', type: { kind: 'command', allowEmpty: true }, default: [], doc: 'run by avfilter --config -v, its first line shown as the version (e.g. ["clamscan", "--version"]); [] shows the path of the program' },
    { key: 'scan_timeout', type: { kind: 'seconds', min: 1, max: HOUR }, default: 60, doc: "time for one item; past it the scanner's whole process group is killed" },
    { key: 'max_processes', type: { kind: 'int', min: 1, max: 256 }, default: 2, doc: 'scanner processes running at once, per worker process' },
    { key: 'max_size', type: { kind: 'bytes', min: 1024, max: 4096 * MiB }, default: 25 * MiB, doc: 'larger items are not scanned and count as a scanner error' },
    { key: 'clean_exit', type: { kind: 'exit-codes' }, default: [0], doc: 'exit codes that mean clean' },
    { key: 'infected_exit', type: { kind: 'exit-codes' }, default: [1], doc: 'exit codes that mean infected; any other exit (or a signal) is a scanner error' },
    { key: 'name_pattern', type: { kind: 'regex' }, default: '^.*?: (.+) FOUND$', doc: 'regular expression with one capture group, matched against each line of the output: the virus names' },
  ],
} as const satisfies Readonly<Record<string, readonly KeySpec[]>>;

/** ENGINE_KEYS looked up by a type name read from a file (own keys only: see readEngines). */
export const ENGINE_SPECS: Readonly<Record<string, readonly KeySpec[]>> = ENGINE_KEYS;

/** Engine types the contract names but this version does not implement yet. */
export const FUTURE_ENGINE_TYPES: readonly string[] = [];

export const DEFAULT_CONFIG_PATH = '/etc/courier/filters/avfilter.toml';

/** The value a key of this type has in a loaded Config. */
export type ValueOf<T extends KeyType> =
  T extends { kind: 'bool' } ? boolean
  : T extends { kind: 'enum'; values: readonly (infer V)[] } ? V
  : T extends { kind: 'action-map'; values: readonly (infer V)[] } ? Readonly<Record<string, V>>
  : T extends { kind: 'seconds' | 'bytes' | 'int' } ? number
  : T extends { kind: 'exit-codes' } ? readonly number[]
  : T extends { kind: 'strings' | 'paths' | 'addresses' | 'command' | 'globs' | 'cidrs' } ? readonly string[]
  : string;

/** A table of a loaded Config, derived from its key specs: one readonly field per key. */
export type TableOf<S extends readonly KeySpec[]> = { readonly [E in S[number] as E['key']]: ValueOf<E['type']> };

/** The sections of a loaded Config, each derived from SECTIONS. */
export type SectionsOf<S extends readonly { readonly name: string; readonly specs: readonly KeySpec[] }[]> = {
  readonly [E in S[number] as E['name']]: TableOf<E['specs']>;
};
