/**
 * PDF decryption with the empty user password (PDF 1.7 7.6.3, ISO 32000-2 7.6.4): what every
 * viewer does when it opens an encrypted PDF without asking, so the scanner sees what the
 * reader sees. qpdf --encrypt "" owner 40|128|256 and "permissions only" PDFs are routine mail.
 *
 * Owns: the Standard security handler, R2 to R4 (RC4 40 to 128 bits, AESV2) and R5/R6
 * (AESV3, AES-256): finding /Encrypt (direct, or `N G R` resolved by its `N G obj` in the
 * file) and the trailer /ID (a trailer or an xref stream's dictionary), checking the empty
 * password against /U, and the per-object keys for streams. pdf.ts asks security() once and
 * decrypts each stream through the answer before its /Filter chain.
 *
 * Output (Security): `plain` (no /Encrypt that resolves to a dictionary: read as before),
 * `open` (the empty password opens it: a decryptor), `locked` (a user password is needed: the
 * document is reported like an encrypted zip), `unsupported` (another handler, /Adobe.PubSec,
 * or an R/V/crypt filter this does not know: nothing can be read either).
 * Never throws for bad input: strings of the wrong length make the password check fail.
 */
import { createCipheriv, createDecipheriv, createHash } from 'node:crypto';
import { dict, name, num, parseValue, str, type PdfValue } from './pdf-syntax.js';

export interface Decryptor {
  /** The stream's bytes as written before encryption (the /Filter chain's input); embedded files may have their own method (/EFF). */
  stream(data: Buffer, objNum: number, gen: number, embeddedFile: boolean): Buffer;
  /** A string of object `objNum gen` (a file name) as written before encryption. */
  string(data: Buffer, objNum: number, gen: number): Buffer;
  /** False when /EncryptMetadata false: /Type /Metadata streams are stored in the clear. */
  readonly encryptMetadata: boolean;
}

export type Security =
  | { readonly state: 'plain' }
  | { readonly state: 'open'; readonly decryptor: Decryptor }
  | { readonly state: 'locked' }
  | { readonly state: 'unsupported'; readonly detail: string };

/** Padding of Algorithm 2 step a: the empty password is exactly these 32 bytes. */
const PAD = Buffer.from('28bf4e5e4e758a4164004e56fffa01082e2e00b6d0683e802f0ca9fe6453697a', 'hex');
/** Most /Encrypt and /ID keys looked at: a real file has one per trailer (a few updates). */
const MAX_KEYS = 1000;
/**
 * How far an /Encrypt dictionary or /ID array may run: a real one is < 1 KiB. With MAX_KEYS
 * it bounds the parsing a file full of planted keys can cost (1000 × 16 KiB).
 */
const DICT_WINDOW = 16 * 1024;

export function security(s: string): Security {
  const enc = lastValue(s, '/Encrypt', (v) => v.t === 'dict' || v.t === 'ref');
  if (!enc) return { state: 'plain' };
  const d = enc.t === 'dict' ? enc.v : enc.t === 'ref' ? resolve(s, enc) : undefined;
  if (!d) return { state: 'plain' }; // a planted or dangling /Encrypt: the streams will tell
  const idv = lastValue(s, '/ID', (v) => v.t === 'array');
  const first = idv?.t === 'array' ? idv.v[0] : undefined;
  const id = first?.t === 'str' ? first.v : Buffer.alloc(0);
  if (name(d, 'Filter') !== 'Standard') return { state: 'unsupported', detail: `security handler ${name(d, 'Filter') ?? '?'}` };
  try {
    return standard(d, id);
  } catch {
    // node:crypto refuses only keys and data of lengths this code chose; a file that makes it
    // refuse one is a file the empty password does not open.
    return { state: 'unsupported', detail: 'encryption parameters out of range' };
  }
}

/** The value of the last `key` whose value passes `ok` (the trailer comes last; updates repeat it). */
function lastValue(s: string, key: string, ok: (v: PdfValue) => boolean): PdfValue | undefined {
  let found: PdfValue | undefined;
  let seen = 0;
  for (let i = s.indexOf(key); i >= 0 && seen < MAX_KEYS; i = s.indexOf(key, i + key.length)) {
    seen++;
    const v = parseValue(s, i + key.length, Math.min(s.length, i + key.length + DICT_WINDOW));
    if (v && ok(v.value)) found = v.value;
  }
  return found;
}

