/**
 * Scraping and reading the metrics endpoint in tests: an HTTP GET over TCP or a unix socket,
 * and a strict reader of Prometheus' text format (every line a comment or a valid sample,
 * HELP and TYPE before a metric's samples) giving a map from the sample as written
 * (`name{l="v",...}`) to its value.
 */
import { request } from 'node:http';

export interface Scrape { status: number; type: string; body: string }

export type Target = { host: string; port: number } | { socketPath: string };

export function scrape(target: Target, path = '/metrics', method = 'GET'): Promise<Scrape> {
  return new Promise((resolve, reject) => {
    const req = request({ ...target, path, method, timeout: 5000 }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => { body += d; });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, type: String(res.headers['content-type'] ?? ''), body }));
    });
    req.on('timeout', () => req.destroy(new Error('scrape timed out')));
    req.on('error', reject);
    req.end();
  });
}

const NAME = '[a-zA-Z_:][a-zA-Z0-9_:]*';
const LABEL = '[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\\\\n]|\\\\[\\\\"n])*"';
const SAMPLE = new RegExp(`^(${NAME})(\\{(?:${LABEL})(?:,${LABEL})*\\})? (-?(?:[0-9.]+(?:e[+-]?[0-9]+)?|\\+Inf|-Inf|NaN))$`);

/** The samples by their written name and labels; throws on any line that is not valid text format. */
export function parseProm(text: string): Map<string, number> {
  const out = new Map<string, number>();
  const typed = new Map<string, string>();
  if (!text.endsWith('\n')) throw new Error('the text must end with a newline');
  for (const line of text.slice(0, -1).split('\n')) {
    const c = /^# (HELP|TYPE) (\S+) (.*)$/.exec(line);
    if (c) {
      if (!new RegExp(`^${NAME}$`).test(c[2]!)) throw new Error(`bad metric name in ${JSON.stringify(line)}`);
      if (c[1] === 'TYPE') typed.set(c[2]!, c[3]!);
      continue;
    }
    const m = SAMPLE.exec(line);
    if (!m) throw new Error(`not a sample line: ${JSON.stringify(line)}`);
    const base = m[1]!.replace(/_(bucket|sum|count)$/, '');
    if (!typed.has(m[1]!) && !(typed.get(base) === 'histogram')) throw new Error(`sample before its TYPE: ${line}`);
    if (out.has(m[1]! + (m[2] ?? ''))) throw new Error(`sample twice: ${line}`);
    out.set(m[1]! + (m[2] ?? ''), Number(m[3]));
  }
  return out;
}

/** The sum of the samples of a metric (every label set), 0 when it has none. */
export function total(samples: Map<string, number>, name: string): number {
  let n = 0;
  for (const [k, v] of samples) if (k === name || k.startsWith(`${name}{`)) n += v;
  return n;
}
