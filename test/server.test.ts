import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { connect, createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConnectionHandler, type Service, type ServerOptions } from '../src/courierfilter/server.js';

async function serve(service: Service, opts: Partial<ServerOptions> = {}): Promise<{ path: string; server: Server; handler: ConnectionHandler; events: string[] }> {
  const events: string[] = [];
  const handler = new ConnectionHandler(service, {
    maxLineBytes: 4096, maxLines: 10, readTimeoutMs: 5000, requestTimeoutMs: 5000, backstopMs: 500,
    onEvent: (e) => events.push(e), ...opts,
  });
  const path = join(mkdtempSync(join(tmpdir(), 'avf-server-')), 's');
  const server = createServer({ allowHalfOpen: true }, handler.handle);
  await new Promise<void>((r) => server.listen(path, r));
  return { path, server, handler, events };
}

function ask(path: string, text: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = connect(path);
    let data = '';
    s.on('data', (d) => { data += d.toString(); });
    s.on('close', () => resolve(data));
    s.on('error', reject);
    s.write(text);
  });
}

test('a reply that cannot be formatted is answered 451, never left waiting', async () => {
  const { path, server, events } = await serve(async () => ({ code: 999, text: 'not a code' }));
  try {
    assert.match(await ask(path, '/d\n/c\n\n'), /^451 4\.3\.0 Internal error/);
    assert.ok(events.includes('internal-error'));
  } finally {
    server.close();
  }
});

test('a service that never answers: 451 at the deadline plus the backstop, and its signal says overdue', async () => {
  let reason: unknown;
  const { path, server } = await serve((_req, call) => new Promise(() => {
    call.signal.addEventListener('abort', () => { reason = call.signal.reason; });
  }), { requestTimeoutMs: 300, backstopMs: 200 });
  try {
    const t0 = Date.now();
    assert.match(await ask(path, '/d\n/c\n\n'), /^451 /);
    assert.ok(Date.now() - t0 >= 450, `answered after ${Date.now() - t0} ms`);
    assert.equal(reason, 'overdue');
  } finally {
    server.close();
  }
});

test('a connection closed before any byte is counted, not logged', async () => {
  const { path, server, handler, events } = await serve(async () => ({ code: 200, text: 'Ok' }));
  try {
    await Promise.all(Array.from({ length: 20 }, () => new Promise<void>((r) => {
      const s = connect(path, () => s.end());
      s.on('close', () => r());
    })));
    await new Promise((r) => setTimeout(r, 100));
    assert.equal(handler.emptyConnections, 20);
    assert.deepEqual(events, []);
  } finally {
    server.close();
  }
});