/** The dictionary of object `N G`: the last `N G obj` in the file (an update replaces it). */
function resolve(s: string, ref: { num: number; gen: number }): Map<string, PdfValue> | undefined {
  const re = new RegExp(`(?<![0-9])${ref.num}[\\0\\t\\n\\f\\r ]+${ref.gen}[\\0\\t\\n\\f\\r ]+obj`, 'g');
  let at = -1;
  for (let m = re.exec(s); m; m = re.exec(s)) at = m.index + m[0].length;
  if (at < 0) return undefined;
  const v = parseValue(s, at, Math.min(s.length, at + DICT_WINDOW));
  return v?.value.t === 'dict' ? v.value.v : undefined;
}

type Method = 'identity' | 'rc4' | 'aesv2' | 'aesv3';

/** The method of streams (/StmF) or strings (/StrF): V1/V2 are RC4; V4/V5 name a crypt filter in /CF. */
function cryptMethod(d: Map<string, PdfValue>, v: number, which: 'StmF' | 'StrF' | 'EFF'): Method | undefined {
  if (v === 1 || v === 2) return 'rc4';
  const stmf = name(d, which) ?? (which === 'EFF' ? name(d, 'StmF') : undefined) ?? 'Identity';
  if (stmf === 'Identity') return 'identity';
  const cfm = name(dict(dict(d, 'CF'), stmf), 'CFM') ?? 'None';
  return ({ None: 'identity', V2: 'rc4', AESV2: 'aesv2', AESV3: 'aesv3' } as Record<string, Method>)[cfm];
}

function standard(d: Map<string, PdfValue>, id: Buffer): Security {
  const v = num(d, 'V') ?? 0;
  const r = num(d, 'R') ?? 0;
  const method = cryptMethod(d, v, 'StmF');
  const strMethod = cryptMethod(d, v, 'StrF') ?? 'identity'; // names only: unknown is not fatal
  if (!method) return { state: 'unsupported', detail: `crypt filter of V ${v}` };
  const effMethod = cryptMethod(d, v, 'EFF') ?? method; // /EFF defaults to /StmF
  const encryptMetadata = d.get('EncryptMetadata')?.t !== 'bool' || (d.get('EncryptMetadata') as { v: boolean }).v;
  const o = str(d, 'O') ?? Buffer.alloc(0);
  const u = str(d, 'U') ?? Buffer.alloc(0);
  let key: Buffer;
  if (r >= 2 && r <= 4 && (v === 1 || v === 2 || v === 4)) {
    const bits = v === 1 ? 40 : v === 4 ? 128 : (num(d, 'Length') ?? 40);
    if (bits < 40 || bits > 128 || bits % 8 !== 0) return { state: 'unsupported', detail: `key length ${bits}` };
    key = rc4Key(bits / 8, r, o, num(d, 'P') ?? 0, id, encryptMetadata);
    if (!userCheck(key, r, u, id)) return { state: 'locked' };
  } else if ((r === 5 || r === 6) && v === 5) {
    const ue = str(d, 'UE');
    if (u.length < 48 || !ue || ue.length < 32) return { state: 'locked' };
    const hash = r === 5 ? (salt: Buffer) => sha('sha256', salt) : (salt: Buffer) => hash2B(salt);
    if (!hash(u.subarray(32, 40)).subarray(0, 32).equals(u.subarray(0, 32))) return { state: 'locked' };
    const kek = hash(u.subarray(40, 48)).subarray(0, 32);
    const dec = createDecipheriv('aes-256-cbc', kek, Buffer.alloc(16));
    dec.setAutoPadding(false);
    key = Buffer.concat([dec.update(ue.subarray(0, 32)), dec.final()]);
  } else return { state: 'unsupported', detail: `standard handler R ${r} V ${v}` };
  const fileKey = key;
  const decrypt = (m: Method, data: Buffer, objNum: number, gen: number): Buffer => {
    if (m === 'identity') return data;
    if (m === 'aesv3') return aesCbc(fileKey, data);
    const k = objectKey(fileKey, objNum, gen, m === 'aesv2');
    return m === 'rc4' ? rc4(k, data) : aesCbc(k, data);
  };
  return {
    state: 'open',
    decryptor: {
      encryptMetadata,
      stream: (data, objNum, gen, embeddedFile) => decrypt(embeddedFile ? effMethod : method, data, objNum, gen),
      string: (data, objNum, gen) => decrypt(strMethod, data, objNum, gen),
    },
  };
}

/** Algorithm 2: the file key from the (empty) password, /O, /P, ID[0]. */
function rc4Key(n: number, r: number, o: Buffer, p: number, id: Buffer, encryptMetadata: boolean): Buffer {
  const pb = Buffer.alloc(4);
  pb.writeInt32LE(p | 0); // /P is signed; some writers give it as the unsigned 32-bit value
  const parts = [PAD, o.subarray(0, 32), pb, id];
  if (r >= 4 && !encryptMetadata) parts.push(Buffer.from([0xff, 0xff, 0xff, 0xff]));
  let h = md5(Buffer.concat(parts));
  if (r >= 3) for (let i = 0; i < 50; i++) h = md5(h.subarray(0, n));
  return h.subarray(0, n);
}

