/**
 * Decompression bombs through `avfilter -t` with the embedded engine: a zip of 2 GiB of zeros,
 * 42.zip-style nesting (5 levels of 16 copies), gzip / bzip2 / xz of 1 GiB of zeros and a zip
 * of 20,000 tiny members, each attached to a message. None may be OK: each is an ERROR line
 * that names a limit (exit 2), within a bound well inside request_timeout (120 s by default)
 * and with the process's peak memory bounded, and no temp file left behind. A bomb beside a
 * virus: the virus is FOUND (infected ranks above a limit). Prints the table.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { attachmentMessage } from './helpers/container-corpus.js';
import { GiB, compressedZeros, gzipOfZeros, manyMembersZip, nestedZipBomb, zipOfZeros } from './helpers/bombs.js';
import { eicar } from './helpers/eicar.js';
import { base64Lines } from './helpers/mail.js';
import { EICAR_NAME, cliSetup, leftovers, reportFor, runMeasured } from './helpers/unpack-cli.js';

/** A hang bound, not a speed figure: half of request_timeout's default. */
const MAX_MS = 60_000;
/** The whole process (node, the engine's threads, the unpackers): far below what the bombs expand to. */
const MAX_RSS_BYTES = GiB;
/** How -t says a limit stopped the scan (the reason text of a limit verdict). */
const NAMES_A_LIMIT = /limit|EUNPACK|max_(size|members|depth|ratio|time)|too (many|large|big|deep)|exceed|more than \d+|nested deeper|took longer/i;

interface Bomb { name: string; filename: string; type: string; bytes: Buffer }

async function bombs(): Promise<Bomb[]> {
  // the two slow compressions run beside the rest
  const bz2 = compressedZeros('bzip2');
  const xz = compressedZeros('xz');
  return [
    { name: 'zip of 2 GiB of zeros', filename: 'zeros.zip', type: 'application/zip', bytes: zipOfZeros(2 * GiB) },
    { name: '42.zip-style: 5 levels x 16 copies over 1 GiB', filename: '42.zip', type: 'application/zip', bytes: nestedZipBomb(5, 16, GiB) },
    { name: 'gzip of 1 GiB of zeros', filename: 'zeros.gz', type: 'application/gzip', bytes: gzipOfZeros(GiB) },
    { name: 'bzip2 of 1 GiB of zeros', filename: 'zeros.bz2', type: 'application/x-bzip2', bytes: await bz2 },
    { name: 'xz of 1 GiB of zeros', filename: 'zeros.xz', type: 'application/x-xz', bytes: await xz },
    { name: 'zip of 20,000 tiny members', filename: 'many.zip', type: 'application/zip', bytes: manyMembersZip(20_000) },
  ];
}

const rows: string[] = [];

test('bombs: never OK; an ERROR naming a limit (exit 2), within 60 s, peak memory < 1 GiB, no temp file left', { timeout: 15 * 60_000 }, async () => {
  const all = await bombs();
  const failures: string[] = [];
  for (const b of all) {
    const s = cliSetup();
    try {
      const file = join(s.files, `${b.filename}.eml`);
      writeFileSync(file, attachmentMessage(b.filename, b.bytes, b.type));
      const r = await runMeasured(['-f', s.config, '-t', file], { timeoutMs: 2 * MAX_MS, env: { TMPDIR: s.childTmp } });
      const rep = reportFor(r.stdout, file);
      const line = rep.lines.map((l) => l.slice(file.length + 2)).join(' | ') || `no line (stderr: ${r.stderr.slice(0, 300)})`;
      const left = [...leftovers(s.work), ...leftovers(s.childTmp)];
      rows.push(`| ${b.name} | ${(b.bytes.length / 1024).toFixed(0)} KB | ${line} | ${r.code ?? r.signal} | ${(r.ms / 1000).toFixed(1)} | ${(r.peakRssBytes / 1024 / 1024).toFixed(0)} |`);
      if (rep.verdict !== 'error') failures.push(`${b.name}: expected an ERROR line, got ${line}`);
      else if (!NAMES_A_LIMIT.test(line)) failures.push(`${b.name}: the ERROR does not name a limit: ${line}`);
      if (r.code !== 2) failures.push(`${b.name}: exit ${r.code ?? r.signal}, expected 2`);
      if (r.ms >= MAX_MS) failures.push(`${b.name}: ${Math.round(r.ms)} ms`);
      if (r.peakRssBytes >= MAX_RSS_BYTES) failures.push(`${b.name}: peak RSS ${(r.peakRssBytes / 1024 / 1024).toFixed(0)} MiB`);
      if (left.length > 0) failures.push(`${b.name}: left behind ${left.join(', ')}`);
    } finally {
      s.cleanup();
    }
  }
  assert.deepEqual(failures, []);
});

test('a bomb beside a virus: the virus is FOUND (exit 1), bounded as above', { timeout: 5 * 60_000 }, async () => {
  const s = cliSetup();
  try {
    const file = join(s.files, 'bomb-and-virus.eml');
    const attach = (name: string, type: string, bytes: Buffer): string =>
      `--b\nContent-Type: ${type}; name="${name}"\nContent-Transfer-Encoding: base64\nContent-Disposition: attachment; filename="${name}"\n\n${base64Lines(bytes)}`;
    writeFileSync(file, [
      'From: sender@example.test\nTo: sink@harness.test\nSubject: two files\nMIME-Version: 1.0\nContent-Type: multipart/mixed; boundary="b"\n',
      attach('zeros.zip', 'application/zip', zipOfZeros(2 * GiB)), attach('invoice.com', 'application/octet-stream', eicar()), '--b--\n',
    ].join('\n'));
    const r = await runMeasured(['-f', s.config, '-t', file], { timeoutMs: 2 * MAX_MS, env: { TMPDIR: s.childTmp } });
    const rep = reportFor(r.stdout, file);
    rows.push(`| zip of 2 GiB of zeros + EICAR beside it | - | ${rep.lines.map((l) => l.slice(file.length + 2)).join(' | ')} | ${r.code ?? r.signal} | ${(r.ms / 1000).toFixed(1)} | ${(r.peakRssBytes / 1024 / 1024).toFixed(0)} |`);
    assert.deepEqual(rep.names, [EICAR_NAME], r.stdout + r.stderr);
    assert.equal(r.code, 1);
    assert.ok(r.ms < MAX_MS && r.peakRssBytes < MAX_RSS_BYTES, `${r.ms} ms, ${r.peakRssBytes} bytes`);
    assert.deepEqual([...leftovers(s.work), ...leftovers(s.childTmp)], []);
  } finally {
    s.cleanup();
  }
});

test('bomb table', () => {
  console.log(['| bomb | attached | -t says | exit | s | peak RSS MiB |', '|---|---|---|---|---|---|', ...rows].join('\n'));
  assert.ok(rows.length > 0);
});
