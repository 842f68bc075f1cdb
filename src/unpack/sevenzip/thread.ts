/**
 * One 7-Zip thread: runs 7-Zip 24.09 compiled to WebAssembly (npm `7z-wasm`) on archives sent by
 * the pool (pool.ts), one job at a time, in a worker thread so that hostile input can cost this
 * thread (terminated by the pool on a deadline), never the worker that owns the mail.
 *
 * Owns: the 7-Zip module of this thread (instantiated once from the Module the pool compiled),
 * its in-memory file system (MEMFS; one mount per job, dropped after it), the byte and member
 * caps enforced inside the file system, and the capture of each member as 7-Zip closes it.
 * Inputs: JobRequest / VersionRequest messages (protocol.ts). Outputs: JobReply (members in the
 * transfer list), VersionReply, or FaultReply when the module itself trapped (a WASM abort):
 * the pool then rejects with EUNPACK_INTERNAL and replaces this thread.
 *
 * Why capture at close: 7-Zip overwrites a file it extracts twice (two members with one name);
 * taking each file's bytes as it is closed keeps both, in the archive's order, and frees them
 * from MEMFS at once. Why caps in the file system: the only place every decoder's output passes;
 * a write past the cap fails with ENOSPC, 7-Zip stops, and the outcome is `size`, whatever the
 * archive's headers claimed. C++ exceptions are not caught inside this build (7-Zip's own
 * catch handlers never run): they escape callMain as a number, so the thread is retired after.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { createRequire } from 'node:module';
import type { SevenZipModule, SevenZipModuleFactory } from '7z-wasm';
import type { JobReply, JobRequest, Reply, Request, ThreadData, WireMember } from './protocol.js';
import { classifyRun, encrypted7zHeader } from './outcome.js';
import { unhideMembers } from './unhide.js';

const require = createRequire(import.meta.url);
const factory = require('7z-wasm') as SevenZipModuleFactory;

/** Never empty: a bare -p makes 7-Zip prompt on stdin and hang. Any encrypted member fails. */
const DUMMY_PASSWORD_SWITCH = '-pavfilter';
const JOB_DIR = '/job';
const OUT_DIR = `${JOB_DIR}/out`;
const DATA_NAME = '[data]';
const FIRST_BLOCK_BYTES = 64 * 1024;
const MAX_BLOCK_BYTES = 1024 * 1024;
const ENOSPC = 28;
const EMFILE = 33;
const O_ACCMODE = 3;

// The parts of Emscripten's FS that the typings of 7z-wasm leave out.
interface EmNode {
  mode: number;
  contents: Uint8Array | null;
  usedBytes: number;
}
interface EmStream {
  fd: number;
  path: string;
  node: EmNode;
  flags: number;
  tty?: unknown;
}
interface EmFS {
  open(path: string, flags: number | string, mode?: number): EmStream;
  close(stream: EmStream): void;
  write(stream: EmStream, buf: Uint8Array, off: number, len: number, pos?: number, canOwn?: boolean): number;
  streams: Array<EmStream | null>;
  isFile(mode: number): boolean;
  mkdir(path: string): void;
  rmdir(path: string): void;
  mount(type: unknown, opts: object, mountpoint: string): void;
  unmount(mountpoint: string): void;
  createDataFile(parent: string, name: string, data: Uint8Array, r: boolean, w: boolean, canOwn: boolean): void;
  filesystems: { MEMFS: unknown };
  ErrnoError: new (errno: number) => Error;
}

/**
 * One file 7-Zip opened for writing during the job, in opening order. Sequential writes are
 * copied into blocks beside MEMFS (MEMFS grows a big file by 1/8 at a time, copying it each
 * time: ten times slower than the decoder); a write elsewhere moves them into MEMFS. A member's
 * blocks start at FIRST_BLOCK_BYTES and double up to MAX_BLOCK_BYTES: a small member costs a
 * small block, a large one few blocks, and 7-Zip's many small writes are not one object each.
 */
interface Capture {
  name: string;
  node: EmNode;
  /** Full blocks (and, once taken, the last one cut to its length). */
  chunks: Uint8Array[];
  /** Bytes written: the chunks' and the current block's. */
  length: number;
  /** The block being filled, and how much of it is. */
  block?: Uint8Array | undefined;
  blockUsed?: number;
  inMemfs: boolean;
  /**
   * The member's bytes once 7-Zip closed it: the chunks as written (never joined here: joining
   * a 256 MiB member doubled a bomb's peak memory), or MEMFS's one array.
   */
  parts?: Uint8Array[];
  partsLength?: number;
}

