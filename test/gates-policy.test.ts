// The matchers behind [skip], [banned] and action.block_ip_seconds (src/policy/globs.ts,
// networks.ts, skip.ts, banned.ts, ip-blocks.ts): networks over IPv4, IPv6 and IPv4-mapped
// IPv6 in both directions, address and file-name globs against hostile subjects, every-recipient
// skipping, banned names and types, and the bounded table of blocked IPs.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { addressSubject, compileGlobList, compileGlobs, fileNameSubject, matchRecipients } from '../src/policy/globs.js';
import { canonicalIp, compileNetworks, NetworkError, parseNetwork } from '../src/policy/networks.js';
import { compileSkip, compileSkipSection } from '../src/policy/skip.js';
import { compileBanned, type BannedPart } from '../src/policy/banned.js';
import { blockableIp, BlockTable, ProcessBlocks } from '../src/policy/ip-blocks.js';
import { bufferSource, fileSource } from '../src/bytes/sources.js';
import { checkGates } from '../src/worker/gates.js';
import { compileGlob } from '../src/policy/glob-match.js';
import { parseControl } from '../src/courierfilter/control.js';

test('networks: IPv4, IPv6, single addresses, and IPv4-mapped IPv6 matched in both directions', () => {
  const m = compileNetworks(['192.0.2.0/24', '2001:db8::/32', '198.51.100.7', '::ffff:203.0.113.0/120'])!;
  for (const ip of ['192.0.2.1', '192.0.2.255', '::ffff:192.0.2.9', '::FFFF:c000:0209', '2001:db8::1', '2001:DB8:ffff::', '198.51.100.7', '203.0.113.40', '::ffff:203.0.113.40']) {
    assert.equal(m(ip), true, ip);
  }
  for (const ip of ['192.0.3.1', '192.0.1.255', '2001:db9::1', '198.51.100.8', '203.0.114.1', '::1', '127.0.0.1', '', 'junk', '192.0.2.1.example', '[192.0.2.1]', ' 192.0.2.1']) {
    assert.equal(m(ip), false, JSON.stringify(ip));
  }
  assert.equal(compileNetworks([]), undefined);
  assert.deepEqual(parseNetwork('10.0.0.0/8'), { address: '10.0.0.0', prefix: 8, family: 'ipv4' });
  assert.deepEqual(parseNetwork('::1'), { address: '::1', prefix: 128, family: 'ipv6' });
  for (const bad of ['example.com', '10.0.0.0/33', '2001:db8::/129', '10.0.0.0/x', '10.0.0/8', '/8', '']) {
    assert.throws(() => parseNetwork(bad), NetworkError, bad);
  }
  assert.throws(() => compileNetworks(['192.0.2.0/24', 'mx.example.com']), /not a network/);
});

test('canonical IPs: one spelling per client, mapped IPv4 unwrapped; loopback and no IP are never blocked', () => {
  assert.equal(canonicalIp('2001:DB8:0:0:0:0:0:1'), '2001:db8::1');
  assert.equal(canonicalIp('::ffff:192.0.2.7'), '192.0.2.7');
  assert.equal(canonicalIp('::FFFF:C000:0207'), '192.0.2.7');
  assert.equal(canonicalIp('fe80::1%eth0'), undefined);
  assert.equal(canonicalIp('nonsense'), undefined);
  for (const ip of [undefined, '', '127.0.0.1', '127.1.2.3', '::1', '::ffff:127.0.0.1', '0.0.0.0', '::', 'x']) assert.equal(blockableIp(ip), undefined, String(ip));
  assert.equal(blockableIp('::ffff:192.0.2.7'), '192.0.2.7');
});

