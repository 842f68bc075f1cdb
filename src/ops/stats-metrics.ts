/**
 * The one table of the metrics avfilter exports: name, type, labels, help. The Prometheus text
 * (stats-render.ts), the README's "Stats and metrics" table (tools/metrics-table.ts and a test
 * that compares) and the Grafana dashboard's queries all use these names.
 *
 * Owns: metric names, types, labels, help texts, histogram buckets and the label bounds that
 * keep the number of series finite whatever the mail says. Fails with nothing: it is data.
 */

export type MetricType = 'counter' | 'gauge' | 'histogram';

export interface MetricSpec {
  readonly name: string;
  readonly type: MetricType;
  readonly labels: readonly string[];
  readonly help: string;
}

/**
 * Virus names with a series of their own. Names come from the signatures, but a YARA rule or a
 * clamd signature can put text of the sender's into a name (and a rule set can simply be
 * large): beyond this many, the least-counted name gives its place up and its count moves to
 * name="other", so memory and series stay bounded while the frequent names keep their series.
 */
export const NAME_SERIES_MAX = 100;
/** Codes, kinds and formats with a series of their own (our own code sets; a bound anyway). */
export const CODE_SERIES_MAX = 64;
/** The label value everything beyond a bound is summed under. */
export const OTHER = 'other';

/** Upper bounds (seconds) of the message-time buckets: from accept to reply. */
export const MESSAGE_BUCKETS: readonly number[] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120];
/** Upper bounds (seconds) of one engine's time for one item. */
export const SCAN_BUCKETS: readonly number[] = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];

export const METRICS: readonly MetricSpec[] = [
  { name: 'avfilter_messages_total', type: 'counter', labels: ['verdict', 'action', 'reply'], help: "Messages answered, by the log line's verdict, action and reply code" },
  { name: 'avfilter_infected_total', type: 'counter', labels: ['name'], help: `Infected messages by virus name (a message with two names counts under each); at most ${NAME_SERIES_MAX} names, the least counted summed as name="${OTHER}"` },
  { name: 'avfilter_tempfails_total', type: 'counter', labels: ['code'], help: "Messages answered 4xx, by the log line's code (its verdict when it has none: infected, encrypted)" },
  { name: 'avfilter_limits_total', type: 'counter', labels: ['kind'], help: 'Messages beyond a MIME or unpack limit, by the limit code' },
  { name: 'avfilter_encrypted_total', type: 'counter', labels: ['format'], help: 'Messages with an encrypted archive, by container format' },
  { name: 'avfilter_message_duration_seconds', type: 'histogram', labels: [], help: 'Time from accepting a request to its reply' },
  { name: 'avfilter_engine_scans_total', type: 'counter', labels: ['engine'], help: 'Items each engine answered (whatever the result; a verdict-cache hit counts too)' },
  { name: 'avfilter_engine_detections_total', type: 'counter', labels: ['engine'], help: 'Items an engine found infected' },
  { name: 'avfilter_engine_errors_total', type: 'counter', labels: ['engine', 'code'], help: 'Scans that ended in an engine error, by error code (EABORTED: stopped by the request deadline or shutdown)' },
  { name: 'avfilter_engine_scan_duration_seconds', type: 'histogram', labels: ['engine'], help: "One engine's time for one item" },
  { name: 'avfilter_cache_lookups_total', type: 'counter', labels: ['result'], help: 'Verdict-cache lookups (with cache set): result="hit" (a verdict reused, the engine not asked), "miss", or "skipped" (the lookup failed or timed out: the engine scanned)' },
  { name: 'avfilter_clamd_server_up', type: 'gauge', labels: ['server'], help: 'Per clamd server: 1 when every worker that reported in the last 10 s sends it scans, 0 when one has marked it down (it failed without a verdict and has not answered PING since)' },
  { name: 'avfilter_clamd_server_failures_total', type: 'counter', labels: ['server'], help: 'Scans on a clamd server that failed without a verdict (connect, timeout, broken reply); such a failure marks it down in that worker unless it is only slow' },
  { name: 'avfilter_worker_restarts_total', type: 'counter', labels: [], help: 'Worker processes started in place of one that died or was killed for a fault' },
  { name: 'avfilter_reloads_total', type: 'counter', labels: ['result'], help: 'Reloads (signal, avfilter_sig, watched edit), result="ok" or "failed" (the old state kept)' },
  { name: 'avfilter_workers', type: 'gauge', labels: [], help: 'Scanning worker processes of the generation that serves' },
  { name: 'avfilter_requests_in_flight', type: 'gauge', labels: [], help: 'Requests the workers hold (as of their last heartbeat)' },
  { name: 'avfilter_degraded', type: 'gauge', labels: [], help: '1 while every message is answered 451 because the config or the engines do not load' },
  { name: 'avfilter_blocked_ips', type: 'gauge', labels: [], help: 'Client IPs whose mail is answered 451 for a while after a virus (action.block_ip_seconds), in the master\'s table' },
  { name: 'avfilter_start_time_seconds', type: 'gauge', labels: [], help: 'When the daemon started (Unix time)' },
  { name: 'avfilter_last_reload_time_seconds', type: 'gauge', labels: [], help: 'When the last successful reload happened (Unix time; the start time when none did)' },
];

/** Prometheus metric and label names (the data model's grammar). */
export const METRIC_NAME_RE = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
export const LABEL_NAME_RE = /^[a-zA-Z_][a-zA-Z0-9_]*$/;

/**
 * The README's table of metrics ("Stats and metrics"), rendered from METRICS: a test compares
 * the README with it, so a metric added here and not documented fails.
 */
export function metricsTableMarkdown(): string {
  const rows = METRICS.map((m) => {
    const labels = m.type === 'histogram' ? [...m.labels, 'le'] : [...m.labels];
    return `| \`${m.name}\` | ${m.type} | ${labels.length ? labels.map((l) => `\`${l}\``).join(', ') : '–'} | ${m.help.replace(/\|/g, '\\|')} |`;
  });
  return ['| metric | type | labels | meaning |', '|---|---|---|---|', ...rows].join('\n');
}
