/** What an ICAP answer means (verdict.ts): the infection headers of the draft and of vendors, and the never-clean-on-doubt rules. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseHead, type IcapHead } from '../src/engines/icap/protocol.js';
import { GENERIC_NAME, verdictOf } from '../src/engines/icap/verdict.js';

function head(text: string): IcapHead {
  const h = parseHead(text);
  assert.notEqual(typeof h, 'string', String(h));
  return h as IcapHead;
}

const ECHO_HEAD = 'HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\n';
const v = (status: string, headers: string[], o: { httpHead?: string; echoed?: boolean } = {}) =>
  verdictOf({ head: head([`ICAP/1.0 ${status}`, ...headers].join('\r\n')), httpHead: o.httpHead ?? '', echoed: o.echoed ?? false }, 'srv');

test('names from X-Infection-Found, X-Violations-Found, X-Virus-ID and the vendor headers; each name once', () => {
  assert.deepEqual(v('200 OK', ['X-Infection-Found: Type=0; Resolution=2; Threat=Eicar-Test-Signature;']), { status: 'infected', names: ['Eicar-Test-Signature'] });
  assert.deepEqual(v('200 OK', ['X-Violations-Found: 2', '\tdoc.zip', '\tW97M.A', '\t111', '\t0', '\ta.exe', '\tTrojan.B', '\t222', '\t2']), { status: 'infected', names: ['W97M.A', 'Trojan.B'] });
  assert.deepEqual(v('200 OK', ['X-Virus-ID: Vendor.Name', 'X-Infection-Found: Type=0; Resolution=2; Threat=Vendor.Name;']), { status: 'infected', names: ['Vendor.Name'] });
  assert.deepEqual(v('200 OK', ['X-Virus-Name: McAfee.Name']), { status: 'infected', names: ['McAfee.Name'] });
  assert.deepEqual(v('200 OK', ['X-FSecure-Scan-Result: infected', 'X-FSecure-Infection-Name: "FS.Name"']), { status: 'infected', names: ['"FS.Name"'] });
  assert.deepEqual(v('204 No Content', ['X-Infection-Found: Type=0; Resolution=2; Threat=Odd;']), { status: 'infected', names: ['Odd'] }, 'a name wins over 204');
});

test('a standard "blocked" signal without a name is the generic name; Type=2 is a scanner error', () => {
  for (const h of [['X-Violations-Found: 1'], ['X-Response-Info: blocked'], ['X-FSecure-Scan-Result: infected'], ['X-Infection-Found: Type=0; Resolution=2;']]) {
    assert.deepEqual(v('200 OK', h), { status: 'infected', names: [GENERIC_NAME] }, h[0]);
  }
  assert.deepEqual(v('200 OK', ['Encapsulated: res-hdr=0, res-body=40'], { httpHead: 'HTTP/1.1 403 Forbidden\r\nX-Blocked: virus\r\n\r\n' }), { status: 'infected', names: [GENERIC_NAME] });
  const t2 = v('200 OK', ['X-Infection-Found: Type=2; Resolution=0; Threat=Encrypted container;']);
  assert.equal(t2.status, 'error');
  assert.equal((t2 as { code: string }).code, 'ESCANNER');
});

test('clean only for 204 or an unchanged 200 echo; a replaced 200 without a name, 4xx, 5xx and 1xx/3xx are errors', () => {
  assert.deepEqual(v('204 No Content', []), { status: 'clean' });
  assert.deepEqual(v('200 OK', [], { httpHead: ECHO_HEAD, echoed: true }), { status: 'clean' });
  assert.deepEqual(v('200 OK', [], { httpHead: `GET /x HTTP/1.1\r\nHost: a\r\n\r\n${ECHO_HEAD}`, echoed: true }), { status: 'clean' }, 'with the request header first');
  assert.equal(v('200 OK', [], { httpHead: ECHO_HEAD, echoed: false }).status, 'error', 'a different body');
  assert.equal(v('200 OK', [], { httpHead: 'HTTP/1.1 403 Forbidden\r\n\r\n', echoed: true }).status, 'error', 'the same bytes under a 403');
  assert.equal(v('200 OK', ['X-Response-Info: passed'], { httpHead: ECHO_HEAD }).status, 'error');
  for (const [s, code] of [['400 Bad Request', 'ESCANNER'], ['500 Server error', 'ESCANNER'], ['539 License', 'ESCANNER'], ['302 Moved', 'EPROTOCOL']] as const) {
    const r = v(s, []);
    assert.equal(r.status, 'error', s);
    assert.equal((r as { code: string }).code, code, s);
    assert.match((r as { message: string }).message, new RegExp(`ICAP ${s.slice(0, 3)}`));
  }
});

test('names carry no control characters and are bounded', () => {
  const r = v('200 OK', [`X-Virus-ID: Evil\u0007Name${'x'.repeat(500)}`]);
  assert.equal(r.status, 'infected');
  const name = (r as { names: readonly string[] }).names[0]!;
  assert.ok(!/[\x00-\x1f]/.test(name));
  assert.ok(name.length <= 200);
});
