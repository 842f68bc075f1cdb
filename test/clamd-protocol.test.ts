/**
 * The clamd codec (framing, reply parser, reply classifier), server address parsing and the
 * mail-prefix decision: pure code, no clamd. Parser input is split at every byte offset.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Readable } from 'node:stream';
import { parseServer, formatServer } from '../src/engines/clamd/address.js';
import { DATA_PREFIX, HEAD_BYTES, looksLikeMail, MAIL_PREFIX, outside, prefixedSource, presentRaw, readHead, type PiecedSource } from '../src/engines/clamd/raw-message.js';
import {
  classifyReply, encodeCommand, endOfStream, frameChunk, frameHeader, MAX_CHUNK_BYTES, MAX_VIRUS_NAME_BYTES, REPLY_MAX_BYTES,
  REPLY_MAX_TOTAL_BYTES, ReplyParser, resultFromReplies,
} from '../src/engines/clamd/protocol.js';
import { bufferSource } from '../src/bytes/sources.js';

test('commands are z-prefixed and NUL-terminated', () => {
  assert.deepEqual(encodeCommand('INSTREAM'), Buffer.from('7a494e53545245414d00', 'hex'));
  assert.equal(encodeCommand('PING').toString('latin1'), 'zPING\0');
  assert.equal(encodeCommand('VERSION').toString('latin1'), 'zVERSION\0');
});

test('chunk framing: 4-byte big-endian length, then the bytes; zero length ends the stream', () => {
  assert.deepEqual(frameHeader(68), Buffer.from([0, 0, 0, 0x44]));
  assert.deepEqual(frameHeader(0x01020304), Buffer.from([1, 2, 3, 4]));
  assert.deepEqual(frameHeader(MAX_CHUNK_BYTES), Buffer.from([0xff, 0xff, 0xff, 0xff]));
  assert.deepEqual(frameChunk(Buffer.from('abc')), Buffer.from([0, 0, 0, 3, 0x61, 0x62, 0x63]));
  assert.deepEqual(endOfStream(), Buffer.from([0, 0, 0, 0]));
  assert.throws(() => frameHeader(MAX_CHUNK_BYTES + 1), RangeError);
  assert.throws(() => frameHeader(-1), RangeError);
  assert.throws(() => frameHeader(1.5), RangeError);
  assert.throws(() => frameChunk(Buffer.alloc(0)), RangeError, 'an empty chunk would end the stream early');
});

/** Feeds `input` to a fresh parser in the given pieces. */
function parse(pieces: Buffer[]): { lines: string[]; partial: string } {
  const p = new ReplyParser();
  const lines: string[] = [];
  for (const piece of pieces) lines.push(...p.push(piece));
  return { lines, partial: p.partial };
}

const PARSER_CASES: { input: string; lines: string[]; partial: string }[] = [
  { input: 'stream: OK\0', lines: ['stream: OK'], partial: '' },
  { input: 'stream: Some.Name-1.UNOFFICIAL FOUND\0', lines: ['stream: Some.Name-1.UNOFFICIAL FOUND'], partial: '' },
  { input: 'INSTREAM size limit exceeded. ERROR\0', lines: ['INSTREAM size limit exceeded. ERROR'], partial: '' },
  { input: 'COMMAND READ TIMED OUT\n', lines: ['COMMAND READ TIMED OUT'], partial: '' },
  { input: 'COMMAND READ TIMED OUT\0', lines: ['COMMAND READ TIMED OUT'], partial: '' },
  { input: 'stream: A FOUND\0stream: B FOUND\0', lines: ['stream: A FOUND', 'stream: B FOUND'], partial: '' },
  { input: 'COMMAND READ TIMED OUT\nstream: OK\0', lines: ['COMMAND READ TIMED OUT', 'stream: OK'], partial: '' },
  { input: 'stream: OK', lines: [], partial: 'stream: OK' },
  { input: 'stream: OK\0trailing', lines: ['stream: OK'], partial: 'trailing' },
  { input: 'other text\nstream: OK', lines: [], partial: 'other text\nstream: OK' },
  { input: '\0', lines: [''], partial: '' },
];

