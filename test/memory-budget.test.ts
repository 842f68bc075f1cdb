/**
 * Process-wide memory bounds: 16 concurrent 60 MB messages must not multiply the worker's
 * memory. The MIME extractor keeps small parts in memory only within the worker's
 * memory_budget, and the embedded engine hands file-backed items to YARA-X by path (never read
 * into the heap and copied to a thread), with the bytes in flight to its threads capped.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DEFAULT_MIME_LIMITS, MemoryPool, extractParts, MessageInput } from '../src/mime/index.js';
import { attachment, message, multipart, pseudoRandom, textPart } from './helpers/mail.js';
import { daemonEnv, stopDaemon, workerPids } from './helpers/daemon-env.js';
import { talk } from './helpers/avfilter-proc.js';

test('memory budget: parts beyond the process-wide pool go to tmpdir, and every byte comes back at dispose', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'avf-membudget-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const pool = new MemoryPool(1024 * 1024);
  const limits = { ...DEFAULT_MIME_LIMITS, memoryPool: pool };
  const files: string[] = [];
  for (let i = 0; i < 4; i++) {
    const parts = Array.from({ length: 6 }, (_, j) => attachment(pseudoRandom(300_000, i * 10 + j + 1), { cte: 'base64', filename: `a${j}.bin`, contentType: 'application/octet-stream' }));
    const p = join(dir, `m${i}.eml`);
    await writeFile(p, message(multipart([textPart('hi'), ...parts])));
    files.push(p);
  }
  let peak = 0;
  const sampler = setInterval(() => { peak = Math.max(peak, pool.inUse); }, 1);
  const ex = await Promise.all(files.map((path) => extractParts(MessageInput.fromFile(path), { limits, tmpdir: dir })));
  clearInterval(sampler);
  peak = Math.max(peak, pool.inUse);
  assert.ok(peak <= pool.capacity, `pool held ${peak} bytes`);
  const parts = ex.flatMap((e) => e.parts).filter((p) => p.size >= 300_000);
  assert.equal(parts.length, 24);
  const onDisk = parts.filter((p) => p.source.path !== undefined).length;
  assert.ok(onDisk >= 24 - 3, `${onDisk} of 24 large parts on disk with a 1 MiB pool`);
  for (const e of ex) await e.dispose();
  assert.equal(pool.inUse, 0, 'everything given back');
});

function rssOf(pids: number[]): number {
  let kb = 0;
  for (const p of pids) {
    try {
      kb += Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${p}/status`, 'utf8'))?.[1] ?? 0);
    } catch {
      // exited
    }
  }
  return kb * 1024;
}

test('memory: 16 concurrent 20 MB messages with the embedded engine stay far below the old 2.4 GB', async () => {
  const env = daemonEnv('request_timeout = 300\n[[engine]]\ntype = "yara"\nmax_scan_size = "64M"');
  const body = message(multipart([textPart('hi'), attachment(pseudoRandom(20 * 1024 * 1024, 7), { cte: 'base64', filename: 'big.bin', contentType: 'application/octet-stream' })]));
  const reqs = Array.from({ length: 16 }, () => env.request(body));
  const d = await env.up();
  try {
    const tree = (): number[] => [d.child.pid!, ...workerPids(d.child.pid!)];
    let peak = 0;
    const sampler = setInterval(() => { peak = Math.max(peak, rssOf(tree())); }, 20);
    const replies = await Promise.all(reqs.map((r) => talk(env.sock, r.line, { timeoutMs: 300_000 })));
    clearInterval(sampler);
    for (const r of replies) assert.match(r.reply, /^200 /);
    const MB = 1024 * 1024;
    console.log(`peak RSS of master + workers: ${Math.round(peak / MB)} MB for 16 x ${Math.round(body.length / MB)} MB`);
    assert.ok(peak < 900 * MB, `peak RSS ${Math.round(peak / MB)} MB`);
    await new Promise((r) => setTimeout(r, 1000));
    const idle = rssOf(tree());
    assert.ok(idle < 600 * MB, `idle RSS ${Math.round(idle / MB)} MB`);
  } finally {
    await stopDaemon(d);
  }
});