test('address globs: case-insensitive, "*" across dots and slashes, brackets stripped, the null sender', () => {
  const m = compileGlobs(['*@example.com', 'postmaster@*'], 'address');
  for (const a of ['a@example.com', 'A@EXAMPLE.COM', '<Bob@Example.Com>', 'a/b@example.com', 'a.b+c@example.com', 'POSTMASTER@anything.test', '"quoted local"@example.com']) {
    assert.equal(m(a), true, a);
  }
  for (const a of ['a@example.com.evil', 'a@sub.example.com', 'a@example.org', '', 'example.com', 'a@example.comx', 'a@exаmple.com' /* Cyrillic а */]) {
    assert.equal(m(a), false, JSON.stringify(a));
  }
  assert.equal(compileGlobs(['*.example.com'], 'address')('a@b.example.com'), true, '"*" spans the @ too: the pattern is over the whole address');
  assert.equal(compileGlobs(['*@*.example.com'], 'address')('a@b.example.com'), true);
  assert.equal(compileGlobs(['a\\*b@x'], 'address')('a*b@x'), true, 'an escaped star is a star');
  assert.equal(compileGlobs(['a\\*b@x'], 'address')('axb@x'), false);
  assert.equal(compileGlobs(['!*@x'], 'address')('a@y'), false, 'no negation');
  assert.equal(compileGlobs(['{a,b}@x'], 'address')('a@x'), false, 'no braces');
  assert.equal(compileGlobs([], 'address')('a@x'), false);
  assert.equal(addressSubject('<>'), '');
  assert.equal(compileGlobList(['x@*', '*@example.com'], 'address')('x@example.com'), 'x@*', 'the first pattern that matches');
  assert.deepEqual(matchRecipients(['*@keep.test'], ['a@keep.test', 'b@drop.test', 'C@KEEP.TEST']), ['a@keep.test', 'C@KEEP.TEST']);
  assert.deepEqual(matchRecipients([], ['a@keep.test']), []);
});

test('the glob matcher agrees with a reference regex on 20,000 seeded random patterns and subjects', () => {
  // the reference: the same grammar as a backtracking regex (fine on short strings)
  const toRegex = (p: string): RegExp => {
    let out = '';
    for (let i = 0; i < p.length; i++) {
      const c = p[i]!;
      if (c === '*') out += '[\\s\\S]*';
      else if (c === '?') out += '[\\s\\S]';
      else if (c === '[') {
        const end = p.indexOf(']', i + 2);
        if (end === -1) out += '\\[';
        else {
          const body = p.slice(i + 1, end);
          out += body.startsWith('!') ? `[^${body.slice(1)}]` : `[${body}]`;
          i = end;
        }
      } else out += c.replace(/[.+^${}()|\\/]/g, '\\$&');
    }
    return new RegExp(`^${out}$`, 'iu');
  };
  let seed = 12345;
  const rnd = (n: number): number => {
    seed = (seed * 1103515245 + 12345) & 0x7fffffff;
    return seed % n;
  };
  const PAT = ['a', 'b', 'A', '.', '@', '/', '*', '?', '[ab]', '[!a]', '[a-c]', '['];
  const SUB = ['a', 'b', 'B', 'c', '.', '@', '/', '['];
  for (let k = 0; k < 20_000; k++) {
    const p = Array.from({ length: rnd(7) }, () => PAT[rnd(PAT.length)]).join('');
    const subj = Array.from({ length: rnd(9) }, () => SUB[rnd(SUB.length)]).join('');
    assert.equal(compileGlob(p)(subj), toRegex(p).test(subj), `pattern ${JSON.stringify(p)} subject ${JSON.stringify(subj)}`);
  }
  // escapes, "**", classes with ranges and a "-" or "]" of their own, non-BMP characters
  assert.equal(compileGlob('a\\?b')('a?b'), true);
  assert.equal(compileGlob('a\\?b')('axb'), false);
  assert.equal(compileGlob('a**b')('a/x/b'), true);
  assert.equal(compileGlob('[]x]')(']'), true);
  assert.equal(compileGlob('[a-]')('-'), true);
  assert.equal(compileGlob('[^0-9]x')('ax'), true);
  assert.equal(compileGlob('[^0-9]x')('5x'), false);
  assert.equal(compileGlob('?.exe')('\u{1F600}.exe'), true, 'one character is a code point');
  assert.equal(compileGlob('*.EXE')('ÄPFEL.exe'), true);
  assert.equal(compileGlob('')(''), true);
  assert.equal(compileGlob('')('a'), false);
});

