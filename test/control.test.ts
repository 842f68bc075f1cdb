// Tests for src/courierfilter/control.ts and control-io.ts: parsing real Courier control files,
// per-file recipient numbering and done-ness, the exact records markDelivered appends, and
// how each file-system failure is reported.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { chmod, mkdtemp, open, readFile, rm, stat, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { ControlError, parseControl, summarize, type ControlFile } from '../src/courierfilter/control.js';
import {
  DEFAULT_DROP_REASON,
  appendRecord,
  markDelivered,
  readBounded,
  readControlFile,
} from '../src/courierfilter/control-io.js';

const FIXTURES = fileURLToPath(new URL('../../test/fixtures/courier/', import.meta.url));
const CONTROL_IO_JS = fileURLToPath(new URL('../src/courierfilter/control-io.js', import.meta.url));
const fixture = (name: string): Buffer => readFileSync(join(FIXTURES, name));
const MAX = 1024 * 1024;

async function tempDir(t: { after(fn: () => Promise<void>): void }): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'avf-control-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

function codeOf(err: unknown): string | undefined {
  return (err as { code?: string } | undefined)?.code;
}

const rejectsWith = (p: Promise<unknown>, code: string): Promise<void> =>
  assert.rejects(p, (e: unknown) => {
    assert.ok(e instanceof ControlError, `ControlError, got ${String(e)}`);
    assert.equal(e.code, code, e.message);
    return true;
  });

test('01 clean: sender, queue id, one recipient, IP unwrapped, source authsmtp', () => {
  const c = parseControl('/q/ctl', fixture('01-clean-control1'));
  assert.equal(c.path, '/q/ctl');
  assert.equal(c.sender, 'sender@example.test');
  assert.equal(c.queueId, '000000000016A031.000000006B019110.00002AB4');
  assert.equal(c.fromMta, 'dns; client.example.test ([::ffff:127.0.0.1])');
  assert.equal(c.helo, 'client.example.test');
  assert.equal(c.clientIp, '127.0.0.1');
  assert.equal(c.source, 'authsmtp');
  assert.equal(c.authUser, undefined);
  assert.deepEqual(c.env, { RELAYCLIENT: '', TCPREMOTEIP: '::ffff:127.0.0.1' });
  assert.deepEqual(c.recipients, [{ index: 0, address: 'sink@harness.test', orcpt: '', notify: '', done: false }]);
});

test('03 DSN: null sender, ORCPT and NOTIFY per recipient', () => {
  const c = parseControl('/q/ctl', fixture('03-dsn-nullsender-3rcpt-dots-control1'));
  assert.equal(c.sender, '');
  assert.equal(c.queueId, '000000000016A031.000000006B019110.00002AC0');
  assert.equal(c.clientIp, '127.0.0.1');
  assert.deepEqual(c.recipients, [
    { index: 0, address: 'sink@harness.test', orcpt: 'orig@harness.test', notify: 'SF', done: false },
    { index: 1, address: 'sink-ext@harness.test', orcpt: 'orig@harness.test', notify: 'SF', done: false },
  ]);
});

test('04: 100 recipients numbered 0..99 in file order', () => {
  const c = parseControl('/q/ctl', fixture('04-100-recipients-control1'));
  assert.equal(c.queueId, '000000000016A034.000000006B019110.00002AC4');
  assert.equal(c.recipients.length, 100);
  c.recipients.forEach((r, i) => {
    assert.equal(r.index, i);
    assert.equal(r.address, `sink-${String(i).padStart(3, '0')}@harness.test`);
    assert.equal(r.done, false);
  });
  assert.deepEqual(summarize([c]), {
    queueId: c.queueId,
    sender: 'sender@example.test',
    recipients: 100,
    pending: 100,
    clientIp: '127.0.0.1',
    source: 'authsmtp',
  });
});

