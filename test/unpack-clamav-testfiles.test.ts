/**
 * The container stage's yardstick: ClamAV's own test files (Debian clamav-testfiles: clam.exe inside 44
 * containers, documents, mail formats and packers), each attached in base64 as
 * application/octet-stream to a message, through `avfilter -t -v` with the embedded engine and
 * a YARA rule matching clam.exe by its MD5 (helpers/unpack-cli.ts). Every file listed in
 * EXPECTED_FOUND must be FOUND; the table (file, format, found, what -v said, and clamd beside
 * it for comparison) shows all of them. clam.pdf is also encrypted with an empty user password
 * by qpdf, as senders do to hide a PDF's streams: clam.exe must still come out.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { runAvfilter } from './helpers/avfilter-proc.js';
import { TESTFILES_DIR, startClamd } from './helpers/clamd.js';
import { attachmentMessage } from './helpers/container-corpus.js';
import { CLAM_NAME, cliSetup, leftovers, reportFor, type FileReport } from './helpers/unpack-cli.js';

/**
 * The files the embedded engine must find clam.exe in once the container stage is there. One
 * list, to be adjusted to what the stage reads (the table shows the rest).
 */
const EXPECTED_FOUND: readonly string[] = [
  'clam.zip', 'clam.7z', 'clam.tar.gz', 'clam.bz2.zip', 'clam.d64.zip', 'clam.impl.zip', 'clam.cab', 'clam.arj', 'clam.chm',
  'clam.exe.bz2', 'clam.exe.szdd', 'clam.bin-be.cpio', 'clam.bin-le.cpio', 'clam.odc.cpio', 'clam.newc.cpio', 'clam.tnef',
  'clam.pdf', 'clam.exe.rtf', 'clam.ole.doc', 'clam.ppt', 'clam.mail', 'clam.exe.mbox.base64', 'clam.exe.mbox.uu',
  'clam.exe.binhex', 'clam.exe.html', 'clam.exe', 'clam-nsis.exe',
];

/** What each file is, for the table (a name the package does not describe shows "?"). */
const FORMAT: Readonly<Record<string, string>> = {
  'clam-aspack.exe': 'PE, ASPack', 'clam-fsg.exe': 'PE, FSG', 'clam-mew.exe': 'PE, MEW', 'clam-nsis.exe': 'NSIS installer',
  'clam-pespin.exe': 'PE, PESpin', 'clam-petite.exe': 'PE, Petite', 'clam-upack.exe': 'PE, Upack', 'clam-upx.exe': 'PE, UPX',
  'clam-wwpack.exe': 'PE, WWPack', 'clam-yc.exe': 'PE, yC', 'clam.7z': '7z', 'clam.arj': 'ARJ',
  'clam.bin-be.cpio': 'cpio (bin, big-endian)', 'clam.bin-le.cpio': 'cpio (bin, little-endian)', 'clam.bz2.zip': 'zip (bzip2)',
  'clam.cab': 'cab', 'clam.chm': 'CHM', 'clam.d64.zip': 'zip (deflate64)', 'clam.ea05.exe': 'AutoIt (EA05), UPX',
  'clam.ea06.exe': 'AutoIt (EA06), UPX', 'clam.exe': 'PE (the file itself)', 'clam.exe.binhex': 'BinHex 4.0', 'clam.exe.bz2': 'bzip2',
  'clam.exe.html': 'HTML', 'clam.exe.mbox.base64': 'mbox, base64', 'clam.exe.mbox.uu': 'mbox, uuencode', 'clam.exe.rtf': 'RTF (objdata)',
  'clam.exe.szdd': 'SZDD', 'clam.impl.zip': 'zip (implode)', 'clam.mail': 'mail message', 'clam.newc.cpio': 'cpio (newc)',
  'clam.odc.cpio': 'cpio (odc)', 'clam.ole.doc': 'OLE2 (Word)', 'clam.pdf': 'PDF', 'clam.ppt': 'OLE2 (PowerPoint)', 'clam.sis': 'Symbian SIS',
  'clam.tar.gz': 'gzip > tar', 'clam.tnef': 'TNEF', 'clam.zip': 'zip (deflate)', 'clam_IScab_ext.exe': 'InstallShield, cab (external)',
  'clam_IScab_int.exe': 'InstallShield, cab (internal)', 'clam_ISmsi_ext.exe': 'InstallShield, MSI (external)',
  'clam_ISmsi_int.exe': 'InstallShield, MSI (internal)', 'clam_cache_emax.tgz': 'gzip > tar',
};