interface JobState {
  maxOutputBytes: number;
  maxMembers: number;
  written: number;
  captures: Capture[];
  byNode: Map<EmNode, Capture>;
  sizeCapped: boolean;
  membersCapped: boolean;
}

const data = workerData as ThreadData;
let job: JobState | undefined;
let memory: WebAssembly.Memory | undefined;
let stack: { get: () => number; restore: (sp: number) => void } | undefined;
let heapRefused = false;
const lines: string[] = [];

function limitHeap(mem: WebAssembly.Memory, limitBytes: number): void {
  // Emscripten grows the heap through this method; refusing makes malloc fail, which 7-Zip
  // reports as bad_alloc / "Can't allocate required memory" (a limit) instead of taking 2 GiB.
  const grow = mem.grow.bind(mem);
  Object.defineProperty(mem, 'grow', {
    value: (pages: number): number => {
      if (mem.buffer.byteLength + pages * 65536 > limitBytes) {
        heapRefused = true;
        throw new RangeError('WASM heap limit');
      }
      return grow(pages);
    },
  });
}

/**
 * 7-Zip prints a line per damaged member: a hostile archive with a million of them must not
 * fill this thread's memory. The first lines are enough to name the outcome.
 */
const MAX_LINES = 10_000;
const MAX_LINE_CHARS = 2_000;
function keepLine(s: string): void {
  if (lines.length < MAX_LINES) lines.push(s.length > MAX_LINE_CHARS ? s.slice(0, MAX_LINE_CHARS) : s);
}

const module: SevenZipModule = await factory({
  print: keepLine,
  printErr: keepLine,
  instantiateWasm(imports: WebAssembly.Imports, done: (inst: WebAssembly.Instance, mod: WebAssembly.Module) => void) {
    const instance = new WebAssembly.Instance(data.wasm, imports);
    memory = instance.exports['memory'] as WebAssembly.Memory;
    stack = {
      get: instance.exports['emscripten_stack_get_current'] as () => number,
      restore: instance.exports['_emscripten_stack_restore'] as (sp: number) => void,
    };
    limitHeap(memory, data.heapLimitBytes);
    done(instance, data.wasm);
    return {};
  },
} as never);
const FS = module.FS as unknown as EmFS;
hookFileSystem();

function isOutputStream(stream: EmStream): boolean {
  // Every regular file opened for writing, wherever it lies: a link inside the archive must not
  // lead a write around the caps. The console (tty) is not a regular file.
  return job !== undefined && stream.tty === undefined && FS.isFile(stream.node.mode) && (stream.flags & O_ACCMODE) !== 0;
}

function hookFileSystem(): void {
  const open = FS.open.bind(FS);
  const write = FS.write.bind(FS);
  const close = FS.close.bind(FS);
  FS.open = (path, flags, mode) => {
    const stream = open(path, flags, mode);
    if (job && isOutputStream(stream)) {
      if (job.captures.length >= job.maxMembers) {
        job.membersCapped = true;
        close(stream);
        throw new FS.ErrnoError(EMFILE);
      }
      const capture: Capture = { name: memberName(stream.path), node: stream.node, chunks: [], length: 0, inMemfs: false };
      job.captures.push(capture);
      job.byNode.set(stream.node, capture);
    }
    return stream;
  };
  FS.write = (stream, buf, off, len, pos, canOwn) => {
    if (job && isOutputStream(stream)) {
      const room = job.maxOutputBytes - job.written;
      if (len > room) {
        job.sizeCapped = true;
        if (room <= 0) throw new FS.ErrnoError(ENOSPC);
        len = room; // keep what fits: the start of a bomb member is still scanned
      }
      const capture = job.byNode.get(stream.node);
      const at = pos ?? (stream as unknown as { position: number }).position;
      if (capture && !capture.inMemfs && at === capture.length) {
        append(capture, new Uint8Array(buf.buffer, buf.byteOffset + off, len));
        if (pos === undefined) (stream as unknown as { position: number }).position += len;
        job.written += len;
        return len;
      }
      if (capture && !capture.inMemfs) {
        capture.inMemfs = true;
        const all = joinChunks(capture);
        if (all.length > 0) write(stream, all, 0, all.length, 0);
      }
      const n = write(stream, buf, off, len, pos, canOwn);
      job.written += n;
      return n;
    }
    return write(stream, buf, off, len, pos, canOwn);
  };
  FS.close = (stream) => {
    const capture = job?.byNode.get(stream.node);
    close(stream);
    if (capture) takeBytes(capture);
  };
}

