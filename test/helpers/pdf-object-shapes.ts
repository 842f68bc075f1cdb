/**
 * PDF shapes where the objects a stream's dictionary refers to are not where a search for
 * `N G obj` finds them, or where the data's start is ambiguous: objects in object streams (made
 * by qpdf --object-streams=generate), an object defined more than once (decoys after %%EOF, in
 * comments, strings, other streams' data; the real one first or last), a value far from its
 * header, `stream` followed by spaces or tabs and then the data; and references no reader can
 * resolve (a limit). Each found shape holds the EICAR payload (made at test time) or clean text,
 * and qpdf reads every one of them (the suite checks it gives the payload back).
 *
 * Owns: a PDF writer with a correct xref that lets the caller place text between objects and
 * after %%EOF, and the shapes. Inputs: whether to hold the payload. Outputs: Shape[] (the type
 * of helpers/evasion-shapes.ts). Uses qpdf (in .ci/run); fails when it is missing.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { deflateSync } from 'node:zlib';
import { asciiHexEncode } from './documents.js';
import { content, type Shape } from './evasion-shapes.js';

export interface PdfObject {
  /** What stands between `N 0 obj` and `endobj`. */
  readonly body: string | Buffer;
  /** Text written just before the object's header (comments, junk a repairing reader reads). */
  readonly before?: string;
}

const bytes = (b: string | Buffer): Buffer => (typeof b === 'string' ? Buffer.from(b, 'latin1') : b);

/**
 * A PDF whose objects 1..4 are a catalog naming one embedded file, invoice.com (object 4 its
 * file specification, pointing at object 5), then the caller's objects from 5 on, an xref
 * that gives each object's offset, and `tail` after %%EOF.
 */
export function pdfObjects(objects: readonly PdfObject[], tail = ''): Buffer {
  const all: PdfObject[] = [
    { body: '<< /Type /Catalog /Pages 2 0 R /Names << /EmbeddedFiles << /Names [(invoice.com) 4 0 R] >> >> >>' },
    { body: '<< /Type /Pages /Kids [3 0 R] /Count 1 >>' },
    { body: '<< /Type /Page /Parent 2 0 R /MediaBox [0 0 200 200] >>' },
    { body: '<< /Type /Filespec /F (invoice.com) /UF (invoice.com) /EF << /F 5 0 R >> >>' },
    ...objects,
  ];
  const parts: Buffer[] = [Buffer.from('%PDF-1.7\n%\xe2\xe3\xcf\xd3\n', 'latin1')];
  let pos = parts[0]!.length;
  const offsets: number[] = [];
  const add = (b: Buffer): void => { parts.push(b); pos += b.length; };
  all.forEach((o, i) => {
    if (o.before) add(bytes(o.before));
    offsets.push(pos);
    add(Buffer.concat([bytes(`${i + 1} 0 obj\n`), bytes(o.body), bytes('\nendobj\n')]));
  });
  const xref = pos;
  const table = offsets.map((x) => `${String(x).padStart(10, '0')} 00000 n \n`).join('');
  add(bytes(`xref\n0 ${offsets.length + 1}\n0000000000 65535 f \n${table}trailer\n<< /Size ${offsets.length + 1} /Root 1 0 R >>\nstartxref\n${xref}\n%%EOF\n`));
  add(bytes(tail));
  return Buffer.concat(parts);
}

/** A stream object: its dictionary's entries (without /Length), `keyword` (what follows `stream`), the data. */
export function streamBody(dict: string, data: Buffer, keyword = 'stream\n'): Buffer {
  return Buffer.concat([bytes(`<< /Type /EmbeddedFile ${dict} /Length ${data.length} >>\n${keyword}`), data, bytes('\nendstream')]);
}

