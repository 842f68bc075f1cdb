/**
 * Encrypted PDFs (src/unpack/formats/pdf-crypt.ts): a PDF whose user password is empty opens
 * in every viewer without a question, so the scanner must see its streams decrypted (found by a
 * suite on another branch: qpdf --encrypt "" owner ... hid clam.exe). Real files: Debian's
 * clam.pdf encrypted here by Debian's qpdf with each Standard handler revision (R2 40-bit RC4,
 * R3 128-bit RC4, R4 AESV2, R5 and R6 AES-256), with object streams (the /ID and /Encrypt in an
 * xref stream's dictionary, which is itself not encrypted). A non-empty user password makes the
 * document `encrypted`, like an encrypted zip. Needs qpdf and clamav-testfiles (fails, never
 * skips, without them).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { unpackPdf } from '../src/unpack/formats/index.js';
import type { UnpackLimits, UnpackResult } from '../src/unpack/types.js';
import { deflateSync, pdf } from './helpers/documents.js';

const CLAM_PDF = '/usr/share/clamav-testfiles/clam.pdf';
const CLAM_EXE = readFileSync('/usr/share/clamav-testfiles/clam.exe');

const limits = (o: Partial<UnpackLimits> = {}): UnpackLimits => ({
  maxOutputBytes: 64 << 20, maxMembers: 1000, deadline: Date.now() + 5000, ...o,
});
const holding = (r: UnpackResult, bytes: Buffer): string[] => r.members.filter((m) => m.bytes.equals(bytes)).map((m) => m.name);

/**
 * clam.pdf encrypted by qpdf: `bits` and its encryption options ([bits, ...]) after --encrypt,
 * `general` (object streams) before it. clam.pdf's damaged xref makes qpdf warn: exit 3.
 */