test('globs do not backtrack: a hostile pattern against a long made-up address takes milliseconds', () => {
  // A regex-compiling matcher turns "*a*a*a*a*a*b" into nested lazy stars: against 5,000 "a"s
  // that is hours of backtracking in one worker. minimatch's matcher is linear in the subject.
  const m = compileGlobs(['*a*a*a*a*a*b', '*@*@*@*@*.test'], 'address');
  const t0 = performance.now();
  assert.equal(m('a'.repeat(5000)), false);
  assert.equal(m(`${'@'.repeat(5000)}x`), false);
  assert.equal(m(`${'a@'.repeat(3000)}x.tes`), false);
  assert.ok(performance.now() - t0 < 2000, `took ${performance.now() - t0} ms`);
});

test('file names: the last component, case-insensitive, double extensions, Windows trailing dots and spaces, invisible characters', () => {
  const m = compileGlobList(['*.exe', '*.pdf.scr', 'autorun.inf'], 'filename');
  const cases: Array<[string, string | undefined]> = [
    ['setup.exe', '*.exe'], ['SETUP.EXE', '*.exe'], ['invoice.pdf.exe', '*.exe'], ['.exe', '*.exe'],
    ['docs/a.exe', '*.exe'], ['..\\..\\a.exe', '*.exe'], ['a.exe.', '*.exe'], ['a.exe . .', '*.exe'],
    ['a.e\u200bxe', '*.exe'], ['a\u202e.exe', '*.exe'], ['report.PDF.scr', '*.pdf.scr'], ['AutoRun.INF', 'autorun.inf'],
    ['a.exe.txt', undefined], ['a.ex', undefined], ['exe', undefined], ['a.exe/', undefined], ['report.scr', undefined], ['', undefined],
  ];
  for (const [name, want] of cases) assert.equal(m(name), want, JSON.stringify(name));
  assert.equal(fileNameSubject('dir/sub\\x.exe. '), 'x.exe');
  // a long name keeps its extension
  assert.equal(m(`${'a'.repeat(5000)}.exe`), '*.exe');
});

const part = (p: Partial<BannedPart> & { bytes?: Buffer }): BannedPart => ({
  path: p.path ?? '2', contentType: p.contentType ?? 'application/octet-stream', filename: p.filename, container: p.container,
  source: p.source ?? bufferSource(p.bytes ?? Buffer.from('plain text\n')),
});

test('[banned] names: MIME parts and container members by name; the first hit names file, path and rule', async () => {
  const check = compileBanned({ names: ['*.exe', '*.pdf.*'], types: [] })!;
  const signal = new AbortController().signal;
  assert.equal(await check([part({ filename: 'a.txt' }), part({ path: '3' })], signal), undefined);
  assert.deepEqual(await check([part({ filename: 'a.txt' }), part({ path: '3', filename: 'Invoice.PDF.js' })], signal), { name: 'Invoice.PDF.js', path: '3', rule: 'name "*.pdf.*"' });
  const member = part({ path: '2/invoice.zip/docs/setup.EXE', filename: 'setup.EXE', container: 'zip' });
  assert.deepEqual(await check([part({ filename: 'invoice.zip' }), member], signal), { name: 'setup.EXE', path: '2/invoice.zip/docs/setup.EXE', rule: 'name "*.exe"' });
  assert.equal(compileBanned({ names: [], types: [] }), undefined, 'an empty section is no check at all');
  const aborted = AbortSignal.abort(new Error('deadline'));
  await assert.rejects(check([member], aborted), /deadline/);
});