const names = readdirSync(TESTFILES_DIR).sort();
const results = new Map<string, { yara?: FileReport; yaraLine?: string; clamd?: FileReport; clamdMail?: FileReport; clamdText?: FileReport; clamdParts?: FileReport }>();

/** Every test file as an attached message in `dir`; the paths by file name. */
function writeMessages(dir: string): Map<string, string> {
  const paths = new Map<string, string>();
  for (const n of names) {
    const p = join(dir, `${n}.eml`);
    writeFileSync(p, attachmentMessage(n, readFileSync(join(TESTFILES_DIR, n))));
    paths.set(n, p);
  }
  return paths;
}

test('ClamAV test files through -t -v, embedded engine: clam.exe FOUND inside every format of EXPECTED_FOUND', () => {
  assert.ok(names.length >= EXPECTED_FOUND.length, `${TESTFILES_DIR} holds ${names.length} files`);
  const s = cliSetup();
  try {
    const paths = writeMessages(s.files);
    const r = runAvfilter(['-f', s.config, '-t', '-v', ...paths.values()], { env: { TMPDIR: s.childTmp } });
    const failures: string[] = [];
    for (const n of names) {
      const rep = reportFor(r.stdout, paths.get(n)!);
      results.set(n, { ...results.get(n), yara: rep, yaraLine: rep.lines.map((l) => l.slice(paths.get(n)!.length + 2)).join(' | ') });
      if (rep.verdict === 'missing') failures.push(`${n}: no line`);
    }
    for (const n of EXPECTED_FOUND) {
      const rep = results.get(n)?.yara;
      if (!rep?.names.includes(CLAM_NAME)) failures.push(`${n}: expected ${CLAM_NAME} FOUND, got ${results.get(n)?.yaraLine ?? 'no such test file'}`);
    }
    assert.deepEqual(failures, [], r.stderr);
    assert.equal(r.code, 1);
    assert.deepEqual([...leftovers(s.work), ...leftovers(s.childTmp)], [], 'no temp file left behind');
  } finally {
    s.cleanup();
  }
});

test('the same messages through -t with a real clamd (the comparison columns): raw_message "data", "text" and "parts" find what "mail" finds', async () => {
  const clamd = await startClamd();
  const s = cliSetup();
  try {
    const paths = writeMessages(s.files);
    for (const mode of ['data', 'mail', 'text', 'parts'] as const) {
      const cfg = join(s.dir, `clamd-${mode}.toml`);
      writeFileSync(cfg, `tmpdir = "${s.work}"\n\n[[engine]]\ntype = "clamd"\nservers = ["unix:${clamd.socketPath}"]\nraw_message = "${mode}"\n`);
      const r = runAvfilter(['-f', cfg, '-t', ...paths.values()]);
      for (const n of names) results.set(n, { ...results.get(n), [mode === 'data' ? 'clamd' : mode === 'mail' ? 'clamdMail' : mode === 'text' ? 'clamdText' : 'clamdParts']: reportFor(r.stdout, paths.get(n)!) });
      // the comparison is only worth printing when clamd works at all
      assert.ok(results.get('clam.exe')?.clamd?.names.includes(clamd.names.clamExe), r.stdout + r.stderr);
    }
    const found = (k: 'clamd' | 'clamdMail' | 'clamdText' | 'clamdParts'): string[] => names.filter((n) => results.get(n)?.[k]?.verdict === 'infected');
    assert.deepEqual(found('clamd'), found('clamdMail'));
    assert.deepEqual(found('clamdText'), found('clamd'));
    assert.deepEqual(found('clamdParts'), found('clamd'));
  } finally {
    s.cleanup();
    await clamd.stop();
  }
});

