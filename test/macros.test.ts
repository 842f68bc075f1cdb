// Tests for src/policy/macros.ts: templates are checked when loaded, and nothing a sender
// controls (virus names come from the message too: a name is whatever the engine printed)
// reaches a reply, a header or a notice as it was written.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  LINE_MACROS,
  MAX_HEADERS_CHARS,
  MAX_LIST_ITEMS,
  MAX_REPLY_BYTES,
  NOTICE_MACROS,
  checkTemplate,
  escapeValue,
  expandTemplate,
  foldHeader,
  type MacroValues,
} from '../src/policy/macros.js';
import { formatReply } from '../src/courierfilter/reply.js';

const plain: MacroValues = {
  names: ['Eicar-Test-Signature', 'Win.Test.EICAR_HDB-1'],
  sender: 'alice@example.com',
  recipients: ['bob@example.org', 'carol@example.org'],
  queueId: '0000ABCD.5F2A.1234',
  clientIp: '192.0.2.7',
  headers: 'From: alice@example.com\r\nSubject: hello\r\n\tthere\r\n',
  files: ['eicar.com', 'docs/readme.txt'],
};

/** The hostile values: header injection, NUL, ESC sequences, bidi overrides, C1 NEL, U+2028, a lone surrogate, 10 KB. */
const CRLF = 'evil\r\nBcc: victim@example.net\r\n\r\n250 ok';
const ESC = 'name\u001b[2J\u001b]0;title\u0007';
const BIDI = 'invoice\u202egpj.exe';
const NUL = 'a\u0000b';
const MISC = 'x\u0085y\u2028z\ud800w\u200bq\u00ad';
const HUGE = 'A'.repeat(10 * 1024);
const hostile: MacroValues = {
  names: [CRLF, ESC, BIDI, NUL, MISC, HUGE],
  sender: CRLF,
  recipients: [ESC, BIDI],
  queueId: NUL,
  clientIp: MISC,
  headers: `Subject: ${CRLF}\r\nX-Evil: ${ESC}${BIDI}\r\n`,
  files: [HUGE, BIDI, CRLF],
};

const ALL = '%v|%s|%r|%q|%i|%f|%h|%%';

test('checkTemplate: known macros pass, an unknown one or a lone % is named', () => {
  assert.equal(checkTemplate('Virus %v from %s to %r (%q, %i, %f) 100%%', LINE_MACROS), undefined);
  assert.equal(checkTemplate('%h', NOTICE_MACROS), undefined);
  assert.equal(checkTemplate('', LINE_MACROS), undefined);
  const unknown = checkTemplate('found %v at %x', LINE_MACROS);
  assert.match(unknown ?? '', /unknown macro %x/);
  assert.match(unknown ?? '', /at character 13/);
  assert.match(checkTemplate('headers: %h', LINE_MACROS) ?? '', /%h \(not allowed here\)/);
  assert.match(checkTemplate('50%', LINE_MACROS) ?? '', /lone "%" at the end/);
  assert.match(checkTemplate('%\n', LINE_MACROS) ?? '', /"%" followed by \\x0a/);
  assert.equal(checkTemplate('%%x', LINE_MACROS), undefined, '%% then a plain x');
  assert.match(checkTemplate('%v', ['s']) ?? '', /unknown macro %v/, 'an iterable of letters');
});

test('expand: every macro, %%, empty values and lists', () => {
  assert.equal(
    expandTemplate('%v / %s / %r / %q / %i / %f / 100%%', plain, 'reply'),
    'Eicar-Test-Signature, Win.Test.EICAR_HDB-1 / alice@example.com / bob@example.org, carol@example.org / 0000ABCD.5F2A.1234 / 192.0.2.7 / eicar.com, docs/readme.txt / 100%',
  );
  assert.equal(expandTemplate('from %s to %r: %v %f %i', { sender: '', recipients: [] }, 'reply'), 'from <> to -: - - -');
  assert.equal(expandTemplate('%%v %x %', plain, 'reply'), '%v %x %', 'unchecked unknown macros stay as written');
  assert.equal(expandTemplate('4.3.0 scan failed (%e)', { reason: 'clamd: timeout\r\n' }, 'reply'), '4.3.0 scan failed (clamd: timeout)');
  assert.equal(expandTemplate('%a', { action: 'drop' }, 'text'), 'drop');
  const many = expandTemplate('%r', { recipients: Array.from({ length: MAX_LIST_ITEMS + 7 }, (_, i) => `r${i}@x`) }, 'text');
  assert.match(many, /r49@x, \+7 more$/);
  assert.equal(expandTemplate('%h', plain, 'text'), 'From: alice@example.com\nSubject: hello\n\tthere');
});