test('reply parser: same lines whether the input comes whole, split at any offset, or byte by byte', () => {
  for (const c of PARSER_CASES) {
    const bytes = Buffer.from(c.input, 'latin1');
    assert.deepEqual(parse([bytes]), { lines: c.lines, partial: c.partial }, `whole ${JSON.stringify(c.input)}`);
    for (let i = 0; i <= bytes.length; i++) {
      assert.deepEqual(parse([bytes.subarray(0, i), bytes.subarray(i)]), { lines: c.lines, partial: c.partial },
        `${JSON.stringify(c.input)} split at ${i}`);
    }
    for (let i = 0; i <= bytes.length; i++) {
      for (let j = i; j <= bytes.length; j++) {
        assert.deepEqual(parse([bytes.subarray(0, i), bytes.subarray(i, j), bytes.subarray(j)]).lines, c.lines,
          `${JSON.stringify(c.input)} split at ${i} and ${j}`);
      }
    }
    const single = [...bytes].map((b) => Buffer.from([b]));
    assert.deepEqual(parse(single), { lines: c.lines, partial: c.partial }, `${JSON.stringify(c.input)} byte by byte`);
  }
});

test('reply parser: a line longer than REPLY_MAX_BYTES without terminator overflows and stops', () => {
  const p = new ReplyParser();
  assert.deepEqual(p.push(Buffer.alloc(REPLY_MAX_BYTES, 0x41)), []);
  assert.equal(p.overflowed, false);
  assert.deepEqual(p.push(Buffer.from('A')), []);
  assert.equal(p.overflowed, true);
  assert.deepEqual(p.push(Buffer.from('\0stream: OK\0')), [], 'nothing is parsed after an overflow');
});

test('reply parser: a line over REPLY_MAX_BYTES overflows even when it arrives whole with its NUL', () => {
  // It used to be returned whole when its NUL came in the same chunk, and overflow only when
  // it came in pieces: the bound and the outcome depended on the chunking.
  const long = Buffer.concat([Buffer.from('stream: OK\0'), Buffer.alloc(REPLY_MAX_BYTES + 1, 0x41), Buffer.from('\0stream: OK\0')]);
  for (const pieces of [[long], [long.subarray(0, 20_000), long.subarray(20_000)]]) {
    const p = new ReplyParser();
    const lines = pieces.flatMap((b) => p.push(b));
    assert.deepEqual(lines, ['stream: OK'], 'the lines before it, nothing from it on');
    assert.equal(p.overflowed, true);
  }
  const atBound = new ReplyParser();
  assert.deepEqual(atBound.push(Buffer.concat([Buffer.alloc(REPLY_MAX_BYTES, 0x41), Buffer.from('\0')])), ['A'.repeat(REPLY_MAX_BYTES)]);
  assert.equal(atBound.overflowed, false, 'exactly REPLY_MAX_BYTES is allowed');
});

test('reply parser: short lines past REPLY_MAX_TOTAL_BYTES overflow instead of piling up', () => {
  // A peer sending NULs without end made the exchange collect empty lines until its deadline.
  const p = new ReplyParser();
  let lines = 0;
  for (let i = 0; i < 64 && !p.overflowed; i++) lines += p.push(Buffer.alloc(16 * 1024)).length;
  assert.equal(p.overflowed, true);
  assert.equal(lines, REPLY_MAX_TOTAL_BYTES, 'every line within the bound, none past it');
  const ok = new ReplyParser();
  assert.equal(ok.push(Buffer.alloc(REPLY_MAX_TOTAL_BYTES)).length, REPLY_MAX_TOTAL_BYTES);
  assert.equal(ok.overflowed, false, 'exactly REPLY_MAX_TOTAL_BYTES is allowed');
  assert.deepEqual(ok.push(Buffer.from('x')), []);
  assert.equal(ok.overflowed, true, 'one byte more is not');
});

