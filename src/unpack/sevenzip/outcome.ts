/**
 * How a 7-Zip run ended, as an UnpackOutcome: pure functions over what the run left behind
 * (exit code, an escaped C++ exception's type, the console lines, the caps the file system
 * enforced). Used by thread.ts; tested on its own through the pool.
 *
 * Owns: the reading of 7-Zip's messages, and the check for a 7z archive whose header is
 * encrypted (7-Zip 24.09 in WASM cannot say so: its exception escapes uncaught).
 * Inputs: RunFacts, archive bytes. Outputs: outcome, detail, the names of members whose output
 * is not theirs (garbage from the dummy password, or the empty file of an unsupported method),
 * which the thread drops. Fails with nothing.
 *
 * Severity order: our own limits first (they are certain), then encryption, then an
 * unsupported method, then damage. Anything that is not a clean exit 0 is never `ok`.
 */
import type { UnpackOutcome } from '../types.js';

export interface RunFacts {
  /** 7-Zip's exit code; undefined when a C++ exception escaped. */
  readonly exitCode: number | undefined;
  /** Mangled type name of the escaped C++ exception ("St9bad_alloc"), if one did. */
  readonly escapedType: string | undefined;
  readonly lines: readonly string[];
  readonly sizeCapped: boolean;
  readonly membersCapped: boolean;
  /** The WASM heap was refused a growth past its limit. */
  readonly heapRefused: boolean;
  readonly encryptedHeader: boolean;
  readonly maxMembers: number;
}

export interface RunVerdict {
  readonly outcome: UnpackOutcome;
  readonly detail: string | undefined;
  /** Bytes after the archive's end that 7-Zip did not read (a warning, or the error of a gzip). */
  readonly trailing: boolean;
  readonly droppedNames: ReadonlySet<string>;
}

// 7-Zip's messages for a member it could not decrypt, all of the form "...: NAME":
// "ERROR: Wrong password : a.exe", "ERROR: Data Error in encrypted file. Wrong password? : a.exe",
// "ERROR: CRC Failed in encrypted file. Wrong password? : a.exe".
const WRONG_PASSWORD = /Wrong password\??\s:\s(.*)$/;
const ENCRYPTED_ARCHIVE = /Can not open encrypted archive|Cannot open encrypted archive/i;
const UNSUPPORTED = /Unsupported (?:Method|feature)(?:\s:\s(.*))?$/i;
const NO_MEMORY = /Can't allocate required memory|Not enough memory|ERROR: errno=48\b/i;
// Warnings that say nothing was lost from the members (exit code 1 with only these is ok).
const HARMLESS_WARNINGS = [
  /^There are data after the end of archive$/,
  /^There are some data after the end of the payload data$/,
];
const ERROR_LINE = /^(?:ERROR|Open ERROR|ERRORS|WARNINGS?):?\s*(.*)$/;

