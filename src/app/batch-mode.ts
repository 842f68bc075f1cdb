/**
 * `avfilter --batch-test`: requests on stdin exactly as Courier writes them on the socket (a data
 * path, control paths, an empty line), each handled exactly as a socket request — scan, actions,
 * control-file changes, the same deadline — with the reply written to stdout. Exits 0 at end of
 * input.
 */
import { createInterface } from 'node:readline';
import type { Readable, Writable } from 'node:stream';
import { formatReply } from '../courierfilter/reply.js';
import { BAD_REQUEST_REPLY } from '../courierfilter/replies.js';
import { RequestReader } from '../courierfilter/request.js';
import type { Logger } from '../ops/log.js';
import { RequestService } from '../worker/service.js';
import { ms, type Runtime } from './runtime.js';

export async function runBatchMode(input: Readable, output: Writable, rt: Runtime, log: Logger): Promise<number> {
  const rl = createInterface({ input, crlfDelay: Infinity });
  const service = new RequestService(rt, log, 1);
  let lines: string[] = [];
  const serve = async () => {
    const reader = new RequestReader({ maxLineBytes: rt.config.max_request_line, maxLines: rt.config.max_request_lines });
    const r = reader.push(Buffer.from(lines.map((l) => `${l}\n`).join('') + '\n', 'utf8'));
    lines = [];
    if (r.state === 'done') {
      const acceptedAt = Date.now();
      const reply = await service.serve(r.request, { acceptedAt, deadlineAt: acceptedAt + ms(rt.config.request_timeout) });
      output.write(formatReply(reply.code, reply.text as string | string[]));
    } else {
      const why = r.state === 'error' ? r.code : 'ETRUNCATED';
      log.event('bad-request', { code: why }, 'warning');
      output.write(formatReply(BAD_REQUEST_REPLY.code, BAD_REQUEST_REPLY.text as string));
    }
  };
  for await (const line of rl) {
    if (line === '') {
      if (lines.length > 0) await serve();
      continue;
    }
    lines.push(line);
  }
  if (lines.length > 0) await serve(); // input ended without the empty line: still one answer
  return 0;
}
