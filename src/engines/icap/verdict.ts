/**
 * What an ICAP answer means for the item: the infection headers of the informational draft
 * draft-stecher-icap-subid-00 and the vendor variants collected by rspamd (peers-and-engines.md
 * §B3), and the rule for a 200 answer that names nothing.
 *
 * Owns: threat names from headers, the "blocked without a name" signals, and the decision table:
 *   204                                  -> clean (the server saw the item and left it unmodified)
 *   200 + a threat name                  -> infected with the name(s)
 *   200 + a standard "blocked" signal    -> infected as GENERIC_NAME (X-Violations-Found > 0,
 *          but no name                     X-Infection-Found without Threat, X-Response-Info:
 *                                          blocked, X-FSecure-Scan-Result: infected, X-Blocked)
 *   200 echoing the item unchanged       -> clean (servers that do not do 204)
 *   200 with anything else               -> error EPROTOCOL: the server replaced the item (a
 *                                          block page, a truncated echo) and did not say why; we
 *                                          never guess "clean", and never invent an infection
 *   X-Infection-Found Type=2 only        -> error ESCANNER (the draft's "could not be scanned")
 *   4xx / 5xx                            -> error ESCANNER with the status line
 *   anything else                        -> error EPROTOCOL
 * Inputs: the final answer's head, its encapsulated HTTP head, whether its body was the item.
 * Outputs: an EngineResult. Pure.
 */
import { EngineErrorCode, type EngineResult } from '../engine.js';
import { header, type IcapHead } from './protocol.js';

/** The name reported when a server blocks an item with a standard signal but names no threat. */
export const GENERIC_NAME = 'ICAP.Blocked.Unnamed';

/** Longest name kept; names go into replies and logs. */
const MAX_NAME_CHARS = 200;

export interface FinalAnswer {
  readonly head: IcapHead;
  /** The encapsulated HTTP header text of a 200 answer ('' when none). */
  readonly httpHead: string;
  /** The 200 answer's body was byte for byte the item we sent. */
  readonly echoed: boolean;
}

export function verdictOf(a: FinalAnswer, where: string): EngineResult {
  const { status, reason } = a.head;
  const statusText = `ICAP ${status}${reason ? ` ${clean(reason)}` : ''}`;
  if (status !== 200 && status !== 204) {
    const code = status >= 400 ? EngineErrorCode.SCANNER : EngineErrorCode.PROTOCOL;
    return { status: 'error', code, message: `${where}: the server answered ${statusText}` };
  }
  const found = threats(a.head, a.httpHead);
  if (found.names.length > 0) return { status: 'infected', names: found.names };
  if (found.unscannable !== undefined) {
    return { status: 'error', code: EngineErrorCode.SCANNER, message: `${where}: the server could not scan the item: ${found.unscannable}` };
  }
  if (found.blocked) return { status: 'infected', names: [GENERIC_NAME] };
  if (status === 204) return { status: 'clean' };
  const httpStatus = /^HTTP\/\d\.\d (\d{3})/m.exec(resHeadOf(a.httpHead))?.[1];
  if (a.echoed && httpStatus === '200') return { status: 'clean' };
  return {
    status: 'error', code: EngineErrorCode.PROTOCOL,
    message: `${where}: the server answered ${statusText} with a replaced item (HTTP ${httpStatus ?? 'status missing'}) but named no threat`,
  };
}

/** The response part of an encapsulated head that may start with a request (req-hdr). */
function resHeadOf(httpHead: string): string {
  const i = httpHead.indexOf('\r\nHTTP/');
  return httpHead.startsWith('HTTP/') || i < 0 ? httpHead : httpHead.slice(i + 2);
}

interface Threats {
  names: string[];
  /** A standard header says the item was blocked, without naming a threat. */
  blocked: boolean;
  /** X-Infection-Found said Type=2 (a scan problem), with this text. */
  unscannable?: string | undefined;
}

export function threats(head: IcapHead, httpHead = ''): Threats {
  const names: string[] = [];
  let blocked = false;
  let unscannable: string | undefined;
  const add = (n: string | undefined): void => {
    const c = n === undefined ? '' : clean(n);
    if (c !== '' && c !== '-' && !names.includes(c)) names.push(c);
  };
  for (const v of head.headers.get('x-infection-found') ?? []) {
    const type = /(?:^|;)\s*Type=(\d+)/i.exec(v)?.[1];
    const threat = /(?:^|;)\s*Threat=([^;]*)/i.exec(v)?.[1];
    if (type === '2') {
      unscannable = clean(threat ?? v);
      continue;
    }
    if (threat !== undefined && clean(threat) !== '') add(threat);
    else blocked = true;
  }
  // "N" then four continuation lines per violation: file name, threat, problem id, resolution
  const violations = header(head, 'x-violations-found');
  if (violations !== undefined) {
    const lines = violations.split('\n');
    for (let i = 2; i < lines.length; i += 4) add(lines[i]);
    if (Number.parseInt(lines[0]!, 10) > 0) blocked = true;
  }
  add(header(head, 'x-virus-id'));
  add(header(head, 'x-virus-name'));
  add(header(head, 'x-fsecure-infection-name'));
  if (/^infected/i.test(header(head, 'x-fsecure-scan-result') ?? '')) blocked = true;
  if (/^blocked/i.test(header(head, 'x-response-info') ?? '')) blocked = true;
  // Sophos puts its signal into the encapsulated HTTP head
  if (/^X-Blocked(?:-By)?:/im.test(httpHead)) blocked = true;
  return { names, blocked, unscannable };
}

/** One line of printable text, bounded. */
function clean(s: string): string {
  return s.replace(/[\x00-\x1f\x7f-\x9f]+/g, ' ').trim().slice(0, MAX_NAME_CHARS);
}
