/**
 * The message handed to extractParts(): one type, made by one of three constructors that say
 * what the bytes are.
 * - MessageInput.fromBuffer(buf): the message in memory; every reading reads the buffer.
 * - MessageInput.fromFile(path): a file read in place (opened by each reading, never copied).
 * - MessageInput.fromStream(readable): a stream, read once as it comes and spooled to the
 *   extraction's private directory for the readings that read again.
 *
 * Owns: the constructors and the check that an input was made by one of them. Anything else
 * (a bare Readable, a { path } object) is a caller bug: a TypeError with code
 * ERR_INVALID_ARG_TYPE, thrown at once, never a guess from the object's shape.
 */
import { Readable } from 'node:stream';

export type MessageInput =
  | { readonly kind: 'buffer'; readonly buffer: Buffer }
  | { readonly kind: 'file'; readonly path: string }
  | { readonly kind: 'stream'; readonly stream: Readable };

/** Inputs made by the constructors below: a look-alike built by hand is refused. */
const made = new WeakSet<object>();

function make<T extends MessageInput>(input: T): T {
  Object.freeze(input);
  made.add(input);
  return input;
}

export const MessageInput = Object.freeze({
  fromBuffer(buffer: Buffer): MessageInput {
    if (!Buffer.isBuffer(buffer)) throw invalid('MessageInput.fromBuffer() takes a Buffer', buffer);
    return make({ kind: 'buffer', buffer });
  },
  fromFile(path: string): MessageInput {
    if (typeof path !== 'string' || path === '') throw invalid('MessageInput.fromFile() takes a path (a non-empty string)', path);
    return make({ kind: 'file', path });
  },
  fromStream(stream: Readable): MessageInput {
    if (!(stream instanceof Readable)) throw invalid('MessageInput.fromStream() takes a stream.Readable', stream);
    return make({ kind: 'stream', stream });
  },
});

/** Throws unless `input` was made by MessageInput.fromBuffer/fromFile/fromStream. */
export function checkInput(input: unknown): asserts input is MessageInput {
  if (typeof input !== 'object' || input === null || !made.has(input)) {
    throw invalid('the message must be a MessageInput: MessageInput.fromBuffer(buf), .fromFile(path) or .fromStream(readable)', input);
  }
}

function invalid(what: string, got: unknown): TypeError {
  const kind = got === null ? 'null' : typeof got === 'object' ? `an object (${(got as object).constructor?.name ?? 'no prototype'})` : typeof got;
  return Object.assign(new TypeError(`${what}; got ${kind}`), { code: 'ERR_INVALID_ARG_TYPE' });
}
