/**
 * The container stage's shared vocabulary: what an unpacker is given and what it
 * returns. Every unpacker (the 7-Zip pool for archives, the hand-written readers for TNEF, PDF,
 * RTF and OLE2 objects) speaks these types, so the stage (stage.ts) treats them alike.
 *
 * Owns: types and stable codes only. An unpacker never throws for bad input: damage, a crossed
 * limit and encryption are outcomes (UnpackResult.outcome); it throws only for its own faults
 * (the stage turns those into an internal error, never clean).
 */

/** Container formats, named as the log and `-t` name them (`Encrypted.Zip`). */
export type ContainerFormat =
  // archives and compressors (7-Zip in WebAssembly, sevenzip/)
  | 'zip' | 'gzip' | 'bzip2' | 'xz' | 'zstd' | 'compress' | 'tar' | '7z' | 'cpio' | 'cab' | 'rar'
  | 'iso' | 'arj' | 'chm' | 'lzh' | 'szdd' | 'nsis' | 'lzma' | 'squashfs' | 'wim' | 'xar' | 'lzip'
  // recognised so that it is a limit, never clean: nothing here reads it (formats/unread.ts)
  | 'lzop'
  // documents and mail-specific formats (formats/, by hand or cfb)
  | 'ole2' | 'ole10native' | 'tnef' | 'pdf' | 'rtf' | 'lz4' | 'rpm'
  // a mail message or an mbox found as a part or a member: walked as mail (stage.ts)
  | 'mail' | 'mbox';

/** One file taken out of a container. */
export interface UnpackedMember {
  /**
   * Its name inside the container as the container gives it ("docs/a.exe"), or a made-up one
   * where it has none ("[stream 3]", "[object 12]"). For reports only: never a file path, never
   * used to decide anything. May hold any characters; the log escapes them.
   */
  readonly name: string;
  readonly bytes: Buffer;
  /**
   * The same bytes in pieces, when the unpacker has them so (the 7-Zip pool): the stage writes
   * them one by one and never asks for `bytes`, so a large member is not held twice.
   */
  readonly chunks?: readonly Buffer[] | undefined;
}

/**
 * How an unpacking ended. Anything but `ok` means some content was not seen: the stage makes
 * it a verdict (encrypted, or a limit), never clean.
 * - ok: every member was read whole.
 * - encrypted: a member (or the whole archive, or its header) is encrypted: `detail` names it.
 * - corrupt: the container is damaged or truncated past what the reader can read.
 * - size: the members' bytes would pass UnpackLimits.maxOutputBytes.
 * - members: more than UnpackLimits.maxMembers members.
 * - time: UnpackLimits.deadline passed.
 * - unsupported: the magic said this format, but a method inside it cannot be read.
 */
export type UnpackOutcome = 'ok' | 'encrypted' | 'corrupt' | 'size' | 'members' | 'time' | 'unsupported';

export interface UnpackResult {
  /** Members read so far, in the container's order (kept even when the outcome is not ok). */
  readonly members: UnpackedMember[];
  readonly outcome: UnpackOutcome;
  /** Why, in a few words (the member's name for `encrypted`). */
  readonly detail?: string | undefined;
  /**
   * The reader stopped at the container's end with bytes after it that it did not read (7-Zip's
   * "data after the end"): the stage looks there for another container, as some readers do
   * (cabextract reads every cabinet in a file, GNU tar skips to the next header).
   */
  readonly trailing?: boolean | undefined;
}

export interface UnpackLimits {
  /** Most bytes over all members of this one container. */
  readonly maxOutputBytes: number;
  /** Most members of this one container. */
  readonly maxMembers: number;
  /** Date.now() value past which the unpacker stops with outcome `time`. */
  readonly deadline: number;
}

/** Stable codes of the stage's limit verdicts (policy: action.limit) and of its faults. */
export const UnpackErrorCode = {
  DEPTH: 'EUNPACK_DEPTH',
  MEMBERS: 'EUNPACK_MEMBERS',
  SIZE: 'EUNPACK_SIZE',
  RATIO: 'EUNPACK_RATIO',
  TIME: 'EUNPACK_TIME',
  CORRUPT: 'EUNPACK_CORRUPT',
  UNSUPPORTED: 'EUNPACK_UNSUPPORTED',
  /** The unpacker itself failed (a thread that died, a bug): internal error, 451. */
  INTERNAL: 'EUNPACK_INTERNAL',
} as const;
