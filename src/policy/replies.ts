/**
 * The configurable answers ([replies]): "CODE TEXT" templates with macros, expanded for one
 * message. What comes from the message (virus names an engine read out of it, file names,
 * addresses, the reason) is made safe for an SMTP reply line here: printable ASCII only (CR, LF,
 * control, bidi and every other character become "?"), each value and the whole line bounded.
 *
 * Macros: %v virus names, %s sender, %r recipients, %q queue id, %i client IP, %f file names,
 * %e the reason, %% a percent sign. The loader refused any other (config/load.ts replyProblem).
 * Fails with nothing: a template the loader accepted always expands.
 */
import type { Reply } from '../courierfilter/server.js';

export interface MacroValues {
  readonly names?: readonly string[] | undefined;
  readonly sender?: string | undefined;
  readonly recipients?: readonly string[] | undefined;
  readonly queueId?: string | undefined;
  readonly clientIp?: string | undefined;
  readonly files?: readonly string[] | undefined;
  readonly reason?: string | undefined;
}

/** Longest value a macro puts into a reply, and longest reply text. */
const MAX_VALUE = 200;
const MAX_TEXT = 480;

export function expandReply(template: string, values: MacroValues): Reply {
  const code = Number(template.slice(0, 3));
  let text = template.slice(4).replace(/%(.)/g, (_m, c: string) => replySafe(macro(c, values)));
  if (text.length > MAX_TEXT) text = `${text.slice(0, MAX_TEXT - 3)}...`;
  return { code, text };
}

function macro(c: string, v: MacroValues): string {
  switch (c) {
    case 'v': return list(v.names);
    case 's': return v.sender === undefined ? '' : `<${v.sender}>`;
    case 'r': return list(v.recipients);
    case 'q': return v.queueId ?? '';
    case 'i': return v.clientIp ?? '';
    case 'f': return list(v.files);
    case 'e': return v.reason ?? '';
    case '%': return '%';
    default: return '';
  }
}

function list(xs: readonly string[] | undefined): string {
  if (xs === undefined || xs.length === 0) return '';
  const shown = xs.slice(0, 5).join(', ');
  return xs.length > 5 ? `${shown} (+${xs.length - 5})` : shown;
}

/** Printable ASCII only, bounded: nothing from the message can break or forge a reply line. */
export function replySafe(s: string): string {
  // eslint-disable-next-line no-control-regex
  const t = s.replace(/[^\x20-\x7e]/g, '?');
  return t.length > MAX_VALUE ? `${t.slice(0, MAX_VALUE - 3)}...` : t;
}
