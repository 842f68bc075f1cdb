/**
 * A spool directory written as Courier's submit leaves it for a filter: per message a data file
 * (as a real Courier wrote it when it was captured, courier-capture.ts; else courierDataFile():
 * a Received: header, LF) and a control file with the records a real request
 * had (../shared/samples/courier-requests/: s, f, e, t, M, r, R, N, O, u, E, p, W).
 *
 * Inputs: the mix, a directory, the captured data files if any. Output: SpoolEntry per message (absolute paths). Fails with the
 * fs error.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { type MixMessage, courierDataFile } from './mix.js';

export interface SpoolEntry {
  message: MixMessage;
  dataPath: string;
  controlPath: string;
  size: number;
}

export function queueId(i: number): string {
  return `00000000000B${(0xe000 + i).toString(16).toUpperCase().padStart(4, '0')}.000000006B01${(0x9110 + i).toString(16).toUpperCase().padStart(4, '0')}.00002AB4`;
}

export function controlFile(m: MixMessage, id: string, rcpt: string): string {
  const now = Math.floor(Date.now() / 1000);
  return [
    `s${m.from}`, 'fdns; client.example.test ([::ffff:127.0.0.1])', 'e', 't', `M${id}`, `r${rcpt}`, 'R', 'N',
    'ORELAYCLIENT=', 'OTCPREMOTEIP=::ffff:127.0.0.1', 'uauthsmtp', `E${now + 604800}`, `p${now + 28800}`, `W${now + 14400}`, '',
  ].join('\n');
}

/** `data`: each message's data file as a real Courier wrote it (courier-capture.ts), by mix position; else courierDataFile(). */
export function writeSpool(dir: string, mix: readonly MixMessage[], data?: readonly Buffer[]): SpoolEntry[] {
  mkdirSync(dir, { recursive: true });
  return mix.map((m, i) => {
    const id = queueId(m.index);
    const bytes = data?.[i] ?? courierDataFile(m, id);
    const dataPath = join(dir, `D${100000 + m.index}`);
    const controlPath = join(dir, `C${100000 + m.index}`);
    writeFileSync(dataPath, bytes);
    writeFileSync(controlPath, controlFile(m, id, 'avtest@avfilter.test'));
    return { message: m, dataPath, controlPath, size: bytes.length };
  });
}