test('05 and CR handling: CR becomes a space, a last line without LF still counts', () => {
  const c = parseControl('/q/ctl', fixture('05-rejected-by-filter-control1'));
  assert.equal(c.queueId, '000000000016A033.000000006B019110.00002ACC');
  assert.equal(c.recipients.length, 1);
  const crlf = parseControl('/x', Buffer.from('sa@b\r\nMID\r\nrone\r\nrtwo'));
  assert.equal(crlf.sender, 'a@b ');
  assert.deepEqual(
    crlf.recipients.map((r) => r.address),
    ['one ', 'two'],
  );
});

test('client IP and HELO: TCPREMOTEIP first, else the [ip] in f; junk is unknown, not guessed', () => {
  const ctl = (...lines: string[]): ControlFile => parseControl('/x', Buffer.from(['s', 'MID', ...lines, ''].join('\n')));
  assert.equal(ctl('fdns; h ([::ffff:10.1.2.3])').clientIp, '10.1.2.3');
  assert.equal(ctl('fdns; h (rdns.example [192.0.2.7])').clientIp, '192.0.2.7');
  assert.equal(ctl('fdns; h ([10.0.0.1])', 'OTCPREMOTEIP=::FFFF:192.0.2.1').clientIp, '192.0.2.1');
  assert.equal(ctl('fdns; h ([10.0.0.1])', 'OTCPREMOTEIP=2001:db8::1').clientIp, '2001:db8::1');
  assert.equal(ctl('fdns; h ([10.0.0.1])', 'OTCPREMOTEIP=not-an-ip').clientIp, undefined);
  assert.equal(ctl('fdns; h ([999.1.1.1])').clientIp, undefined);
  assert.equal(ctl('funknown; uucp (host)').clientIp, undefined);
  assert.equal(ctl('fdns; localhost (localhost [127.0.0.1])').helo, 'localhost');
  assert.equal(ctl('funknown; uucp (host)').helo, undefined);
  assert.equal(ctl('fdns; ([1.2.3.4])').helo, undefined);
  assert.equal(ctl().clientIp, undefined);
  const env = ctl('O__proto__=x', 'OA=1', 'OA=2', 'OB').env;
  assert.deepEqual(Object.keys(env), ['__proto__', 'A', 'B']);
  assert.equal(env['A'], '1');
  assert.equal(env['B'], '');
  assert.equal(Object.getPrototypeOf(env), Object.prototype, 'O__proto__ did not change the prototype');
});

test('not a control file: EBAD_CONTROL', () => {
  for (const bytes of ['', '\n\n', 'MID\nra@b\n', 'sa@b\nra@b\n', fixture('01-clean-request.json').toString()]) {
    assert.throws(() => parseControl('/x', Buffer.from(bytes)), (e: unknown) => codeOf(e) === 'EBAD_CONTROL');
  }
  assert.throws(() => summarize([]), (e: unknown) => codeOf(e) === 'ENO_CONTROL');
});

// Two control files of one message (C<ino>.1, C<ino>.2): numbering restarts in each file.
const FILE1 = [
  'sbob@example.org',
  'fdns; laptop (host.example.org [::ffff:192.0.2.7])',
  'e',
  't',
  'M00000000000000AA.0000000065F0A1B2.00003039',
  'ralice@example.com',
  'Rrfc822;alice@example.com',
  'NF',
  'ralias-done@example.com',
  'R',
  'N',
  'I1 R 250 Ok - delivered to alias.',
  'S1 1700000000 r',
  'rcarol@example.net',
  'R',
  'NS',
  'ibob@example.org',
  'ORELAYCLIENT=',
  'uauthsmtp',
  'E1711234567',
  '',
].join('\n');
const FILE2 = [
  'sbob@example.org',
  'fdns; laptop (host.example.org [::ffff:192.0.2.7])',
  'e',
  't',
  'M00000000000000BB.0000000065F0A1B2.00003039',
  'rdave@example.com',
  'R',
  'N',
  'rerin@example.com',
  'R',
  'N',
  'F0 1700000001',
  'D1 1700000002',
  'Sxyz',
  'S7 1700000003',
  'ibob@example.org',
  'uauthsmtp',
  '',
].join('\n');