test('classifier: FOUND with a control character, non-ASCII or an over-long name is EPROTOCOL, not a name', () => {
  // These used to become virus names as they came (only whitespace was refused), on their way
  // to the X-Virus-Found header, the quarantine record and the logs.
  for (const name of ['A\x1bB', 'Evil\x7f', 'Na\u0085me', 'Na\u202eme', 'Nämé', '\ufffd', 'N'.repeat(MAX_VIRUS_NAME_BYTES + 1)]) {
    const r = classifyReply(`stream: ${name} FOUND`);
    assert.equal(r.kind === 'error' && r.code, 'EPROTOCOL', JSON.stringify(name.slice(0, 20)));
  }
  assert.deepEqual(classifyReply(`stream: ${'N'.repeat(MAX_VIRUS_NAME_BYTES)} FOUND`), { kind: 'infected', name: 'N'.repeat(MAX_VIRUS_NAME_BYTES) });
  assert.deepEqual(classifyReply('stream: (null) FOUND'), { kind: 'infected', name: '(null)' }, 'clamd\'s known odd name stays a detection');
  assert.deepEqual(classifyReply('stream: Eicar-Signature(44d88612fea8a8f36de82e1278abb02f:68) FOUND'),
    { kind: 'infected', name: 'Eicar-Signature(44d88612fea8a8f36de82e1278abb02f:68)' });
});

test('classifier: only the exact "stream: OK" is clean', () => {
  assert.deepEqual(classifyReply('stream: OK'), { kind: 'clean' });
  const notClean = ['stream: OK ', ' stream: OK', 'stream: ok', 'stream:OK', 'stream: OK\n', 'OK', 'PONG', '',
    'stream: OK.', 'fd[5]: OK', 'stream: OKAY', 'UNKNOWN COMMAND', 'COMMAND UNAVAILABLE'];
  for (const line of notClean) {
    const r = classifyReply(line);
    assert.notEqual(r.kind, 'clean', JSON.stringify(line));
  }
  // Every truncation and every single-byte change of the clean reply is not clean.
  const ok = 'stream: OK';
  for (let i = 0; i < ok.length; i++) {
    assert.notEqual(classifyReply(ok.slice(0, i)).kind, 'clean');
    for (const ch of ['x', ' ', '\0', ':', 'K']) {
      const mutated = ok.slice(0, i) + ch + ok.slice(i + 1);
      if (mutated !== ok) assert.notEqual(classifyReply(mutated).kind, 'clean', JSON.stringify(mutated));
    }
  }
});

test('classifier: FOUND gives the name, parsed from the right', () => {
  assert.deepEqual(classifyReply('stream: Win.Test.EICAR_HDB-1 FOUND'), { kind: 'infected', name: 'Win.Test.EICAR_HDB-1' });
  assert.deepEqual(classifyReply('stream: X.UNOFFICIAL FOUND'), { kind: 'infected', name: 'X.UNOFFICIAL' });
  assert.deepEqual(classifyReply('/a: b/c: Name FOUND'), { kind: 'infected', name: 'Name' });
  for (const bad of ['stream:  FOUND', 'stream: FOUND', 'FOUND', ' FOUND', 'stream: two words FOUND', 'Name FOUND']) {
    const r = classifyReply(bad);
    assert.equal(r.kind, 'error', JSON.stringify(bad));
    assert.equal(r.kind === 'error' && r.code, 'EPROTOCOL', JSON.stringify(bad));
  }
});

test('classifier: errors carry stable codes', () => {
  const codeOf = (line: string): string | undefined => {
    const r = classifyReply(line);
    return r.kind === 'error' ? r.code : undefined;
  };
  assert.equal(codeOf('INSTREAM size limit exceeded. ERROR'), 'ESIZE_LIMIT');
  assert.equal(codeOf("stream: Can't allocate memory ERROR"), 'ESCANNER');
  assert.equal(codeOf('Error writing to temporary file ERROR'), 'ESCANNER');
  assert.equal(codeOf('COMMAND READ TIMED OUT'), 'ESCANNER');
  assert.equal(codeOf('UNKNOWN COMMAND'), 'EPROTOCOL');
  assert.equal(codeOf('ERROR'), 'EPROTOCOL');
  assert.equal(codeOf('I am a teapot'), 'EPROTOCOL');
});