test('reply: one line of printable ASCII within the bound, whatever the values', () => {
  const out = expandTemplate(`5.7.1 rejected: ${ALL}`, hostile, 'reply');
  assert.match(out, /^[\x20-\x7e]+$/);
  assert.ok(out.length <= MAX_REPLY_BYTES, `length ${out.length}`);
  assert.ok(out.endsWith('...'), 'cut is marked');
  assert.ok(!out.includes('  '));
  const one = expandTemplate('%s', { sender: CRLF }, 'reply');
  assert.equal(one, 'evil Bcc: victim@example.net 250 ok');
  assert.equal(expandTemplate('%v', { names: [BIDI, ESC] }, 'reply'), 'invoice?gpj.exe, name [2J ]0;title');
  assert.equal(expandTemplate('%q', { queueId: NUL }, 'reply'), 'a b');
  // The reply writer adds nothing back: the expanded text is one well-formed line.
  const reply = formatReply(550, expandTemplate('%v', hostile, 'reply')).toString('latin1');
  assert.match(reply, /^550 [\x20-\x7e]+\n$/);
  assert.equal(expandTemplate('%v', plain, 'reply', { maxLength: 10 }), 'Eicar-T...');
});

test('header: one line, foldHeader folds at spaces under 78 and adds no header of its own', () => {
  const v = expandTemplate(ALL, hostile, 'header');
  assert.match(v, /^[\x20-\x7e]+$/);
  assert.ok(v.length <= 900);
  const folded = foldHeader('X-Virus-Found', expandTemplate('%v', hostile, 'header'));
  const lines = folded.split('\n').slice(0, -1);
  assert.match(lines[0]!, /^X-Virus-Found: /);
  for (const l of lines.slice(1)) assert.match(l, /^ \S/, 'continuation lines start with a space');
  for (const l of lines) assert.match(l, /^[\x20-\x7e]+$/);
  // A long word cannot be folded; short ones are.
  assert.ok(lines.filter((l) => !l.includes('AAAAAAAAAA')).every((l) => l.length <= 78));
  assert.ok(!/\nBcc:/i.test(folded), 'no injected header line');
  assert.equal(foldHeader('X-A', 'b\r\nX-B: c', '\r\n'), 'X-A: b X-B: c\r\n');
});

test('text: values show hostile characters escaped, never raw; %h keeps its lines only', () => {
  const out = expandTemplate(`Virus: %v\nFrom: %s\nTo: %r\nQueue: %q\nIP: %i\nFiles: %f\n\n%h\n`, hostile, 'text');
  // No raw control other than LF/TAB, no bidi, no U+2028, no lone surrogate, no CR at all.
  assert.doesNotMatch(out, /[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u200b\u202e\u2028\u00ad\r]/);
  assert.doesNotMatch(out, /[\ud800-\udfff]/);
  const lines = out.split('\n');
  // The single-line values stay on their line: an injected "Bcc:" cannot start a line.
  assert.deepEqual(lines.slice(0, 7).map((l) => l.replace(/:.*/, '')), ['Virus', 'From', 'To', 'Queue', 'IP', 'Files', '']);
  assert.match(out, /From: evil\\x0d\\x0aBcc: victim@example.net\\x0d\\x0a\\x0d\\x0a250 ok\n/);
  assert.match(out, /invoice\\u202egpj\.exe/);
  assert.match(out, /name\\x1b\[2J\\x1b\]0;title\\x07/);
  assert.match(out, /Queue: a\\x00b\n/);
  assert.match(out, /IP: x\\x85y\\u2028z\\ud800w\\u200bq\\xad\n/);
  // 10 KB values are cut.
  assert.ok(!out.includes('A'.repeat(600)));
  assert.match(out, /A{512}\.\.\./);
  // %h: the header lines are there, CRLF made LF, the controls in them escaped.
  assert.match(out, /\nX-Evil: name\\x1b\[2J/);
  assert.match(out, /\nSubject: evil\nBcc: victim@example\.net\n/, 'the headers as they came, one per line (the notice is text, not a header block)');
});

test('text: %h is bounded, and the template text keeps its lines with CR LF normalised', () => {
  const big = `Received: ${'x'.repeat(100)}\n`.repeat(1000);
  const out = expandTemplate('a\r\nb\rc\u0000d\te\n%h', { headers: big }, 'text');
  assert.ok(out.startsWith('a\nb\ncd\te\n'), JSON.stringify(out.slice(0, 20)));
  assert.match(out, /\[\.\.\. headers cut at 16384 characters\]$/);
  assert.ok(out.length < MAX_HEADERS_CHARS + 200);
  const total = expandTemplate('%h'.repeat(10), { headers: big }, 'text', { maxLength: 1000 });
  assert.equal(total.length, 1000);
  assert.ok(total.endsWith('...'));
});

test('escapeValue: the same rules one value at a time', () => {
  assert.equal(escapeValue(CRLF, 'reply'), 'evil Bcc: victim@example.net 250 ok');
  assert.equal(escapeValue(BIDI, 'text'), 'invoice\\u202egpj.exe');
  assert.equal(escapeValue('caf\u00e9', 'text'), 'caf\u00e9', 'printable non-ASCII stays in a UTF-8 notice');
  assert.equal(escapeValue('caf\u00e9', 'header'), 'caf?');
});

test('expansion of huge values stays fast (bounded before the regexes)', () => {
  const giant: MacroValues = { names: Array.from({ length: 1000 }, () => 'B'.repeat(1 << 20 >> 4)), sender: 'C'.repeat(1 << 22) };
  const t0 = process.hrtime.bigint();
  for (const mode of ['reply', 'header', 'text'] as const) expandTemplate('%v %s', giant, mode);
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  assert.ok(ms < 500, `${ms} ms`);
});