test('ClamAV test files table', () => {
  const yes = (rep: FileReport | undefined, name?: string): string => rep === undefined ? '-' : rep.verdict === 'infected' && (name === undefined || rep.names.includes(name)) ? 'yes' : 'no';
  const lines = ['| file | format | found (embedded) | expected | -t -v says | clamd |', '|---|---|---|---|---|---|'];
  let found = 0;
  let clamdFound = 0;
  for (const n of names) {
    const r = results.get(n) ?? {};
    if (yes(r.yara, CLAM_NAME) === 'yes') found++;
    if (yes(r.clamd) === 'yes') clamdFound++;
    lines.push(`| ${n} | ${FORMAT[n] ?? '?'} | ${yes(r.yara, CLAM_NAME)} | ${EXPECTED_FOUND.includes(n) ? 'yes' : '-'} | ${r.yaraLine ?? '-'} | ${yes(r.clamd)} |`);
  }
  lines.push(`| **total** | | **${found} / ${names.length}** | ${EXPECTED_FOUND.length} | | ${clamdFound} / ${names.length} |`);
  console.log(lines.join('\n'));
  assert.equal(results.size, names.length);
});

test('regression: clam.pdf encrypted with an empty user password (RC4 40 and 128, AES 128 and 256: every viewer opens it without asking) still yields clam.exe', () => {
  // the PDF reader returned encrypted streams raw, so the embedded clam.exe was never seen:
  // OK, where clamscan decrypts with the empty password and finds it
  const s = cliSetup();
  try {
    const src = join(TESTFILES_DIR, 'clam.pdf');
    const variants: Array<[string, string[]]> = [
      ['rc4-40', ['--allow-weak-crypto', '--encrypt', '', 'owner-secret', '40']],
      ['rc4-128', ['--allow-weak-crypto', '--encrypt', '', 'owner-secret', '128', '--use-aes=n']],
      ['aes-128', ['--allow-weak-crypto', '--encrypt', '', 'owner-secret', '128', '--use-aes=y']],
      ['aes-256', ['--encrypt', '', 'owner-secret', '256']],
    ];
    const paths = new Map<string, string>();
    for (const [name, args] of variants) {
      const pdf = join(s.dir, `${name}.pdf`);
      // qpdf repairs clam.pdf's broken xref as it writes (exit 3: warnings)
      const q = spawnSync('qpdf', [...args, '--', src, pdf], { encoding: 'utf8' });
      assert.ok(q.status === 0 || q.status === 3, `qpdf ${name}: ${q.error?.message ?? q.stderr} (.ci/run installs qpdf)`);
      const show = spawnSync('qpdf', ['--show-encryption', pdf], { encoding: 'utf8' });
      assert.match(show.stdout, /^R = \d/m, `${name}: not encrypted`);
      const p = join(s.files, `${name}.eml`);
      writeFileSync(p, attachmentMessage('statement.pdf', readFileSync(pdf), 'application/pdf'));
      paths.set(name, p);
    }
    const r = runAvfilter(['-f', s.config, '-t', ...paths.values()], { env: { TMPDIR: s.childTmp } });
    const failures = [...paths].filter(([, p]) => !reportFor(r.stdout, p).names.includes(CLAM_NAME)).map(([name, p]) => `${name}: ${reportFor(r.stdout, p).lines.join(' | ') || 'no line'}`);
    assert.deepEqual(failures, [], r.stderr);
  } finally {
    s.cleanup();
  }
});
