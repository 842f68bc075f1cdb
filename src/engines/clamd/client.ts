/**
 * clamd requests, one connection each (exchange.ts): INSTREAM a ScanSource, PING, VERSION, RELOAD.
 *
 * Owns: what is sent - the size check against maxStreamBytes before connecting, the source cut
 * into chunkBytes frames (backpressure via the Outbox), the end marker - and what the reply
 * means for each command.
 * Inputs: a ClamdAddress, a ScanSource, options with connectTimeoutMs, scanTimeoutMs (first
 * byte sent until the reply) and the caller's AbortSignal.
 * Outputs: an EngineResult (instream) or a CommandResult (ping, version, reload); never a rejection.
 * Fails with (codes from engine.ts): ECONNECT, ECONNECT_TIMEOUT - both only before the
 * connection is up, so a caller may try another server - and, after it, ESCAN_TIMEOUT,
 * ESIZE_LIMIT (ours, or clamd's refusal), EPROTOCOL (no/garbled/truncated/premature reply),
 * ESCANNER (clamd said ERROR), EIO (the source could not be read or changed size), EABORTED.
 */
import type { Readable } from 'node:stream';
import { EngineErrorCode, type EngineResult, type ScanSource } from '../engine.js';
import { formatServer, type ClamdAddress } from './address.js';
import { exchange, type ExchangeOptions } from './exchange.js';
import { encodeCommand, endOfStream, frameHeader, quote, resultFromReplies, type ClamdCommand } from './protocol.js';

/** connectTimeoutMs, replyTimeoutMs (first byte sent until the reply), signal. */
export type CommandOptions = ExchangeOptions;

export interface InstreamOptions {
  readonly connectTimeoutMs: number;
  /** From the first byte sent until clamd's reply: covers sending the stream and the scan. */
  readonly scanTimeoutMs: number;
  /** Payload bytes per INSTREAM chunk. */
  readonly chunkBytes: number;
  /** clamd's StreamMaxLength: a larger source is not sent at all. */
  readonly maxStreamBytes: number;
  readonly signal: AbortSignal;
}

export type CommandResult =
  | { readonly ok: true; readonly reply: string }
  | { readonly ok: false; readonly code: string; readonly message: string };

/** Streams `source` with zINSTREAM and returns clamd's verdict. */
export async function instream(addr: ClamdAddress, source: ScanSource, opts: InstreamOptions): Promise<EngineResult> {
  const where = formatServer(addr);
  if (source.size > opts.maxStreamBytes) {
    return errorResult(EngineErrorCode.SIZE_LIMIT,
      `${where}: ${source.size} bytes exceed the stream limit of ${opts.maxStreamBytes} (clamd StreamMaxLength); not sent`);
  }
  let stream: Readable | undefined;
  const exchanged = await exchange(addr, {
    connectTimeoutMs: opts.connectTimeoutMs, replyTimeoutMs: opts.scanTimeoutMs, signal: opts.signal,
  }, async (out) => {
    if (source.bytes !== undefined && source.bytes.length === source.size) {
      // in memory: the command, every frame and the end marker in one write
      const bufs: Buffer[] = [encodeCommand('INSTREAM')];
      for (let off = 0; off < source.bytes.length; off += opts.chunkBytes) {
        const slice = source.bytes.subarray(off, off + opts.chunkBytes);
        bufs.push(frameHeader(slice.length), slice);
      }
      bufs.push(endOfStream());
      await out.write(bufs, true);
      return undefined;
    }
    if (!(await out.write([encodeCommand('INSTREAM')]))) return undefined;
    stream = source.stream();
    let sent = 0;
    for await (const chunk of stream) {
      const buf: Buffer = typeof chunk === 'string' ? Buffer.from(chunk) : (chunk as Buffer);
      for (let off = 0; off < buf.length; off += opts.chunkBytes) {
        const slice = buf.subarray(off, off + opts.chunkBytes);
        sent += slice.length;
        if (sent > source.size) {
          return { code: EngineErrorCode.IO, message: `source yielded more than its declared ${source.size} bytes` };
        }
        if (!(await out.write([frameHeader(slice.length), slice]))) return undefined;
      }
    }
    if (sent !== source.size) {
      return { code: EngineErrorCode.IO, message: `source ended after ${sent} of its declared ${source.size} bytes` };
    }
    await out.write([endOfStream()], true);
    return undefined;
  });
  stream?.destroy();
  if (!exchanged.ok) return errorResult(exchanged.code, exchanged.message);
  const result = resultFromReplies(exchanged.lines);
  if (result.status === 'error') return errorResult(result.code, `${where}: ${result.message}`);
  if (result.status === 'clean' && !exchanged.sentAll) {
    // Only a verdict on every byte may be "clean"; clamd never says OK before the end marker.
    return errorResult(EngineErrorCode.PROTOCOL, `${where}: clamd answered OK before the whole stream was sent`);
  }
  return result;
}

/** zPING; ok only for PONG. */
export async function ping(addr: ClamdAddress, opts: CommandOptions): Promise<CommandResult> {
  const r = await command(addr, 'PING', opts);
  if (r.ok && r.reply !== 'PONG') {
    return { ok: false, code: EngineErrorCode.PROTOCOL, message: `${formatServer(addr)}: PING answered ${quote(r.reply)}` };
  }
  return r;
}

/** zVERSION; the reply is clamd's version line, e.g. "ClamAV 1.4.6/27000/<date>". */
export async function version(addr: ClamdAddress, opts: CommandOptions): Promise<CommandResult> {
  const r = await command(addr, 'VERSION', opts);
  if (r.ok && !r.reply.startsWith('ClamAV ')) {
    return { ok: false, code: EngineErrorCode.PROTOCOL, message: `${formatServer(addr)}: VERSION answered ${quote(r.reply)}` };
  }
  return r;
}

/**
 * zRELOAD; ok only for RELOADING. clamd answers at once and loads the database in the
 * background (by default it keeps scanning with the old one meanwhile).
 */
export async function reload(addr: ClamdAddress, opts: CommandOptions): Promise<CommandResult> {
  const r = await command(addr, 'RELOAD', opts);
  if (r.ok && r.reply !== 'RELOADING') {
    return { ok: false, code: EngineErrorCode.PROTOCOL, message: `${formatServer(addr)}: RELOAD answered ${quote(r.reply)}` };
  }
  return r;
}

async function command(addr: ClamdAddress, cmd: ClamdCommand, opts: CommandOptions): Promise<CommandResult> {
  const x = await exchange(addr, opts, async (out) => {
    await out.write([encodeCommand(cmd)], true);
    return undefined;
  });
  if (!x.ok) return x;
  if (x.lines.length !== 1) {
    return { ok: false, code: EngineErrorCode.PROTOCOL, message: `${formatServer(addr)}: ${cmd} got ${x.lines.length} reply lines` };
  }
  return { ok: true, reply: x.lines[0]! };
}

function errorResult(code: string, message: string): EngineResult {
  return { status: 'error', code, message };
}