function encrypted(user: string, [bits, ...opts]: string[], general: string[] = []): Buffer {
  const dir = mkdtempSync(join(tmpdir(), 'pdf-crypt-'));
  try {
    const out = join(dir, 'out.pdf');
    try {
      execFileSync('qpdf', ['--allow-weak-crypto', ...general, '--encrypt', user, 'owner-secret', bits!, ...opts, '--', CLAM_PDF, out],
        { stdio: ['ignore', 'ignore', 'pipe'] });
    } catch (err) {
      if ((err as { status?: number }).status !== 3) throw err;
    }
    return readFileSync(out);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const cases: [string, string[]][] = [
  ['40-bit RC4 (R2)', ['40']],
  ['128-bit RC4 (R3)', ['128', '--use-aes=n']],
  ['128-bit AES (R4, AESV2)', ['128', '--use-aes=y']],
  ['256-bit AES (R6, AESV3)', ['256']],
  ['256-bit AES (R5, AESV3)', ['256', '--force-R5']],
  ['128-bit AES, /EncryptMetadata false (its key takes 4 more bytes)', ['128', '--use-aes=y', '--cleartext-metadata']],
];

for (const [what, opts] of cases) {
  test(`pdf crypt: clam.pdf encrypted with an empty user password, ${what}, gives clam.exe under its own name`, () => {
    const file = encrypted('', opts);
    assert.ok(!file.includes(CLAM_EXE.subarray(0, 64)), 'qpdf left clam.exe in the clear');
    const r = unpackPdf(file, limits());
    assert.equal(r.outcome, 'ok', r.detail);
    assert.deepEqual(holding(r, CLAM_EXE), ['clam.exe']);
  });

  test(`pdf crypt: a user password (${what}) makes the document encrypted, its raw streams the members`, () => {
    const file = encrypted('secret', opts);
    const r = unpackPdf(file, limits());
    assert.equal(r.outcome, 'encrypted');
    assert.equal(r.detail, '[document]');
    assert.deepEqual(holding(r, CLAM_EXE), []);
    assert.ok(r.members.length >= 4);
  });
}

test('pdf crypt: with object streams the /ID and /Encrypt come from the xref stream, which is decoded without decryption', () => {
  for (const opts of [['128', '--use-aes=n'], ['128', '--use-aes=y']]) {
    const r = unpackPdf(encrypted('', opts, ['--object-streams=generate']), limits());
    assert.equal(r.outcome, 'ok', r.detail); // a decrypted xref stream would not inflate: corrupt
    assert.equal(holding(r, CLAM_EXE).length, 1, opts.join(' '));
  }
});

test('pdf crypt: an /Encrypt that resolves to nothing leaves decoding as it was; another handler is encrypted', () => {
  const plain = Buffer.from('a stream in the clear');
  const dangling = unpackPdf(pdf([{ num: 1, dict: '<< >>', data: plain }], '<< /Root 1 0 R /Encrypt 9 0 R >>'), limits());
  assert.equal(dangling.outcome, 'ok');
  assert.equal(holding(dangling, plain).length, 1);
  const pubsec = unpackPdf(pdf([
    { num: 1, dict: '<< >>', data: plain },
    { num: 9, dict: '<< /Filter /Adobe.PubSec /V 4 /R 4 /SubFilter /adbe.pkcs7.s5 >>' },
  ], '<< /Root 1 0 R /Encrypt 9 0 R >>'), limits());
  assert.equal(pubsec.outcome, 'encrypted');
  assert.equal(pubsec.detail, '[document]');
});

test('pdf crypt: hostile /Encrypt values (wrong string lengths, R 99, a huge /Length, nesting) never throw', () => {
  const dicts = [
    '<< /Filter /Standard /V 2 /R 3 /Length 99999 /O <00> /U <00> /P -4 >>',
    '<< /Filter /Standard /V 5 /R 6 /O <00> /U <00> /UE <00> /P -4 >>',
    '<< /Filter /Standard /V 5 /R 6 /CF << /StdCF << /CFM /AESV3 >> >> /StmF /StdCF /O <00> /U (' + 'x'.repeat(48) + ') /UE <00> /P -4 >>',
    '<< /Filter /Standard /V 4 /R 4 /CF << /StdCF << /CFM /Nope >> >> /StmF /StdCF >>',
    '<< /Filter /Standard /V 1 /R 99 >>',
    '<< /Filter /Standard /V 2 /R 3 /O (unterminated' ,
    '<< '.repeat(5000),
  ];
  for (const d of dicts) {
    const r = unpackPdf(pdf([{ num: 1, dict: '<< >>', data: Buffer.from('x') }, { num: 9, dict: d }], '<< /Root 1 0 R /Encrypt 9 0 R /ID [<00><00>] >>'), limits());
    assert.ok(['ok', 'encrypted'].includes(r.outcome), `${d.slice(0, 60)}: ${r.outcome} ${r.detail}`);
  }
});

test('pdf crypt: a stream whose own /Crypt filter is /Identity, and every stream under /StmF /Identity, is read in the clear', () => {
  const plain = Buffer.from('stored in the clear inside an encrypted document '.repeat(4));
  const clear = Buffer.from(`99 0 obj\n<< /Filter [/Crypt /FlateDecode] /DecodeParms [<< /Name /Identity >> null] >>\nstream\n`, 'latin1');
  const tail = (f: Buffer): Buffer => Buffer.concat([f, clear, deflateSync(plain), Buffer.from('\nendstream\nendobj\n')]);
  const file = encrypted('', ['256']);
  const r = unpackPdf(tail(file), limits());
  assert.equal(r.outcome, 'ok', r.detail);
  assert.equal(holding(r, CLAM_EXE).length, 1); // the others are still decrypted
  assert.equal(holding(r, plain).length, 1);
  // /StmF /Identity: no stream is decrypted (clam.exe stays ciphertext), the clear one decodes.
  const identity = Buffer.from(file.toString('latin1').replace('/StmF /StdCF', '/StmF /Identity'), 'latin1');
  assert.notDeepEqual(identity, file);
  const r2 = unpackPdf(tail(identity), limits());
  assert.equal(holding(r2, CLAM_EXE).length, 0);
  assert.equal(holding(r2, plain).length, 1);
});

test('pdf crypt: planted /Encrypt and /ID keys with unclosed strings cost a bounded scan, not one to the end of the file each', () => {
  for (const body of ['/Encrypt <'.repeat(100000), ('/Encrypt << /O (' + 'a'.repeat(50)).repeat(10000), ('/ID [ <' + '0'.repeat(60)).repeat(10000)]) {
    const file = Buffer.concat([pdf([{ num: 1, dict: '<< >>', data: Buffer.from('x') }]), Buffer.from(body, 'latin1')]);
    const r = unpackPdf(file, limits({ deadline: Date.now() + 4000 }));
    assert.equal(r.outcome, 'ok', r.detail); // not `time`: a hang would pass the deadline
  }
});

test('pdf crypt: an /Encrypt planted outside the trailer does not turn streams stored in the clear into garbage', () => {
  // a valid Standard security dictionary for the empty password, made by qpdf, copied into a
  // plain PDF as an ordinary object and referenced from a non-trailer dictionary: viewers show
  // the streams as stored, so the scanner must see them so too
  const dir = mkdtempSync(join(tmpdir(), 'pdf-planted-'));
  try {
    const tiny = join(dir, 'tiny.pdf');
    const out = join(dir, 'enc.pdf');
    execFileSync('sh', ['-c', `printf '%%PDF-1.4\\n1 0 obj\\n<< /Type /Catalog >>\\nendobj\\ntrailer\\n<< /Root 1 0 R >>\\n%%%%EOF\\n' > ${tiny}`]);
    try {
      execFileSync('qpdf', ['--allow-weak-crypto', '--object-streams=disable', '--encrypt', '', 'owner', '40', '--', tiny, out], { stdio: ['ignore', 'ignore', 'pipe'] });
    } catch (err) {
      if ((err as { status?: number }).status !== 3) throw err;
    }
    const enc = readFileSync(out, 'latin1');
    const dict = /<<\s*\/Filter\s*\/Standard[^]*?>>/.exec(enc)![0];
    const id = /\/ID\s*\[[^\]]*\]/.exec(enc)![0];
    const payload = Buffer.concat([Buffer.from('padding '.repeat(20)), CLAM_EXE]);
    const file = pdf([
      { num: 1, dict: '<< /Type /Catalog >>' },
      { num: 2, dict: `<< /Length ${deflateSync(payload).length} /Filter /FlateDecode >>`, data: deflateSync(payload) },
      { num: 3, dict: `<< /Length ${payload.length} >>`, data: payload },
      { num: 4, dict },
      { num: 5, dict: '<< /Note (planted) /Encrypt 4 0 R >>' },
    ], `<< /Root 1 0 R ${id} >>`);
    const r = unpackPdf(file, limits());
    assert.ok(r.members.filter((m) => m.bytes.includes(CLAM_EXE)).length >= 2, `members: ${r.members.map((m) => m.name).join(', ')}`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