test('hand-made two-file message: per-file indices; S and F complete, D does not', () => {
  const f1 = parseControl('/q/C1.1', Buffer.from(FILE1));
  const f2 = parseControl('/q/C1.2', Buffer.from(FILE2));
  assert.deepEqual(
    f1.recipients.map((r) => [r.index, r.address, r.orcpt, r.notify, r.done]),
    [
      [0, 'alice@example.com', 'rfc822;alice@example.com', 'F', false],
      [1, 'alias-done@example.com', '', '', true],
      [2, 'carol@example.net', '', 'S', false],
    ],
  );
  assert.deepEqual(
    f2.recipients.map((r) => [r.index, r.address, r.done]),
    [
      [0, 'dave@example.com', true],
      [1, 'erin@example.com', false],
    ],
  );
  assert.equal(f1.clientIp, '192.0.2.7', 'from f, unwrapped');
  assert.equal(f1.authUser, 'bob@example.org');
  assert.equal(f1.helo, 'laptop');
  assert.deepEqual(summarize([f1, f2]), {
    queueId: '00000000000000AA.0000000065F0A1B2.00003039',
    sender: 'bob@example.org',
    recipients: 5,
    pending: 3,
    authUser: 'bob@example.org',
    clientIp: '192.0.2.7',
    source: 'authsmtp',
  });
});

test('markDelivered appends exactly the I/S records for undone recipients, once', async (t) => {
  const dir = await tempDir(t);
  const p1 = join(dir, 'C1.1');
  const p2 = join(dir, 'C1.2');
  await writeFile(p1, FILE1);
  await writeFile(p2, FILE2);
  const f1 = await readControlFile(p1, MAX);
  const f2 = await readControlFile(p2, MAX);

  assert.equal(await markDelivered(f1, 'Ok - virus\r\nX-Injected: yes\x00', 1700000123), 2);
  assert.equal(await markDelivered(f2, '', 1700000124), 1);
  assert.equal(
    (await readFile(p1, 'latin1')).slice(FILE1.length),
    'I0 R Ok - virus X-Injected: yes\nS0 1700000123\nI2 R Ok - virus X-Injected: yes\nS2 1700000123\n',
  );
  assert.equal((await readFile(p2, 'latin1')).slice(FILE2.length), `I1 R ${DEFAULT_DROP_REASON}\nS1 1700000124\n`);
  assert.ok((await readFile(p1, 'latin1')).startsWith(FILE1), 'original bytes untouched');

  const again1 = await readControlFile(p1, MAX);
  const again2 = await readControlFile(p2, MAX);
  assert.ok([...again1.recipients, ...again2.recipients].every((r) => r.done), 'every recipient done after re-parse');
  assert.equal(summarize([again1, again2]).pending, 0);

  const before1 = await readFile(p1);
  const before2 = await readFile(p2);
  assert.equal(await markDelivered(again1, 'again', 1700000999), 0, 're-parsed value');
  assert.equal(await markDelivered(f2, 'again', 1700000999), 0, 'the value markDelivered already updated');
  assert.deepEqual(await readFile(p1), before1);
  assert.deepEqual(await readFile(p2), before2);
});

test('markDelivered on the 100-recipient sample marks all 100', async (t) => {
  const dir = await tempDir(t);
  const p = join(dir, 'ctl');
  await writeFile(p, fixture('04-100-recipients-control1'));
  const c = await readControlFile(p, MAX);
  assert.equal(await markDelivered(c, 'dropped', 1800000000), 100);
  const after = await readControlFile(p, MAX);
  assert.equal(after.recipients.length, 100);
  assert.ok(after.recipients.every((r) => r.done));
  const appended = (await readFile(p, 'latin1')).slice(fixture('04-100-recipients-control1').length);
  assert.equal(appended, Array.from({ length: 100 }, (_, i) => `I${i} R dropped\nS${i} 1800000000\n`).join(''));
});

