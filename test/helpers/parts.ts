/**
 * A message's parts as the standard MIME reading decodes them (path -> bytes), to compare what
 * an effect left of a message with what was sent, part by part.
 */
import { mkdirSync } from 'node:fs';
import { extractParts, MessageInput, DEFAULT_MIME_LIMITS } from '../../src/mime/index.js';

/** `work`: a directory for spilled parts (made 0700 when missing). */
export async function standardParts(bytes: Buffer, work: string): Promise<Map<string, Buffer>> {
  mkdirSync(work, { recursive: true, mode: 0o700 });
  const x = await extractParts(MessageInput.fromBuffer(bytes), { limits: DEFAULT_MIME_LIMITS, tmpdir: work });
  try {
    const out = new Map<string, Buffer>();
    for (const p of x.parts) if (p.reading === 'standard') out.set(p.path, await p.source.buffer());
    return out;
  } finally {
    await x.dispose();
  }
}
