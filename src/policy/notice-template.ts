/**
 * The notice template of [notify] template: header lines with macros, a blank line, the body
 * with macros (policy/macros.ts). Parsed and checked once when it is loaded, so a mistake in it
 * is a config error that names the file and the line, not a notice lost at mail time.
 *
 * Owns: the template's syntax, the built-in notice, the headers a template may not set (the
 * ones that keep notices from looping). Inputs: the file's text. Outputs: a NoticeTemplate.
 * Fails with AvError ENOTIFY_TEMPLATE: "FILE:LINE: why".
 */
import { readFileSync } from 'node:fs';
import { AvError, messageOf } from '../errors.js';
import { LINE_MACROS, NOTICE_MACROS, checkTemplate } from './macros.js';

/** The marker header of a notice. */
export const NOTICE_MARKER = 'X-Avfilter-Notice';

/** Headers avfilter writes itself: a template may not set them (they keep notices from looping). */
const OWN_HEADERS = ['auto-submitted', NOTICE_MARKER.toLowerCase(), 'mime-version', 'content-type', 'content-transfer-encoding'];

export interface NoticeTemplate {
  /** Header lines as written (unfolded), with macros. */
  readonly headers: readonly (readonly [string, string])[];
  readonly body: string;
}

export const BUILT_IN_TEMPLATE = `Subject: Virus found in a message from %s
To: undisclosed-recipients:;

avfilter, the virus filter of this mail server, found a virus in a message.
The message is not attached to this notice.

Virus:       %v
Files:       %f
Sender:      %s (easily forged)
Recipients:  %r
Queue id:    %q
Client IP:   %i
Action:      %a

The headers of the message:

%h
`;

/**
 * Parses a notice template: "Name: value" lines (continuations start with a space or TAB), a
 * blank line, the body. Throws AvError ENOTIFY_TEMPLATE naming `source` and the line.
 */
export function parseNoticeTemplate(text: string, source: string): NoticeTemplate {
  const lines = text.replace(/\r\n?/g, '\n').split('\n');
  const headers: [string, string][] = [];
  const bad = (line: number, why: string): AvError => new AvError('ENOTIFY_TEMPLATE', 'internal', `${source}:${line}: ${why}`);
  let i = 0;
  for (; i < lines.length && lines[i] !== ''; i++) {
    const line = lines[i]!;
    const last = headers[headers.length - 1];
    if (/^[ \t]/.test(line) && last !== undefined) {
      last[1] += ` ${line.trim()}`;
      continue;
    }
    const m = /^([!-9;-~]+):[ \t]*(.*)$/.exec(line);
    if (m === null) throw bad(i + 1, 'not a header line ("Name: value"); the headers end at the first blank line, the body follows');
    if (OWN_HEADERS.includes(m[1]!.toLowerCase())) throw bad(i + 1, `${m[1]} is written by avfilter, a template may not set it`);
    headers.push([m[1]!, m[2]!]);
  }
  if (i >= lines.length) throw bad(1, 'no blank line: a notice template is headers, a blank line, then the body');
  for (const [n, [name, value]] of headers.entries()) {
    const err = checkTemplate(value, LINE_MACROS);
    if (err !== undefined) throw bad(n + 1, `${name}: ${err}`);
  }
  const body = lines.slice(i + 1).join('\n');
  const err = checkTemplate(body, NOTICE_MACROS);
  if (err !== undefined) {
    const at = Number(/at character (\d+)/.exec(err)?.[1] ?? 0);
    throw bad(i + 2 + (body.slice(0, at).match(/\n/g)?.length ?? 0), err);
  }
  return { headers, body };
}

/** What is wrong with the template file at `path` ("" = the built-in one), or undefined. */
export function noticeTemplateProblem(path: string): string | undefined {
  if (path === '') return undefined;
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    return `${path}: cannot read the notice template: ${(err as NodeJS.ErrnoException).code ?? messageOf(err)}`;
  }
  try {
    parseNoticeTemplate(text, path);
    return undefined;
  } catch (err) {
    return messageOf(err);
  }
}