function memberName(path: string): string {
  if (!path.startsWith(OUT_DIR + '/')) return path;
  const name = path.slice(OUT_DIR.length + 1);
  // A stream without a stored name is named after the input ("[data]"); 7-Zip appends "~"
  // when the input has no extension it knows (MsLZ).
  return name === `${DATA_NAME}~` ? DATA_NAME : name;
}

/** Copies `src` to the member's blocks. */
function append(capture: Capture, src: Uint8Array): void {
  let at = 0;
  while (at < src.length) {
    let block = capture.block;
    let used = capture.blockUsed ?? 0;
    if (block === undefined || used === block.length) {
      if (block !== undefined) capture.chunks.push(block);
      block = new Uint8Array(block === undefined ? FIRST_BLOCK_BYTES : Math.min(MAX_BLOCK_BYTES, block.length * 2));
      capture.block = block;
      used = 0;
    }
    const n = Math.min(block.length - used, src.length - at);
    block.set(src.subarray(at, at + n), used);
    capture.blockUsed = used + n;
    at += n;
  }
  capture.length += src.length;
}

/** The block being filled joins the chunks, cut to what it holds (a copy of at most a block). */
function sealBlock(capture: Capture): void {
  const block = capture.block;
  const used = capture.blockUsed ?? 0;
  capture.block = undefined;
  capture.blockUsed = 0;
  if (block === undefined || used === 0) return;
  capture.chunks.push(used === block.length ? block : block.slice(0, used));
}

function joinChunks(capture: Capture): Uint8Array {
  sealBlock(capture);
  const all = capture.chunks.length === 1 ? capture.chunks[0]! : new Uint8Array(capture.length);
  if (capture.chunks.length > 1) {
    let at = 0;
    for (const c of capture.chunks) {
      all.set(c, at);
      at += c.length;
    }
  }
  capture.chunks = [];
  capture.length = 0;
  return all;
}

/** Takes a closed file's bytes (its chunks, or MEMFS's array without a copy) and frees them. */
function takeBytes(capture: Capture): void {
  let parts: Uint8Array[];
  let length: number;
  if (!capture.inMemfs) {
    if (capture.length === 0 && capture.parts) return; // taken already
    sealBlock(capture);
    parts = capture.chunks;
    length = capture.length;
    capture.chunks = [];
    capture.length = 0;
  } else {
    const { node } = capture;
    const bytes = node.contents ? node.contents.subarray(0, node.usedBytes) : new Uint8Array(0);
    node.contents = null;
    node.usedBytes = 0;
    parts = [bytes];
    length = bytes.length;
  }
  if (capture.parts === undefined || (capture.partsLength ?? 0) <= length) {
    capture.parts = parts;
    capture.partsLength = length;
  }
}

function cstring(mem: WebAssembly.Memory, ptr: number): string {
  const u8 = new Uint8Array(mem.buffer);
  let end = ptr;
  while (end < u8.length && u8[end] !== 0) end++;
  return Buffer.from(u8.subarray(ptr, end)).toString('latin1');
}

/** The mangled type name of a C++ exception that escaped (Emscripten's exception layout). */
function exceptionType(ptr: number): string {
  if (!memory) return '?';
  try {
    const u32 = new Uint32Array(memory.buffer);
    const typeInfo = u32[(ptr - 24 + 4) >>> 2]!;
    return cstring(memory, u32[(typeInfo + 4) >>> 2]!);
  } catch {
    return '?';
  }
}

/** Runs 7-Zip once. Returns its exit code, or the escaped C++ exception's type. */
function run(args: string[]): { exitCode?: number; escaped?: string } {
  lines.length = 0;
  heapRefused = false;
  // callMain puts argv on the WASM stack and never pops it, and an escaped exception leaves
  // the stack pointer deep inside 7-Zip: without this, repeated calls would overflow the
  // (unchecked) stack into the heap.
  const sp = stack!.get();
  try {
    return { exitCode: module.callMain(args) as unknown as number };
  } catch (err) {
    if (typeof err === 'number') return { escaped: exceptionType(err) };
    const status = (err as { status?: unknown } | null)?.status;
    if (typeof status === 'number') return { exitCode: status }; // ExitStatus
    throw err; // a WASM trap: this thread's fault
  } finally {
    stack!.restore(sp);
    process.exitCode = 0; // Emscripten sets it on an escaped exception
  }
}

