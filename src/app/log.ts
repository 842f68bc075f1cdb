/**
 * Log lines: one structured line per message (contract.md "Logs") and one per life-cycle event,
 * as `key=value` pairs on stderr (courierfilter passes stderr to syslog). Values with spaces or
 * quotes are quoted; control characters never reach the log.
 */

export type LogValue = string | number | boolean | undefined | readonly string[];

export function formatFields(fields: Record<string, LogValue>): string {
  const parts: string[] = [];
  for (const [k, v] of Object.entries(fields)) {
    if (v === undefined) continue;
    const s = Array.isArray(v) ? v.join(',') : String(v);
    parts.push(`${k}=${quote(s)}`);
  }
  return parts.join(' ');
}

function quote(s: string): string {
  // Strip control characters (CR/LF would forge log lines), cap the length.
  const clean = s.replace(/[\x00-\x1f\x7f]+/g, ' ').slice(0, 1000);
  if (clean === '') return '""';
  return /[\s"=]/.test(clean) ? `"${clean.replace(/["\\]/g, (c) => `\\${c}`)}"` : clean;
}

export interface Logger {
  message(fields: Record<string, LogValue>): void;
  event(event: string, fields?: Record<string, LogValue>): void;
}

export function stderrLogger(write: (line: string) => void = (l) => process.stderr.write(l)): Logger {
  return {
    message: (fields) => write(`avfilter: ${formatFields(fields)}\n`),
    event: (event, fields = {}) => write(`avfilter: ${formatFields({ event, ...fields })}\n`),
  };
}
