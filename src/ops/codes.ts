/**
 * Every `code=` avfilter writes in a log line (the message line's, and the events' code=,
 * quarantine_error=, drop_error=, header_error=), with its class and meaning, and the message
 * line's verdicts: the list docs/log-events.md is generated from (log-events-doc.ts), checked by
 * test/log-events.test.ts against every code literal in the sources so it cannot drift.
 * System error names (ENOENT, EACCES, EIO, ...) are logged as they are and listed in errno(3).
 *
 * Owns: code names, their class, one line of meaning each. Fails with nothing: it is data.
 */
import type { Origin } from '../errors.js';
import type { LogVerdict } from '../policy/decision.js';

/**
 * What a code says about the message: `limit` answers action.limit; `scanner` is an engine's
 * own failure, the only class action.error = "accept" may let through; every other class is
 * 451 whatever the config says (`input`: the request or its files; `abort`: a deadline or a
 * shutdown; `fault`: a fault of avfilter's; `config`: the config or engines do not load).
 * These are the origins of errors.ts, the one vocabulary; the table says `fault` for internal.
 */
export type CodeClass = Exclude<Origin, 'internal'> | 'fault';

export interface CodeSpec {
  readonly class: CodeClass;
  readonly meaning: string;
}

export const CODES = {
  // ---- avfilter_sig's pipe (its own error messages; exit status 4)
  EPIPE_BUSY: { class: 'input', meaning: "avfilter_sig: the pipe exists already (another avfilter_sig runs, or one was killed: remove it)" },
  EPIPE_UNSAFE: { class: 'input', meaning: 'avfilter_sig: the pipe path is a symbolic link or not the FIFO it made: refused' },
  EPIPE_CREATE: { class: 'input', meaning: 'avfilter_sig: the pipe could not be made or given to the daemon\'s group' },
  // ---- the request and its files (451)
  EBAD_PATH: { class: 'input', meaning: 'a request line is not a usable path' },
  ERELATIVE_PATH: { class: 'input', meaning: 'a request path is not absolute' },
  ELINE_TOO_LONG: { class: 'input', meaning: 'a request line is longer than max_request_line' },
  ETOO_MANY_LINES: { class: 'input', meaning: 'a request has more lines than max_request_lines' },
  ENO_CONTROL: { class: 'input', meaning: 'a request names no control file' },
  EINVALID_LIMITS: { class: 'fault', meaning: 'the request reader was given impossible limits' },
  EPATH: { class: 'input', meaning: 'a request path could not be checked' },
  EPATH_FORM: { class: 'input', meaning: 'a request path is not a normalised absolute file path' },
  EPATH_MISSING: { class: 'input', meaning: 'a file the request names does not exist' },
  EPATH_OUTSIDE: { class: 'input', meaning: 'a file the request names is outside spool_dirs' },
  EPATH_SAME: { class: 'input', meaning: 'the data file is also named as a control file' },
  ECONTROL: { class: 'input', meaning: 'a control file could not be read' },
  EBAD_CONTROL: { class: 'input', meaning: 'a control file is not what Courier writes (a NUL byte, no s or M record)' },
  ETOO_LARGE: { class: 'input', meaning: 'a control file is larger than max_control_size' },
  ESYMLINK: { class: 'input', meaning: 'a control file is a symbolic link' },
  ECHANGED: { class: 'input', meaning: 'a control file was replaced while the message was scanned' },
  ESHORT_WRITE: { class: 'fault', meaning: 'a control record was written only in part' },
  EDATA_MISSING: { class: 'input', meaning: 'the data file does not exist' },
  EDATA_ACCESS: { class: 'input', meaning: 'the data file cannot be read by the user avfilter runs as' },
  EDATA_SYMLINK: { class: 'input', meaning: 'the data file is a symbolic link' },
  EDATA_NOT_FILE: { class: 'input', meaning: 'the data file is not a regular file' },
  EDATA_IO: { class: 'input', meaning: 'the data file could not be read' },
  EDATA_CHANGED: { class: 'input', meaning: 'the data file changed while it was scanned: the verdict would not be about what Courier delivers' },
  ENOT_FILE: { class: 'input', meaning: 'the message to scan is not a regular file' },
  ECONTROL_BUSY: { class: 'input', meaning: 'a file of the message is being written by another request (event control-busy)' },
  // ---- deadlines and shutdown (451)
  ETIMEOUT: { class: 'abort', meaning: 'the request deadline (request_timeout) was reached' },
  ETIMEOUT_REQUEST: { class: 'abort', meaning: 'the request deadline, as an engine or reader saw it' },
  EABORTED: { class: 'abort', meaning: 'work stopped by the request deadline or a shutdown' },
  ESHUTDOWN: { class: 'abort', meaning: 'avfilter was stopping: shutdown_timeout passed before the message was done' },
  // ---- MIME limits (action.limit) and faults (451)
  EMIME_DEPTH_LIMIT: { class: 'limit', meaning: 'multiparts or attached messages nested deeper than mime.max_depth' },
  EMIME_PART_LIMIT: { class: 'limit', meaning: 'more MIME parts than mime.max_parts' },
  EMIME_HEADER_LIMIT: { class: 'limit', meaning: 'a header block larger than mime.max_header_size' },
  EMIME_DECODED_LIMIT: { class: 'limit', meaning: 'more decoded bytes than mime.max_decoded_size' },
  EMIME_EXPANSION_LIMIT: { class: 'limit', meaning: 'decoded bytes beyond mime.max_expansion_ratio times the message' },
  EMIME_EMBED_DEPTH: { class: 'limit', meaning: 'encoded content (uuencode, BinHex, data: URIs) nested too deep' },
  EMIME_EMBED_LIMIT: { class: 'limit', meaning: 'more encoded items (uuencode, yEnc, BinHex) open inside one another in one part than are read at once' },
  EMIME_CANDIDATE_LIMIT: { class: 'limit', meaning: 'a header offers more readings (boundary=, encodings) than are tried' },
  EMIME_PARTIAL: { class: 'limit', meaning: 'a message/partial fragment (cannot be scanned whole; mime.allow_partial)' },
  EMIME_UNVOUCHED: { class: 'fault', meaning: 'not logged: the lenient reading alone cannot stand in for both readings, so the message is read with both' },
  EMIME_PARSE: { class: 'fault', meaning: 'the MIME reader failed on the message' },
  EMIME_IO: { class: 'fault', meaning: 'a decoded part could not be written to or read from tmpdir' },
  EMAXLEN: { class: 'limit', meaning: 'a header block of too many lines (reported as EMIME_HEADER_LIMIT)' },
  EDISPOSED: { class: 'fault', meaning: "a part was read after the message's parts were released" },
  // ---- unpack limits (action.limit) and faults
  EUNPACK_DEPTH: { class: 'limit', meaning: 'containers nested deeper than unpack.max_depth' },
  EUNPACK_MEMBERS: { class: 'limit', meaning: 'more members than unpack.max_members' },
  EUNPACK_SIZE: { class: 'limit', meaning: 'more unpacked bytes than unpack.max_size' },
  EUNPACK_RATIO: { class: 'limit', meaning: 'unpacked bytes beyond unpack.max_ratio times the message' },
  EUNPACK_TIME: { class: 'limit', meaning: 'unpacking took longer than unpack.max_time' },
  EUNPACK_CORRUPT: { class: 'limit', meaning: 'a damaged container (retrying cannot help)' },
  EUNPACK_UNSUPPORTED: { class: 'limit', meaning: 'a container method avfilter cannot unpack' },
  EUNPACK_INTERNAL: { class: 'fault', meaning: 'the unpacker itself failed (a thread that died)' },
  EUNPACK_CLOSED: { class: 'fault', meaning: 'the unpacker was already closed (a reload or shutdown)' },
  // ---- engines: scanner failures (action.error)
  ECONNECT: { class: 'scanner', meaning: 'no clamd could be connected to' },
  ECONNECT_TIMEOUT: { class: 'scanner', meaning: 'connecting to clamd took longer than connect_timeout' },
  ESCAN_TIMEOUT: { class: 'scanner', meaning: 'an engine took longer than its scan_timeout for one item' },
  ESIZE_LIMIT: { class: 'limit', meaning: "an item larger than an engine accepts (max_stream_size, max_scan_size, clamd's StreamMaxLength)" },
  EPROTOCOL: { class: 'scanner', meaning: 'clamd answered something that is not its protocol' },
  ESCANNER: { class: 'scanner', meaning: 'the engine reported an error for the item' },
  EUNKNOWN: { class: 'scanner', meaning: 'a clamd server failed without saying why (event clamd-down)' },
  EYARA_UNAVAILABLE: { class: 'config', meaning: 'the embedded YARA-X engine cannot be loaded on this machine' },
  EYARA_COMPILE: { class: 'config', meaning: 'a YARA rule file does not compile' },
  EYARA_NO_RULES: { class: 'config', meaning: 'the rules directory has no *.yar file' },
  EYARA_RULES_IO: { class: 'config', meaning: 'the rules directory cannot be read' },
  EBADOPTION: { class: 'config', meaning: 'an engine was given an option it cannot use' },
  ENO_ENGINE: { class: 'fault', meaning: 'no engine to scan with' },
  EENGINE_BUG: { class: 'fault', meaning: 'an engine threw instead of returning a result: a bug of ours, never "clean"' },
  // ---- faults of avfilter (451)
  EINTERNAL: { class: 'fault', meaning: 'an unexpected fault while handling the message' },
  EWORKER: { class: 'fault', meaning: 'no scanning worker accepting (they keep dying): a responder answered (event worker-fallback)' },
  EWORKER_START: { class: 'fault', meaning: 'a worker did not load its engines in time' },
  EWORKER_EXIT: { class: 'fault', meaning: 'a worker exited before it was ready' },
  EALREADY_RUNNING: { class: 'config', meaning: 'another filter already answers on the socket' },
  EBAD_REPLY: { class: 'fault', meaning: 'a reply that is not SMTP-shaped (the reply reader of the tests and tools)' },
  EBAD_REPLY_CODE: { class: 'fault', meaning: 'a reply with a code outside 0-99 and 200-599 (a bug: event internal-error, 451 is sent instead)' },
  ETRUNCATED: { class: 'input', meaning: 'a reply or a --batch-test request ended early' },
  // ---- the quarantine (quarantine_error= of a message line: 451; the rest: avfilter --quarantine)
  EQUARANTINE_DIR: { class: 'fault', meaning: 'quarantine_dir is not a directory, or group or others can enter it (it must be 0700)' },
  EQUARANTINE_ID: { class: 'input', meaning: '--quarantine: an id not of the quarantine\'s form (letters, digits and - only)' },
  EQUARANTINE_NOT_FOUND: { class: 'input', meaning: '--quarantine: no entry with that id' },
  EQUARANTINE_RECORD: { class: 'fault', meaning: '--quarantine: an entry\'s record.json cannot be read as a record' },
  EQUARANTINE_KEY: { class: 'fault', meaning: 'quarantine_dir/.release-key is not a 32-byte regular file of mode 0600' },
  EQUARANTINE_RELEASED: { class: 'input', meaning: '--quarantine release: the entry was released already; it is never sent twice' },
  EQUARANTINE_BUSY: { class: 'input', meaning: '--quarantine release: a release of the entry began and has not ended (or was interrupted while sendmail ran)' },
  EQUARANTINE_ADDRESS: { class: 'input', meaning: '--quarantine release: no recipient, or one sendmail would take as an option' },
  EQUARANTINE_MESSAGE: { class: 'input', meaning: '--quarantine release: the stored message has a header block too large to release' },
  EQUARANTINE_SEND: { class: 'fault', meaning: '--quarantine release: quarantine_sendmail failed; the entry stays releasable (release_error in its record)' },
  // ---- rewriting the data file: [headers], strip (451; the original is put back)
  EDATA_WRITE: { class: 'fault', meaning: 'the data file could not be written in place ([headers], strip; headers_error= / strip_error=)' },
  EDATA_HEADER: { class: 'fault', meaning: 'the data file\'s top-level header block is longer than the header edit reads (1 MiB)' },
  EDATA_SHORT: { class: 'fault', meaning: 'the data file was shorter than it was when it was opened, while it was rewritten' },
  ESTRIP_COPY: { class: 'fault', meaning: 'strip could not keep a copy of the message in tmpdir (no copy, no strip)' },
  ESTRIP_LAYOUT: { class: 'fault', meaning: 'strip found a part\'s headers elsewhere than its byte offsets said: nothing cut' },
  // ---- notices ([notify]) and action.handler: logged, the answer stands (but EHANDLER_TEMPFAIL)
  ENOTIFY_TEMPLATE: { class: 'config', meaning: '[notify] template does not load (FILE:LINE: why): no notice is sent until it is fixed' },
  ENOTIFY_SENDMAIL: { class: 'fault', meaning: "[notify] sendmail could not be started, exited non-zero or was killed (its last words in reason=): the notice is lost" },
  ENOTIFY_TIMEOUT: { class: 'fault', meaning: '[notify] sendmail did not finish in 30 s, or the request ended first: its process group was killed, the notice is lost' },
  EHANDLER_TEMPFAIL: { class: 'fault', meaning: 'action.handler exited 75 (EX_TEMPFAIL): the message is answered 451 and the effects before it undone' },
  EHANDLER_EXIT: { class: 'fault', meaning: 'action.handler exited with another status than 0 or 75, or was killed by a signal: logged, the action stands' },
  EHANDLER_TIMEOUT: { class: 'fault', meaning: 'action.handler ran past action.handler_timeout: its process group was killed, the action stands' },
  EHANDLER_SPAWN: { class: 'fault', meaning: 'action.handler could not be started (ENOENT, EACCES): the action stands' },
  EHANDLER_COPY: { class: 'fault', meaning: "action.handler's private copy of the message could not be made in tmpdir: it was not run, the action stands" },
  // ---- configuration (the daemon degrades, a reload keeps the old state)
  ENOT_CONFIGURED: { class: 'config', meaning: 'the config or engines did not load: every message 451 (event degraded)' },
  ECONFIG: { class: 'config', meaning: 'the config did not load in a worker' },
  ECONFIG_READ: { class: 'config', meaning: 'the config file cannot be read' },
  ECONFIG_SYNTAX: { class: 'config', meaning: 'the config file is not TOML (FILE:LINE says where)' },
  EBADMETRICS: { class: 'config', meaning: 'the metrics key is not "", "unix:/path", "tcp:IPV4:PORT", "tcp:[IPV6]:PORT" or "tcp:localhost:PORT"' },
  ECONFIG_KEY: { class: 'config', meaning: 'a key that is unknown or has a wrong value (FILE:LINE: key)' },
  ECONFIG_ENGINE: { class: 'config', meaning: 'an [[engine]] cannot be built (rules, binding)' },
  ECONFIG_TMPDIR: { class: 'config', meaning: 'tmpdir is missing, a link, shared or owned by another user' },
  ECONFIG_NETWORK: { class: 'config', meaning: 'a [skip] networks entry node cannot match (the loader checks the grammar first)' },
  EBADSERVER: { class: 'config', meaning: 'an engine address that is not unix:/path, tcp:host:port or tcp:[v6]:port' },
  EINSTALL: { class: 'config', meaning: '--install-filter could not finish a step' },
} as const satisfies Record<string, CodeSpec>;

export type Code = keyof typeof CODES;

/** The message line's `verdict=`: every value the policy can log, with what it means. */
export const VERDICTS = {
  clean: 'every engine answered clean for every item (or a logged policy accepted it)',
  infected: 'a virus was found: names= says which, where= where, action= what was done',
  encrypted: 'an encrypted archive that cannot be scanned: action.encrypted answered',
  unscannable: 'a limit was hit and action.limit = "reject" refused the message (554)',
  tempfail: 'not scanned now: 451, the sender retries (code= says why)',
  'accepted-unscanned': 'a scanner failed and action.error = "accept" delivered it unscanned (fail open: code= and origin=scanner say why)',
  damaged: 'a damaged container or an unsupported method (retrying cannot help): action.damaged answered; files= says which',
  banned: 'an attachment [banned] refuses by name or type: [banned].action answered; files= and rule= say which',
  skipped: 'not scanned: a [skip] rule covers every recipient, or a quarantine release (reason= says which)',
  blocked: 'not scanned: the client IP sent a virus a moment ago (action.block_ip_seconds): 451',
} as const satisfies Record<LogVerdict, string>;