test('[banned] types: detected from the bytes (an .exe renamed .txt, declared text/plain), declared types, globs over types', async () => {
  const mz = Buffer.alloc(512);
  mz.write('MZ');
  const signal = new AbortController().signal;
  const byMime = compileBanned({ names: [], types: ['application/x-msdownload'] })!;
  assert.deepEqual(await byMime([part({ filename: 'notes.txt', contentType: 'text/plain', bytes: mz })], signal),
    { name: 'notes.txt', path: '2', rule: 'type application/x-msdownload (detected, "application/x-msdownload")' });
  assert.equal(await byMime([part({ filename: 'notes.txt', contentType: 'text/plain' })], signal), undefined);
  const byExt = compileBanned({ names: [], types: ['EXE'] })!;
  assert.match((await byExt([part({ path: '2/a.zip/x', filename: 'x', container: 'zip', bytes: mz })], signal))!.rule, /detected, "EXE"/);
  // from a file-backed part too (large parts live in tmpdir)
  const dir = mkdtempSync(join(tmpdir(), 'avf-banned-'));
  writeFileSync(join(dir, 'p'), mz);
  assert.ok(await byExt([part({ source: fileSource(join(dir, 'p'), mz.length) })], signal));
  const declared = compileBanned({ names: [], types: ['application/x-sh', 'application/java*'] })!;
  assert.match((await declared([part({ contentType: 'application/x-sh' })], signal))!.rule, /^type application\/x-sh \(declared/);
  assert.match((await declared([part({ contentType: 'application/java-archive' })], signal))!.rule, /"application\/java\*"/);
  // a member's type is its placeholder, never "declared"
  assert.equal(await declared([part({ contentType: 'application/x-sh', container: 'zip' })], signal), undefined);
});

test('[skip]: networks, authentication (the i record, not u=authsmtp), senders, and only when every pending recipient matches', () => {
  const env = { sender: 'bob@partner.test', clientIp: '192.0.2.7', authUser: undefined };
  assert.equal(compileSkip({ networks: [], authenticated: false, senders: [], recipients: [] }), undefined, 'nothing skipped: no rule at all');
  const nets = compileSkip({ networks: ['192.0.2.0/24'], authenticated: false, senders: [], recipients: [] })!;
  assert.equal(nets(env, ['a@x']), 'client 192.0.2.7 in skip.networks');
  assert.equal(nets({ ...env, clientIp: '::ffff:192.0.2.7' }, ['a@x']), 'client ::ffff:192.0.2.7 in skip.networks');
  assert.equal(nets({ ...env, clientIp: undefined }, ['a@x']), undefined);
  assert.equal(nets(env, []), undefined, 'nobody pending: nothing to skip for');

  const auth = compileSkip({ networks: [], authenticated: true, senders: [], recipients: [] })!;
  const real = parseControl('/q/C', Buffer.from('ssender@example.test\nfdns; c ([::ffff:127.0.0.1])\nM1\nrsink@harness.test\nR\nN\nORELAYCLIENT=\nOTCPREMOTEIP=::ffff:127.0.0.1\nuauthsmtp\n'));
  assert.equal(real.source, 'authsmtp');
  assert.equal(auth({ ...env, authUser: real.authUser }, ['a@x']), undefined, 'a relaying client is not an authenticated one');
  assert.equal(auth({ ...env, authUser: 'alice' }, ['a@x']), 'authenticated as alice (skip.authenticated)');
  assert.equal(auth({ ...env, authUser: ' ' }, ['a@x']), undefined);

  const senders = compileSkip({ networks: [], authenticated: false, senders: ['*@PARTNER.test'], recipients: [] })!;
  assert.match(senders(env, ['a@x'])!, /sender <bob@partner.test> in skip.senders/);
  assert.equal(senders({ ...env, sender: '' }, ['a@x']), undefined);

  const rcpts = compileSkip({ networks: [], authenticated: false, senders: [], recipients: ['*@nofilter.test', 'abuse@*'] })!;
  assert.equal(rcpts(env, ['a@nofilter.test', 'ABUSE@example.test']), 'every recipient in skip.recipients (2)');
  assert.equal(rcpts(env, ['a@nofilter.test', 'b@filtered.test']), undefined, 'one recipient not covered: the whole message is scanned');
});

test('the gates: a blocked IP is 451 before the sender and recipient rules, but never in skip networks', () => {
  const control = (ip: string, extra = '') => parseControl('/q/C', Buffer.from(`sbob@partner.test\nfdns; c ([${ip}])\nM1\nra@x.test\nR\nN\nrb@x.test\nR\nN\nS1 1\n${extra}`));
  const c = control('192.0.2.7');
  const env = { queueId: '1', sender: 'bob@partner.test', recipients: 2, pending: 1, clientIp: c.clientIp };
  const blocks = new ProcessBlocks(10);
  const skip = compileSkipSection({ networks: ['198.51.100.0/24'], authenticated: false, senders: ['*@partner.test'], recipients: [] });
  assert.deepEqual(checkGates(env, [c], undefined, { skip, blocks }), { kind: 'skipped', reason: 'sender <bob@partner.test> in skip.senders ("*@partner.test")' });
  blocks.block('::ffff:192.0.2.7', 60);
  assert.deepEqual(checkGates(env, [c], undefined, { skip, blocks }), { kind: 'blocked', ip: '192.0.2.7' });
  assert.deepEqual(checkGates(env, [c], undefined, { skip: undefined, blocks }), { kind: 'blocked', ip: '192.0.2.7' });
  const inNet = { ...env, clientIp: '198.51.100.9' };
  blocks.block('198.51.100.9', 60);
  assert.deepEqual(checkGates(inNet, [c], undefined, { skip, blocks }), { kind: 'skipped', reason: 'client 198.51.100.9 in skip.networks' });
  assert.equal(checkGates({ ...env, clientIp: '192.0.2.8', sender: 'x@y' }, [c], undefined, { skip, blocks }), undefined);
});

test('the block table: bounded, the oldest block out first, a renewed block is the newest, later ends win, expiry', () => {
  const t = new BlockTable(3);
  const now = 1_000_000;
  assert.equal(t.add('192.0.2.1', now + 10_000, now), '192.0.2.1');
  assert.equal(t.add('::ffff:192.0.2.2', now + 10_000, now), '192.0.2.2');
  assert.equal(t.add('2001:DB8::1', now + 10_000, now), '2001:db8::1');
  assert.equal(t.add('192.0.2.1', now + 20_000, now), '192.0.2.1', 'renewed');
  assert.equal(t.add('192.0.2.1', now + 15_000, now), undefined, 'an earlier end does not shorten a block');
  assert.equal(t.add('192.0.2.4', now + 10_000, now), '192.0.2.4');
  assert.equal(t.size, 3);
  assert.equal(t.blockedUntil('192.0.2.2', now), undefined, 'the oldest went first');
  assert.equal(t.blockedUntil('192.0.2.1', now), now + 20_000, 'the renewed one stayed');
  assert.equal(t.blockedUntil('2001:db8:0::1', now), now + 10_000);
  assert.equal(t.blockedUntil('192.0.2.4', now + 10_000), undefined, 'ends at its time');
  assert.deepEqual(t.snapshot(now + 10_000), [['192.0.2.1', now + 20_000]]);
  for (const ip of ['127.0.0.1', '::1', '', 'garbage', '::ffff:127.0.0.2']) assert.equal(t.add(ip, now + 10_000, now), undefined, ip);
  assert.equal(t.add('192.0.2.9', now - 1, now), undefined, 'a block already over');
  t.resize(1);
  assert.equal(t.size, 1);

  let clock = 5_000;
  const shared: Array<[string, number]> = [];
  const p = new ProcessBlocks(100, (ip, until) => shared.push([ip, until]), () => clock);
  assert.deepEqual(p.block('::ffff:192.0.2.7', 2), { ip: '192.0.2.7', until: 7_000 });
  assert.equal(p.block('127.0.0.1', 2), undefined);
  assert.equal(p.block(undefined, 2), undefined);
  assert.deepEqual(shared, [['192.0.2.7', 7_000]]);
  p.apply([['198.51.100.1', 9_000], ['bad' as string, 1], [42 as unknown as string, 9_000]]);
  assert.equal(p.blockedUntil('198.51.100.1'), 9_000);
  clock = 7_000;
  assert.equal(p.blockedUntil('192.0.2.7'), undefined);
});