/** The file rewritten by qpdf (e.g. `--object-streams=generate`): the objects it packs leave the body. */
export function qpdfRewrite(pdf: Buffer, args: readonly string[]): Buffer {
  const dir = mkdtempSync(join(tmpdir(), 'avf-qpdf-'));
  try {
    writeFileSync(join(dir, 'in.pdf'), pdf);
    const r = spawnSync('qpdf', [...args, join(dir, 'in.pdf'), join(dir, 'out.pdf')], { encoding: 'utf8' });
    // 3: warnings (a file qpdf repaired); anything else is a failure of the generator
    if (r.status !== 0 && r.status !== 3) throw new Error(`qpdf ${args.join(' ')}: ${r.error?.message ?? r.stderr}`);
    return readFileSync(join(dir, 'out.pdf'));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const PACK = ['--object-streams=generate', '--stream-data=preserve'];

/** PNG "Up" rows (/Predictor 12) of `cols` bytes. */
function upRows(p: Buffer, cols: number): Buffer {
  const out: Buffer[] = [];
  for (let i = 0; i < p.length; i += cols) {
    const row = Buffer.alloc(cols); p.copy(row, 0, i, Math.min(i + cols, p.length));
    const up = Buffer.alloc(cols); if (i >= cols) p.copy(up, 0, i - cols, i);
    out.push(Buffer.from([2]), Buffer.from(row.map((b, j) => (b - up[j]!) & 0xff)));
  }
  return Buffer.concat(out);
}

/** A chain of `n` filters alternating FlateDecode and ASCIIHexDecode, and the data encoded for it. */
function chain(payload: Buffer, n: number): { names: string[]; data: Buffer } {
  const names = Array.from({ length: n }, (_, i) => (i % 2 === 0 ? 'FlateDecode' : 'ASCIIHexDecode'));
  let data = payload;
  for (let i = n - 1; i >= 0; i--) data = names[i] === 'FlateDecode' ? deflateSync(data) : asciiHexEncode(data);
  return { names, data };
}

export function pdfObjectShapes(infected: boolean): Shape[] {
  const s = (id: string, pdf: Buffer, expect: Shape['expect'] = 'found'): Shape =>
    ({ id: `pdf-${id}`, filename: 'statement.pdf', bytes: pdf, expect, contentType: 'application/pdf', qpdf: expect === 'found' });
  const payload = content(infected);
  const packed = deflateSync(payload);
  const out: Shape[] = [];

  // objects in object streams: a reader that knows only `N G obj` finds no filter
  const refFilter = (filter: string, extra: string[]): PdfObject[] => [{ body: streamBody(`/Filter ${filter}`, packed) }, ...extra.map((body) => ({ body }))];
  out.push(
    s('objstm-filter-array-by-reference', qpdfRewrite(pdfObjects(refFilter('6 0 R', ['[/FlateDecode]'])), PACK)),
    s('objstm-filter-name-by-reference', qpdfRewrite(pdfObjects(refFilter('[6 0 R]', ['/FlateDecode'])), PACK)),
    s('objstm-filter-array-of-references', qpdfRewrite(pdfObjects(refFilter('6 0 R', ['[7 0 R]', '/FlateDecode'])), PACK)),
  );
  for (const n of [3, 33, 40]) {
    const c = chain(payload, n);
    const objs = [{ body: streamBody(`/Filter [${c.names.map((_, i) => `${6 + i} 0 R`).join(' ')}]`, c.data) }, ...c.names.map((x) => ({ body: `/${x}` }))];
    out.push(s(`objstm-chain-${n}-each-by-reference`, qpdfRewrite(pdfObjects(objs), PACK)));
  }
  for (const cols of [7, 17, 23]) {
    const data = deflateSync(upRows(payload, cols));
    out.push(
      s(`objstm-decodeparms-by-reference-columns-${cols}`, qpdfRewrite(pdfObjects([{ body: streamBody('/Filter /FlateDecode /DecodeParms 6 0 R', data) }, { body: `<< /Predictor 12 /Columns ${cols} >>` }]), PACK)),
      s(`objstm-columns-by-reference-${cols}`, qpdfRewrite(pdfObjects([{ body: streamBody('/Filter /FlateDecode /DecodeParms << /Predictor 12 /Columns 6 0 R >>', data) }, { body: String(cols) }]), PACK)),
    );
  }
  // object streams in encrypted files: decrypted with their own object's key first
  for (const enc of [['128', '--use-aes=y'], ['256']]) {
    out.push(s(`objstm-encrypted-${enc.join('')}-filter-by-reference`, qpdfRewrite(pdfObjects(refFilter('6 0 R', ['[/FlateDecode]'])), ['--object-streams=generate', '--encrypt', '', 'owner', ...enc, '--'])));
  }

  // an object defined twice: the xref names the real one, a decoy lies where a search meets it
  const decoys: [string, string][] = [['/NoSuchDecode', 'name'], ['[/ASCIIHexDecode]', 'hex'], ['null', 'null'], ['[/RunLengthDecode /ASCII85Decode]', 'chain']];
  for (const [decoy, tag] of decoys) {
    const def = `6 0 obj ${decoy} endobj`;
    const real = refFilter('6 0 R', ['[/FlateDecode]']);
    out.push(
      s(`decoy-${tag}-after-eof`, pdfObjects(real, `${def}\n`)),
      s(`decoy-${tag}-in-comment-after-eof`, pdfObjects(real, `%${def}\n`)),
      s(`decoy-${tag}-in-body-comment`, pdfObjects([...real, { body: 'null', before: `%${def}\n` }])),
      s(`decoy-${tag}-in-later-stream`, pdfObjects([...real, { body: Buffer.concat([bytes(`<< /Length ${def.length + 2} >>\nstream\n`), bytes(`\n${def}\n`), bytes('\nendstream')]) }])),
      s(`decoy-${tag}-in-string`, pdfObjects([...real, { body: `(x ${def})` }])),
      // the decoy before the real definition: a reader that takes the first one is misled
      s(`decoy-${tag}-before-the-real-one`, pdfObjects([{ ...real[0]!, before: `%${def}\n` }, real[1]!])),
    );
  }
  // two objects, each with a decoy: only the combination of both real ones decodes
  out.push(s('decoys-for-two-objects', pdfObjects([{ body: streamBody('/Filter [6 0 R 7 0 R]', deflateSync(packed)) }, { body: '/FlateDecode' }, { body: '/FlateDecode' }],
    '6 0 obj /ASCIIHexDecode endobj\n7 0 obj /ASCII85Decode endobj\n')));
  // a value far from its object header (a window from the header ends in the spaces)
  for (const [gap, tag] of [[' '.repeat(70000), 'spaces-70000'], ['\n'.repeat(200000), 'newlines-200000'], ['\r\n \t'.repeat(30000), 'mixed-120000']] as const) {
    out.push(s(`filter-value-after-${tag}`, pdfObjects(refFilter('6 0 R', [`${gap}[/FlateDecode]`]))));
  }

  // `stream` followed by spaces or tabs, then the data with no line end: qpdf starts the data
  // there, pdf.js at the next line end (inside the data)
  for (const [kw, tag] of [['stream ', 'space'], ['stream\t', 'tab'], ['stream \t ', 'blanks'], [`stream${' '.repeat(40)}`, 'spaces-40'], ['stream\f', 'form-feed']] as const) {
    out.push(s(`stream-keyword-${tag}-then-data`, pdfObjects([{ body: streamBody('/Filter /FlateDecode', packed, kw) }])));
    out.push(s(`stream-keyword-${tag}-then-data-chain`, pdfObjects([{ body: streamBody('/Filter [/FlateDecode /FlateDecode]', deflateSync(packed), kw) }])));
  }

  // references no reader resolves: a limit, never the raw bytes as the content
  const limit = (id: string, objs: PdfObject[], tail = ''): Shape => s(id, pdfObjects(objs, tail), 'limit');
  out.push(
    limit('filter-reference-to-nothing', [{ body: streamBody('/Filter 9 0 R', packed) }]),
    limit('filter-element-reference-to-nothing', [{ body: streamBody('/Filter [9 0 R]', packed) }]),
    limit('filter-reference-loop', [{ body: streamBody('/Filter 6 0 R', packed) }, { body: '7 0 R' }, { body: '6 0 R' }]),
    limit('decodeparms-reference-to-nothing', [{ body: streamBody('/Filter /FlateDecode /DecodeParms 9 0 R', deflateSync(upRows(payload, 17))) }]),
    limit('columns-reference-to-nothing', [{ body: streamBody('/Filter /FlateDecode /DecodeParms << /Predictor 12 /Columns 9 0 R >>', deflateSync(upRows(payload, 17))) }]),
    limit('filter-object-does-not-parse', [{ body: streamBody('/Filter 6 0 R', packed) }, { body: '[/FlateDecode' }]),
    // more definitions than a reader tries (decoys after %%EOF)
    limit('filter-object-defined-21-times', [{ body: streamBody('/Filter 6 0 R', packed) }, { body: '[/FlateDecode]' }],
      Array.from({ length: 20 }, (_, i) => `6 0 obj /Decoy${i}Decode endobj\n`).join('')),
  );
  return out;
}