export function classifyRun(f: RunFacts): RunVerdict {
  const droppedNames = new Set<string>();
  let unsupported: string | undefined;
  let encryptedName: string | undefined;
  let firstError: string | undefined;
  let encryptedArchive = f.encryptedHeader;
  let noMemory = f.heapRefused || /bad_alloc/.test(f.escapedType ?? '');
  for (const line of f.lines) {
    const wrong = WRONG_PASSWORD.exec(line);
    if (wrong) {
      droppedNames.add(wrong[1]!);
      encryptedName ??= wrong[1];
    }
    if (ENCRYPTED_ARCHIVE.test(line)) encryptedArchive = true;
    const u = UNSUPPORTED.exec(line);
    if (u && u[1] !== undefined) droppedNames.add(u[1]);
    if (u && unsupported === undefined) unsupported = u[1] ?? 'method';
    if (NO_MEMORY.test(line)) noMemory = true;
    const e = ERROR_LINE.exec(line);
    // "ERROR: /job/[data]" only names our input file: the next line says what is wrong.
    if (e && firstError === undefined && e[1] && !e[1].startsWith('/')) firstError = e[1];
  }
  // bytes after the archive (or a compressed stream) that 7-Zip did not read: whatever the
  // exit code (7-Zip exits 0 with this warning for a cab), the stage looks at them
  const trailing = f.lines.some((l) => /There are (?:some )?data after the end/.test(l));
  const result = (outcome: UnpackOutcome, detail?: string): RunVerdict => ({ outcome, detail, droppedNames, trailing });
  if (f.membersCapped) return result('members', `more than ${f.maxMembers} members`);
  if (f.sizeCapped) return result('size', 'members pass the output limit');
  if (noMemory) return result('size', '7-Zip needs more memory than the heap limit');
  if (encryptedArchive) return result('encrypted', '[archive header]');
  if (encryptedName !== undefined) return result('encrypted', encryptedName);
  if (unsupported !== undefined) return result('unsupported', unsupported);
  if (f.escapedType !== undefined) return result('corrupt', `7-Zip stopped (${f.escapedType})`);
  if (f.exitCode === 0) return result('ok');
  // bytes after the archive or a compressed stream (zero padding after a gzip, as tape and
  // mail tools leave it): gzip -d reads it with a warning, and the bytes themselves are
  // scanned with the container; 7-Zip calls it a warning, or an error of the item. What they
  // hold is looked at by the stage (`trailing`): another container there is opened too.
  if ((f.exitCode === 1 && onlyHarmlessWarnings(f.lines)) || (f.exitCode === 2 && onlyTrailingDataErrors(f.lines))) return result('ok', 'data after the end');
  return result('corrupt', firstError ?? `7-Zip exit code ${f.exitCode}`);
}

function onlyTrailingDataErrors(lines: readonly string[]): boolean {
  const errors = lines.filter((l) => /^(?:ERROR|Open ERROR|ERRORS)\b/.test(l.trim()));
  return errors.length > 0 && errors.every((l) => /^ERROR: There are (?:some )?data after the end of (?:the payload data|archive)\b/.test(l.trim()));
}

function onlyHarmlessWarnings(lines: readonly string[]): boolean {
  const start = lines.findIndex((l) => /^WARNINGS?:/.test(l));
  if (start < 0) return false;
  if (lines.some((l) => /ERROR/.test(l))) return false;
  const rest = lines.slice(start + 1).filter((l) => l.trim() !== '' && !/^(Warnings|Archives with Warnings|Sub items Errors|Size|Compressed|Files|Folders):/.test(l));
  return rest.length > 0 && rest.every((l) => HARMLESS_WARNINGS.some((re) => re.test(l.trim())));
}

const SIGNATURE_7Z = Buffer.from([0x37, 0x7a, 0xbc, 0xaf, 0x27, 0x1c]);
const K_ENCODED_HEADER = 0x17;
// The 7z method id of AES-256 + SHA-256 (06 F1 07 01), as it appears in the coder list.
const AES_METHOD = Buffer.from([0x06, 0xf1, 0x07, 0x01]);
/** Encoded headers are small; a bound keeps a hostile offset from costing anything. */
const MAX_HEADER_SCAN = 4096;

/**
 * True when a 7z archive's header is packed with AES (7z a -mhe=on): the next-header record
 * is an encoded header whose coder list names AES. Reads only the start header and the
 * first bytes of the next header.
 */
export function encrypted7zHeader(archive: Uint8Array): boolean {
  const buf = Buffer.from(archive.buffer, archive.byteOffset, archive.byteLength);
  if (buf.length < 32 || !buf.subarray(0, 6).equals(SIGNATURE_7Z)) return false;
  const offset = buf.readBigUInt64LE(12);
  const size = buf.readBigUInt64LE(20);
  const start = 32n + offset;
  if (start >= BigInt(buf.length) || size === 0n) return false;
  const from = Number(start);
  const header = buf.subarray(from, Math.min(buf.length, from + Math.min(Number(size), MAX_HEADER_SCAN)));
  return header[0] === K_ENCODED_HEADER && header.includes(AES_METHOD);
}