/** Algorithms 4 and 5: does the key (of the empty password) give /U? */
function userCheck(key: Buffer, r: number, u: Buffer, id: Buffer): boolean {
  if (r === 2) return rc4(key, PAD).equals(u.subarray(0, 32));
  let x = rc4(key, md5(Buffer.concat([PAD, id])));
  for (let i = 1; i <= 19; i++) x = rc4(key.map((b) => b ^ i) as Buffer, x);
  return u.length >= 16 && x.equals(u.subarray(0, 16));
}

/** Algorithm 1: the key of one object for RC4 and AESV2. */
function objectKey(fileKey: Buffer, objNum: number, gen: number, aes: boolean): Buffer {
  const ng = Buffer.from([objNum & 0xff, (objNum >> 8) & 0xff, (objNum >> 16) & 0xff, gen & 0xff, (gen >> 8) & 0xff]);
  const h = md5(Buffer.concat([fileKey, ng, aes ? Buffer.from('sAlT', 'latin1') : Buffer.alloc(0)]));
  return h.subarray(0, Math.min(fileKey.length + 5, 16));
}

/** ISO 32000-2 Algorithm 2.B (R6) for the empty password and no /U data (the user's check). */
function hash2B(salt: Buffer): Buffer {
  let k = sha('sha256', salt);
  let e = Buffer.alloc(0);
  for (let round = 0; round < 64 || e[e.length - 1]! > round - 32; round++) {
    const k1 = Buffer.concat(Array.from({ length: 64 }, () => k)); // password + K + /U data: only K is not empty
    const c = createCipheriv('aes-128-cbc', k.subarray(0, 16), k.subarray(16, 32));
    c.setAutoPadding(false);
    e = Buffer.concat([c.update(k1), c.final()]);
    let sum = 0; // the first 16 bytes as a big number mod 3 is their byte sum mod 3 (256 ≡ 1)
    for (let i = 0; i < 16; i++) sum += e[i]!;
    k = sha((['sha256', 'sha384', 'sha512'] as const)[sum % 3]!, e);
  }
  return k.subarray(0, 32);
}

const md5 = (b: Buffer): Buffer => createHash('md5').update(b).digest();
const sha = (alg: 'sha256' | 'sha384' | 'sha512', b: Buffer): Buffer => createHash(alg).update(b).digest();

/**
 * RC4 by hand: Node 20 links OpenSSL 3, whose default provider has no RC4 (it is in the legacy
 * provider, which a distribution's Node may not load), so createDecipheriv('rc4') can fail
 * on one machine and work on another. The cipher is a dozen lines and linear in its data.
 */
function rc4(key: Uint8Array, data: Uint8Array): Buffer {
  const S = new Uint8Array(256);
  for (let i = 0; i < 256; i++) S[i] = i;
  for (let i = 0, j = 0; i < 256; i++) {
    j = (j + S[i]! + key[i % key.length]!) & 0xff;
    const t = S[i]!; S[i] = S[j]!; S[j] = t;
  }
  const out = Buffer.allocUnsafe(data.length);
  for (let n = 0, i = 0, j = 0; n < data.length; n++) {
    i = (i + 1) & 0xff;
    j = (j + S[i]!) & 0xff;
    const t = S[i]!; S[i] = S[j]!; S[j] = t;
    out[n] = data[n]! ^ S[(S[i]! + S[j]!) & 0xff]!;
  }
  return out;
}

/**
 * AESV2/AESV3 stream data: a 16-byte IV, then CBC blocks ending in PKCS#7 padding. A partial
 * last block is dropped and padding that is not PKCS#7 is kept, as viewers are lenient: the
 * scanner must see what they show, and a damaged stream still decrypts as far as it goes.
 */
function aesCbc(key: Buffer, data: Buffer): Buffer {
  if (data.length < 32) return Buffer.alloc(0);
  const body = data.subarray(16, 16 + Math.floor((data.length - 16) / 16) * 16);
  const d = createDecipheriv(key.length === 32 ? 'aes-256-cbc' : 'aes-128-cbc', key, data.subarray(0, 16));
  d.setAutoPadding(false);
  const out = Buffer.concat([d.update(body), d.final()]);
  const pad = out[out.length - 1]!;
  if (pad >= 1 && pad <= 16 && out.subarray(out.length - pad).every((b) => b === pad)) return out.subarray(0, out.length - pad);
  return out;
}