test('a whole reply: garbage poisons it, FOUND beats ERROR, only all-OK is clean', () => {
  assert.deepEqual(resultFromReplies(['stream: OK']), { status: 'clean' });
  assert.deepEqual(resultFromReplies(['stream: OK', 'stream: OK']), { status: 'clean' });
  assert.equal(resultFromReplies([]).status, 'error');
  assert.deepEqual(resultFromReplies(['stream: A FOUND', 'stream: B FOUND', 'stream: A FOUND']),
    { status: 'infected', names: ['A', 'B'] });
  assert.deepEqual(resultFromReplies(['stream: OK', 'stream: A FOUND']), { status: 'infected', names: ['A'] });
  assert.deepEqual(resultFromReplies(['stream: A FOUND', "stream: Can't read file ERROR"]), { status: 'infected', names: ['A'] });
  const mixed = resultFromReplies(['stream: OK', "stream: Can't read file ERROR"]);
  assert.equal(mixed.status === 'error' && mixed.code, 'ESCANNER');
  const garbage = resultFromReplies(['stream: A FOUND', 'hello']);
  assert.equal(garbage.status === 'error' && garbage.code, 'EPROTOCOL');
  const garbageOk = resultFromReplies(['stream: OK', 'hello']);
  assert.equal(garbageOk.status === 'error' && garbageOk.code, 'EPROTOCOL');
});

test('parseServer: accepted forms', () => {
  assert.deepEqual(parseServer('unix:/run/clamav/clamd.ctl'), { kind: 'unix', path: '/run/clamav/clamd.ctl' });
  assert.deepEqual(parseServer('/run/clamav/clamd.ctl'), { kind: 'unix', path: '/run/clamav/clamd.ctl' });
  assert.deepEqual(parseServer('tcp:127.0.0.1:3310'), { kind: 'tcp', host: '127.0.0.1', port: 3310 });
  assert.deepEqual(parseServer('tcp:clamd.example.test:1'), { kind: 'tcp', host: 'clamd.example.test', port: 1 });
  assert.deepEqual(parseServer('tcp:[::1]:65535'), { kind: 'tcp', host: '::1', port: 65535 });
  assert.deepEqual(parseServer('tcp:[2001:db8::5]:3310'), { kind: 'tcp', host: '2001:db8::5', port: 3310 });
  for (const s of ['unix:/a/b', 'tcp:127.0.0.1:3310', 'tcp:[::1]:3310']) assert.equal(formatServer(parseServer(s)), s);
  assert.equal(formatServer(parseServer('/a/b')), 'unix:/a/b');
});

test('parseServer: bad forms throw EBADSERVER saying what is expected', () => {
  const bad = ['', 'clamd.ctl', 'unix:relative/path', 'unix:', 'tcp:127.0.0.1', 'tcp:127.0.0.1:0',
    'tcp:127.0.0.1:65536', 'tcp:127.0.0.1:33x', 'tcp::3310', 'tcp:::1:3310', 'tcp:[::1]3310', 'tcp:[nope]:3310',
    'tcp:[127.0.0.1]:3310', 'udp:1.2.3.4:5', `/${'a'.repeat(120)}`, 'tcp:bad_host!:3310', 'tcp:127.0.0.1:-1'];
  for (const s of bad) {
    assert.throws(() => parseServer(s), (err: NodeJS.ErrnoException) => {
      assert.equal(err.code, 'EBADSERVER', s);
      assert.match(err.message, /expected unix:\/absolute\/path, \/absolute\/path, tcp:host:port or tcp:\[ipv6-address\]:port/);
      return true;
    }, s);
  }
});

test('mail magic: known mail starts pass unprefixed, anything else gets the prefix', () => {
  for (const s of ['Received: from x', 'From sender Mon', 'Return-Path: <a@b>', 'Delivered-To: a@b', 'Date: Mon',
    'Subject: hi', 'To: a@b', 'Message-ID: <1@b>', '>From x']) {
    assert.equal(looksLikeMail(Buffer.from(s)), true, s);
  }
  for (const s of ['DKIM-Signature: v=1', 'X-Foo: bar', 'received: from x', 'From: a@b', 'Received:x', '', 'PK\x03\x04',
    'Subject:', 'To:a']) {
    assert.equal(looksLikeMail(Buffer.from(s, 'latin1')), false, JSON.stringify(s));
  }
  assert.ok(HEAD_BYTES >= 'X-Envelope-From: '.length);
  assert.equal(MAIL_PREFIX.toString('latin1'), 'Received: from avfilter (localhost)\n');
  assert.equal(looksLikeMail(MAIL_PREFIX), true, 'the prefix itself must be a mail start');
});

