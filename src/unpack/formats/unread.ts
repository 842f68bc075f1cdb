/**
 * Formats recognised so that they are never taken for plain bytes, though nothing here reads
 * them: lzop (`lzop -d` extracts what it holds; 7-Zip 24.09 has no handler, and npm's LZO
 * decoders are a native addon (lzo), an early WebAssembly build of FFmpeg's (lzo-wasm) or
 * little used (lzo-decompress)). Each answers `unsupported`, which the stage makes a limit
 * verdict: the content was not seen, so the item is not clean.
 *
 * Owns: that answer. Input: any bytes. Output: UnpackResult `unsupported`. Pure; never throws.
 */
import type { UnpackResult } from '../types.js';

export function unpackLzop(): UnpackResult {
  return { members: [], outcome: 'unsupported', detail: 'no lzop reader' };
}