test('markDelivered never creates a file, refuses non-files, validates nowSec', async (t) => {
  const dir = await tempDir(t);
  const c = parseControl(join(dir, 'missing'), Buffer.from(FILE1));
  await rejectsWith(markDelivered(c, 'x', 1), 'ENOENT');
  await assert.rejects(stat(join(dir, 'missing')), (e: unknown) => codeOf(e) === 'ENOENT');
  // Opening a directory O_WRONLY fails with EISDIR, reported as EIO.
  await rejectsWith(markDelivered({ ...c, path: dir }, 'x', 1), 'EIO');
  const p = join(dir, 'ctl');
  await writeFile(p, FILE1);
  for (const bad of [-1, 1.5, Number.NaN]) await rejectsWith(markDelivered({ ...c, path: p }, 'x', bad), 'EINVAL');
  assert.equal((await readFile(p, 'latin1')), FILE1, 'nothing written on bad arguments');
});

test('appendRecord: one write per record; a short write is ESHORT_WRITE', async () => {
  const calls: number[] = [];
  const full = {
    write: async (_b: Buffer, _o: number, l: number) => {
      calls.push(l);
      return { bytesWritten: l };
    },
  };
  await appendRecord(full, 'S0 1\n');
  assert.deepEqual(calls, [5]);
  const short = { write: async (_b: Buffer, _o: number, l: number) => ({ bytesWritten: l - 1 }) };
  await rejectsWith(appendRecord(short, 'S0 1\n'), 'ESHORT_WRITE');
});

test('readControlFile: ETOO_LARGE by fstat and while reading, at the exact bound', async (t) => {
  const dir = await tempDir(t);
  const big = join(dir, 'big');
  await writeFile(big, FILE1);
  await truncate(big, 10 * 1024 * 1024); // sparse 10 MB
  await rejectsWith(readControlFile(big, MAX), 'ETOO_LARGE');
  const exact = join(dir, 'exact');
  await writeFile(exact, FILE1);
  assert.equal((await readControlFile(exact, FILE1.length)).recipients.length, 3);
  await rejectsWith(readControlFile(exact, FILE1.length - 1), 'ETOO_LARGE');
  // fstat says 0 bytes for /dev/zero: only the bound on what read() returns stops it.
  const fh = await open('/dev/zero', 'r');
  try {
    await rejectsWith(readBounded(fh, 100_000), 'ETOO_LARGE');
  } finally {
    await fh.close();
  }
});

test('readControlFile: ENOENT, ENOTDIR mapped to ENOENT, non-files EIO, garbage EBAD_CONTROL', async (t) => {
  const dir = await tempDir(t);
  await rejectsWith(readControlFile(join(dir, 'nope'), MAX), 'ENOENT');
  // The parent is a regular file: the kernel says ENOTDIR; the path names no file, so ENOENT.
  const file = join(dir, 'plain');
  await writeFile(file, FILE1);
  await assert.rejects(readControlFile(join(file, 'child'), MAX), (e: unknown) => {
    assert.equal(codeOf(e), 'ENOENT');
    assert.equal(codeOf((e as Error).cause), 'ENOTDIR', 'cause kept');
    return true;
  });
  await rejectsWith(readControlFile(dir, MAX), 'EIO');
  // A FIFO would block open() without O_NONBLOCK; it must be refused promptly.
  const fifo = join(dir, 'fifo');
  execFileSync('mkfifo', [fifo]);
  await rejectsWith(readControlFile(fifo, MAX), 'EIO');
  const empty = join(dir, 'empty');
  await writeFile(empty, '');
  await rejectsWith(readControlFile(empty, MAX), 'EBAD_CONTROL');
  await rejectsWith(readControlFile(file, 0), 'EINVAL');
});

test('readControlFile: EACCES for an unreadable file', async (t) => {
  const dir = await tempDir(t);
  await chmod(dir, 0o755);
  const p = join(dir, 'secret');
  await writeFile(p, FILE1);
  await chmod(p, 0o000);
  if (process.getuid?.() !== 0) {
    await rejectsWith(readControlFile(p, MAX), 'EACCES');
    return;
  }
  // Root bypasses file permissions, so run the same call in a child as nobody (uid 65534).
  const script =
    `import(${JSON.stringify(pathToFileURL(CONTROL_IO_JS).href)})` +
    `.then((m) => m.readControlFile(${JSON.stringify(p)}, 1048576))` +
    `.then(() => console.log('READ'), (e) => console.log(e.code))`;
  const r = spawnSync(process.execPath, ['-e', script], { uid: 65534, gid: 65534, encoding: 'utf8', cwd: '/' });
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.stdout.trim(), 'EACCES');
});