test('prefixedSource: size counts the prefix; stream and buffer give prefix + bytes', async () => {
  const body = Buffer.from('DKIM-Signature: x\n\nbody\n');
  const src = prefixedSource(MAIL_PREFIX, bufferSource(body));
  assert.equal(src.size, MAIL_PREFIX.length + body.length);
  const parts: Buffer[] = [];
  for await (const c of src.stream()) parts.push(c as Buffer);
  assert.deepEqual(Buffer.concat(parts), Buffer.concat([MAIL_PREFIX, body]));
  assert.deepEqual(await src.buffer(), Buffer.concat([MAIL_PREFIX, body]));
  // in memory: the pieces are the prefix and the body itself (no copy), the joined bytes on demand
  assert.equal(src.pieces?.length, 2);
  assert.equal(src.pieces?.[0], MAIL_PREFIX);
  assert.equal(src.pieces?.[1], body, 'the body is sent from where it is, not copied');
  assert.deepEqual(src.bytes, Buffer.concat([MAIL_PREFIX, body]));
  assert.equal(prefixedSource(MAIL_PREFIX, { size: 3, stream: () => Readable.from([Buffer.from('abc')]), buffer: async () => Buffer.from('abc') }).pieces, undefined);
  assert.deepEqual(await readHead(bufferSource(body), 4), Buffer.from('DKIM'));
  assert.deepEqual(await readHead(bufferSource(Buffer.from('ab')), 10), Buffer.from('ab'));
  assert.deepEqual(await readHead(bufferSource(Buffer.alloc(0)), 10), Buffer.alloc(0));
});

test('raw_message "text": the decoded bodies are left out, as views of the message (no copy); ranges that are not sorted, disjoint and inside it leave nothing out', async () => {
  const msg = Buffer.from('HEAD\n\nAAAA\n--b\nBBBB\n--b--\n');
  const a = msg.indexOf('AAAA');
  const b = msg.indexOf('BBBB');
  const src = bufferSource(msg);
  const text = (await presentRaw(src, 'text', [[a, a + 4], [b, b + 4]])) as PiecedSource;
  assert.deepEqual(await text.buffer(), Buffer.concat([DATA_PREFIX, Buffer.from('HEAD\n\n\n--b\n\n--b--\n')]));
  assert.equal(text.size, DATA_PREFIX.length + msg.length - 8);
  const parts: Buffer[] = [];
  for await (const c of text.stream()) parts.push(c as Buffer);
  assert.deepEqual(Buffer.concat(parts), await text.buffer());
  assert.ok(text.pieces!.slice(1).every((p) => p.buffer === msg.buffer), 'a piece was copied');
  // a body at either end
  assert.deepEqual(outside(msg, [[0, 4], [msg.length - 3, msg.length]])?.map(String), ['\n\nAAAA\n--b\nBBBB\n--b']);
  // whole, as "data" sends it: no ranges, bad ranges, a message not in memory, and the other modes
  const whole = Buffer.concat([DATA_PREFIX, msg]);
  for (const bad of [[[b, b + 4], [a, a + 4]], [[a, a + 6], [a + 2, a + 8]], [[a, msg.length + 1]], [[a, a]], [[-1, 2]], [[1.5, 3]]] as Array<Array<[number, number]>>) {
    assert.equal(outside(msg, bad), undefined, JSON.stringify(bad));
    assert.deepEqual(await (await presentRaw(src, 'text', bad)).buffer(), whole, JSON.stringify(bad));
  }
  assert.deepEqual(await (await presentRaw(src, 'text', undefined)).buffer(), whole);
  assert.deepEqual(await (await presentRaw(src, 'text', [])).buffer(), whole);
  const onDisk = { size: msg.length, stream: () => Readable.from([msg]), buffer: async () => msg };
  assert.deepEqual(await (await presentRaw(onDisk, 'text', [[a, a + 4]])).buffer(), whole, 'a message not in memory is sent whole');
  assert.deepEqual(await (await presentRaw(src, 'data', [[a, a + 4]])).buffer(), whole, '"data" leaves nothing out');
  assert.deepEqual(await (await presentRaw(src, 'mail', [[a, a + 4]])).buffer(), Buffer.concat([MAIL_PREFIX, msg]), '"mail" leaves nothing out');
});
