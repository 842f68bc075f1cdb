/**
 * Regression: PDFs that qpdf opens and whose embedded file it gives back as EICAR were answered
 * OK by the embedded engine, because the PDF reader looked objects up by the last `N G obj` in
 * the text and took a stream's data from the end of the keyword's line:
 *  - objects in object streams (/Type /ObjStm, `qpdf --object-streams=generate`) were never
 *    resolved: `/Filter 6 0 R`, `/Filter [6 0 R]`, chains of 33 and 40 filters each a
 *    reference, `/DecodeParms 6 0 R`, `/Columns 6 0 R` became "no filter" or no predictor,
 *    and the raw bytes were scanned with outcome ok;
 *  - a decoy definition of the object after %%EOF, in a comment, a string or a later stream's
 *    data was taken instead of the one the xref names, and a value after 70,000 spaces was
 *    past the 64 KiB window;
 *  - `stream` followed by a space or tab and then the data (no line end): the data was taken
 *    from the next line end inside it, and the damage counted as "corrupt", not a limit.
 * Now: every definition (object streams included) gives a reading, both starts are decoded,
 * and a /Filter or /DecodeParms reference that resolves to nothing is a limit.
 *
 * Shapes: helpers/pdf-object-shapes.ts, several variants each; qpdf gives the payload back from
 * every shape expected FOUND; their clean twins are OK; the unresolvable ones a limit ERROR.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runAvfilter } from './helpers/avfilter-proc.js';
import { attachmentMessage } from './helpers/container-corpus.js';
import { content, type Shape } from './helpers/evasion-shapes.js';
import { pdfObjectShapes } from './helpers/pdf-object-shapes.js';
import { EICAR_NAME, cliSetup, leftovers, reportFor, type FileReport } from './helpers/unpack-cli.js';

/** `avfilter -t` over the shapes with the embedded engine: the report per id. */
function embedded(shapes: readonly Shape[], tag: string): { reports: Map<string, FileReport>; stderr: string; left: string[] } {
  const s = cliSetup();
  try {
    const paths = new Map<string, string>();
    for (const x of shapes) {
      const p = join(s.files, `${tag}-${x.id}.eml`);
      writeFileSync(p, attachmentMessage(x.filename, x.bytes, x.contentType));
      paths.set(x.id, p);
    }
    const r = runAvfilter(['-f', s.config, '-t', ...paths.values()], { env: { TMPDIR: s.childTmp } });
    return { reports: new Map(shapes.map((x) => [x.id, reportFor(r.stdout, paths.get(x.id)!)])), stderr: r.stderr, left: [...leftovers(s.work), ...leftovers(s.childTmp)] };
  } finally {
    s.cleanup();
  }
}

const line = (rep: FileReport | undefined): string => rep?.lines.join(' | ') || 'no line';
const LIMIT = /cannot be read/;

const infected = pdfObjectShapes(true);
const clean = pdfObjectShapes(false);

test('the generators are right: qpdf gives the payload back from every shape expected FOUND', () => {
  const dir = mkdtempSync(join(tmpdir(), 'avf-pdfobj-'));
  const failures: string[] = [];
  try {
    for (const s of infected.filter((x) => x.qpdf)) {
      const file = join(dir, s.id);
      writeFileSync(file, s.bytes);
      const q = spawnSync('qpdf', ['--show-attachment=invoice.com', file], { maxBuffer: 1 << 24 });
      if (!q.stdout.includes(content(true))) failures.push(`${s.id}: qpdf does not give the payload back (${q.stderr.toString().slice(0, 200)})`);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  assert.deepEqual(failures, []);
  assert.ok(infected.filter((x) => x.qpdf).length >= 40, 'several variants of each shape');
});

test(`${infected.length} PDFs with objects in object streams, decoy definitions, far values, a stream keyword without a line end, unresolvable references: each FOUND or a limit, never OK`, () => {
  const r = embedded(infected, 'inf');
  const failures: string[] = [];
  for (const s of infected) {
    const rep = r.reports.get(s.id)!;
    if (s.expect === 'found' && !rep.names.includes(EICAR_NAME)) failures.push(`${s.id}: expected ${EICAR_NAME} FOUND, got ${line(rep)}`);
    if (s.expect === 'limit' && !(rep.verdict === 'error' && LIMIT.test(rep.lines[0] ?? '')) && !rep.names.includes(EICAR_NAME)) {
      failures.push(`${s.id}: expected a limit ERROR, got ${line(rep)}`);
    }
  }
  assert.deepEqual(failures, [], r.stderr);
  assert.deepEqual(r.left, [], 'no temp file left behind');
});

test('the same PDFs holding clean text: OK (a decoy reading that does not decode is no limit), the unresolvable references still a limit', () => {
  const r = embedded(clean, 'clean');
  const failures: string[] = [];
  for (const s of clean) {
    const rep = r.reports.get(s.id)!;
    const want = s.expect === 'limit' ? 'error' : 'clean';
    if (rep.verdict !== want || (want === 'error' && !LIMIT.test(rep.lines[0] ?? ''))) failures.push(`${s.id}: expected ${want}, got ${line(rep)}`);
  }
  assert.deepEqual(failures, [], r.stderr);
});
