// Regression tests for src/courierfilter/control.ts found by test/fuzz-control.test.ts: where our
// reading of a control file differed from Courier's (libs/comctlfile.c) in the direction that
// matters (a recipient we call done that Courier still delivers to), a HELO that chose the
// client IP, and one slow regex.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ControlError, parseControl } from '../src/courierfilter/control.js';

const HEAD = 'sbob@example.org\nfdns; h ([10.0.0.1])\nM00000000000000AA.0000000065F0A1B2.00003039\n';
const RCPTS = 'ra@x\nR\nN\nrb@x\nR\nN\nrc@x\nR\nN\n';
const doneFlags = (bytes: Buffer): boolean[] => parseControl('/q/C1', bytes).recipients.map((r) => r.done);

test('a NUL in a control file is EBAD_CONTROL: Courier reads nothing after it, so a drop could not work', () => {
  // Courier reads the file as a C string. We read on past the NUL and called recipient 1 done
  // from an S record Courier never sees; and the records a drop appends would land after the
  // NUL too, unseen, so the recipients would still get the message. Refused, the request
  // tempfails instead.
  for (const bytes of [
    Buffer.from(`${HEAD}${RCPTS}\0\nS1 1700000000\n`, 'latin1'),
    Buffer.from(`${HEAD}${RCPTS}ORELAYCLIENT=\0\n`, 'latin1'),
    Buffer.from(`${HEAD}${RCPTS}\0`, 'latin1'),
    Buffer.from(`\0${HEAD}${RCPTS}`, 'latin1'),
  ]) {
    assert.throws(() => parseControl('/q/C1', bytes), (e: unknown) => {
      assert.ok(e instanceof ControlError);
      assert.equal(e.code, 'EBAD_CONTROL');
      assert.match(e.message, /^\/q\/C1: NUL byte at offset \d+/);
      return true;
    });
  }
});

test('an S/F index after a Unicode space or a BOM is not that index (Courier\'s atoi reads 0)', () => {
  // JavaScript's \s matched NBSP, U+2028 and U+FEFF, and the decoder dropped a leading BOM:
  // "S<NBSP>2" marked recipient 2 done where Courier marks recipient 0.
  for (const space of ['\u00a0', '\u2028', '\u3000', '\ufeff']) {
    for (const type of ['S', 'F']) {
      const bytes = Buffer.from(`${HEAD}${RCPTS}${type}${space}2 1700000000\n`, 'utf8');
      assert.deepEqual(doneFlags(bytes), [false, false, false], `${type}+U+${space.codePointAt(0)!.toString(16)}`);
    }
  }
  // C-locale blanks are what atoi() skips, and still count (a CR was already a space).
  for (const blank of [' ', '\t', '\v', '\f', '\r']) {
    assert.deepEqual(doneFlags(Buffer.from(`${HEAD}${RCPTS}S${blank}2 1700000000\n`, 'latin1')), [false, false, true], JSON.stringify(blank));
  }
});

test('a BOM at the start of a record value is kept as data', () => {
  const c = parseControl('/q/C1', Buffer.from(`${HEAD}r\ufeffa@x\n`, 'utf8'));
  assert.equal(c.recipients[0]!.address, '\ufeffa@x');
});

test('client IP from f is the [ip] Courier writes last, not an address literal in the HELO', () => {
  // "dns; HELO (RDNS [IP])": the first bracket used to win, so "EHLO [192.0.2.66]" chose the IP.
  const ctl = (f: string): string | undefined => parseControl('/q/C1', Buffer.from(`sbob@x\nf${f}\nM1\n`)).clientIp;
  assert.equal(ctl('dns; [192.0.2.66] (rdns.example [10.9.8.7])'), '10.9.8.7');
  assert.equal(ctl('dns; [192.0.2.66] ([::ffff:10.9.8.7])'), '10.9.8.7');
  assert.equal(ctl('dns; [192.0.2.66] (rdns.example)'), undefined, 'no trailing [ip]: unknown');
  assert.equal(ctl('dns; h (r [10.0.0.1]) trailing'), undefined, 'only the form Courier writes');
  assert.equal(ctl('dns; h (r [10.0.0.1])\r'), '10.0.0.1', 'a CR (now a space) at the end is fine');
});

test('a long run of "[" in the f record is parsed in linear time (was quadratic back-tracking)', () => {
  // 200 KB of "[" (within the 1 MiB default max_control_size, and the f record carries the
  // client's HELO) took about a minute; now milliseconds. The bound only catches the blow-up.
  const bytes = Buffer.from(`sbob@x\nfdns; ${'['.repeat(200_000)}\nM1\nra@x\n`);
  const t = performance.now();
  const c = parseControl('/q/C1', bytes);
  const ms = performance.now() - t;
  assert.equal(c.clientIp, undefined);
  assert.ok(ms < 2000, `parse took ${Math.round(ms)} ms`);
});