function inputName(type: string): string {
  // 7-Zip names a single-stream member after the archive without its extension; with these
  // names a stream that stores no name of its own comes out as "[data]".
  const ext: Record<string, string> = { gzip: '.gz', bzip2: '.bz2', xz: '.xz', zstd: '.zst', Z: '.Z', lzma: '.lzma' };
  return `${DATA_NAME}${ext[type] ?? ''}`;
}

function runJob(req: JobRequest): { reply: JobReply; transfer: ArrayBuffer[] } {
  const MEMFS = FS.filesystems.MEMFS;
  FS.mkdir(JOB_DIR);
  FS.mount(MEMFS, {}, JOB_DIR);
  FS.mkdir(OUT_DIR);
  const input = new Uint8Array(req.input);
  // entries holding data but marked as directories or links become files (unhide.ts): this
  // copy of the archive is the thread's own
  unhideMembers(req.sevenZipType, input);
  const name = inputName(req.sevenZipType);
  FS.createDataFile(JOB_DIR, name, input, true, false, true); // canOwn: no copy
  const state: JobState = {
    maxOutputBytes: req.maxOutputBytes,
    maxMembers: req.maxMembers,
    written: 0,
    captures: [],
    byNode: new Map(),
    sizeCapped: false,
    membersCapped: false,
  };
  job = state;
  let result: { exitCode?: number; escaped?: string };
  try {
    result = run(['x', DUMMY_PASSWORD_SWITCH, '-t' + req.sevenZipType, '-y', '-aoa', '-bd', '-bsp0', '-o' + OUT_DIR, `${JOB_DIR}/${name}`]);
  } finally {
    job = undefined;
    // Files 7-Zip left open (an escaped exception skips its destructors): take them, then
    // drop the whole mount so a long-lived thread keeps nothing.
    for (const stream of FS.streams) {
      if (stream && stream.fd > 2) {
        const capture = state.byNode.get(stream.node);
        if (capture) takeBytes(capture);
        try {
          FS.close(stream);
        } catch {
          // already unusable: dropped with the mount
        }
      }
    }
    FS.unmount(JOB_DIR);
    FS.rmdir(JOB_DIR);
  }
  const verdict = classifyRun({
    exitCode: result.exitCode,
    escapedType: result.escaped,
    lines: [...lines],
    sizeCapped: state.sizeCapped,
    membersCapped: state.membersCapped,
    heapRefused,
    encryptedHeader: req.sevenZipType === '7z' && result.exitCode !== 0 && encrypted7zHeader(input),
    maxMembers: req.maxMembers,
  });
  const members: WireMember[] = [];
  const transfer: ArrayBuffer[] = [];
  const transferred = new Set<ArrayBuffer>();
  for (const c of state.captures) {
    if (verdict.droppedNames.has(c.name)) continue; // not the member's bytes (wrong password, no decoder)
    const buffers: ArrayBuffer[] = [];
    for (const part of c.parts ?? []) {
      // a buffer of its own (transferable without a copy) unless MEMFS over-allocated a lot
      let buffer = part.buffer as ArrayBuffer;
      if (part.byteOffset !== 0 || buffer.byteLength !== part.length || transferred.has(buffer)) {
        buffer = part.slice().buffer as ArrayBuffer;
      }
      buffers.push(buffer);
      transfer.push(buffer);
      transferred.add(buffer);
    }
    members.push({ name: c.name, buffers, length: c.partsLength ?? 0 });
  }
  const retire = result.escaped !== undefined;
  return {
    reply: {
      type: 'job',
      id: req.id,
      members,
      outcome: verdict.outcome,
      detail: verdict.detail,
      trailing: verdict.trailing,
      heapBytes: memory?.buffer.byteLength ?? 0,
      retire,
    },
    transfer,
  };
}

function version(): string {
  run(['i']);
  const banner = lines.find((l) => l.startsWith('7-Zip'));
  return banner ? banner.replace(/\s*:.*$/, '').trim() : 'unknown';
}

function send(reply: Reply, transfer: ArrayBuffer[] = []): void {
  parentPort!.postMessage(reply, transfer);
}

parentPort!.on('message', (req: Request) => {
  try {
    if (req.type === 'version') {
      send({ type: 'version', id: req.id, version: version() });
    } else {
      const { reply, transfer } = runJob(req);
      send(reply, transfer);
    }
  } catch (err) {
    send({ type: 'fault', id: req.id, message: err instanceof Error ? err.message : String(err) });
  }
});
parentPort!.postMessage({ type: 'ready' });