/** A control file of `n` recipients, as submit writes one. */
function controlOf(n: number): string {
  const lines = ['ssender@example.test', 'fdns; x ([127.0.0.1])', 'e', 't', 'M0000000000000001.0000000000000002.00000003'];
  for (let i = 0; i < n; i++) lines.push(`rr${i}@example.test`, 'R', 'N');
  return `${lines.join('\n')}\n`;
}

test('full disk: a write that fails half way leaves no half record (the file is cut back to its size before)', async (t) => {
  const dir = await tempDir(t);
  const p = join(dir, 'C1');
  const before = controlOf(5000);
  await writeFile(p, before);
  const c = parseControl(p, Buffer.from(before));
  let writes = 0;
  // the second batch is cut short, as ENOSPC does: half a record lands, then the error
  const writer = (fh: import('node:fs/promises').FileHandle) => ({
    write: async (b: Buffer, o: number, l: number) => {
      if (++writes === 2) {
        await fh.write(b, o, Math.floor(l / 2), null);
        throw Object.assign(new Error('No space left on device'), { code: 'ENOSPC' });
      }
      return fh.write(b, o, l, null);
    },
  });
  await rejectsWith(markDelivered(c, 'dropped', 1700000000, { writer }), 'EIO');
  assert.equal(await readFile(p, 'utf8'), before, 'no record left behind, whole or half');
  assert.ok(c.recipients.every((r) => !r.done));
});

test('deadline: marking 120,000 recipients stops when the request is aborted and takes back what it wrote', async (t) => {
  const dir = await tempDir(t);
  const p = join(dir, 'C1');
  const before = controlOf(120_000);
  await writeFile(p, before);
  const c = parseControl(p, Buffer.from(before));
  const ctl = new AbortController();
  let writes = 0;
  const writer = (fh: import('node:fs/promises').FileHandle) => ({
    write: async (b: Buffer, o: number, l: number) => {
      if (++writes === 3) ctl.abort(); // the deadline passes while the records go out
      return fh.write(b, o, l, null);
    },
  });
  await rejectsWith(markDelivered(c, 'dropped', 1700000000, { signal: ctl.signal, writer }), 'EABORTED');
  assert.equal(writes, 3, 'no write after the abort');
  assert.equal((await stat(p)).size, Buffer.byteLength(before), 'records taken back');
});

test('markDelivered writes records in whole-record batches: 120,000 recipients, every I and S once', async (t) => {
  const dir = await tempDir(t);
  const p = join(dir, 'C1');
  await writeFile(p, controlOf(120_000));
  const c = parseControl(p, await readFile(p));
  assert.equal(await markDelivered(c, 'dropped', 1700000000), 120_000);
  const text = await readFile(p, 'utf8');
  const again = parseControl(p, Buffer.from(text));
  assert.equal(again.recipients.filter((r) => !r.done).length, 0);
  assert.equal(text.match(/^S\d+ 1700000000$/gm)?.length, 120_000);
  assert.equal(text.match(/^I\d+ R dropped$/gm)?.length, 120_000);
  assert.ok(text.endsWith('S119999 1700000000\n'));
});

test('control file replaced during the scan: the drop refuses the new file (ECHANGED) and writes nothing to it', async (t) => {
  const dir = await tempDir(t);
  const p = join(dir, 'C1');
  await writeFile(p, controlOf(2));
  const c = await readControlFile(p, MAX);
  const other = controlOf(3).replace('ssender@', 'sother@');
  await writeFile(`${p}.new`, other);
  const { rename } = await import('node:fs/promises');
  await rename(`${p}.new`, p);
  await rejectsWith(markDelivered(c, 'dropped', 1700000000), 'ECHANGED');
  assert.equal(await readFile(p, 'utf8'), other);
});
