/**
 * An mbox file (a mailbox exported or forwarded as one attachment): the messages in it, split
 * at their "From " separator lines. Each becomes a member, which the stage then walks as mail.
 *
 * Readers disagree on where a message starts: RFC 4155 and mutt take a "From " line after an
 * empty line (or at the very start); Thunderbird and other readers take any line starting
 * "From ". A message hidden after a "From " line with no empty line before it is a message of
 * its own to them, and the body text of the one before to the strict rule; so both splits are
 * made, and each message of either is a member (the same range once).
 *
 * Written by hand: the format is a line rule and a library would bring a mailbox model we do
 * not need. Quoted ">From " lines are left as they are: for a scanner the bytes in between
 * are what matters, and un-quoting cannot hide or reveal content.
 *
 * Input: the file's bytes and limits. Output: UnpackResult (members "[message N]", and
 * "[message N, lenient]" for a message only the any-line rule finds). Linear in the input (one
 * indexOf pass per rule); never throws.
 */
import type { UnpackLimits, UnpackResult, UnpackedMember } from './types.js';

export function unpackMbox(input: Buffer, limits: UnpackLimits): UnpackResult {
  const members: UnpackedMember[] = [];
  let total = 0;
  const strict: number[] = [];
  const any: number[] = [];
  if (input.toString('latin1', 0, 5) === 'From ') { strict.push(0); any.push(0); }
  for (let k = input.indexOf('\nFrom ', 0, 'latin1'); k >= 0; k = input.indexOf('\nFrom ', k + 6, 'latin1')) {
    any.push(k + 1);
    if (input[k - 1] === 0x0a || (input[k - 1] === 0x0d && input[k - 2] === 0x0a)) strict.push(k + 1);
  }
  const taken = new Set<string>();
  const split = (starts: number[], label: (n: number) => string): UnpackResult | undefined => {
    for (let n = 0; n < starts.length; n++) {
      if (Date.now() > limits.deadline) return { members, outcome: 'time' };
      const from = starts[n]!;
      const end = n + 1 < starts.length ? starts[n + 1]! : input.length;
      const nl = input.indexOf(0x0a, from);
      if (nl < 0 || nl >= end) continue; // a last "From " line alone: no message, its bytes are scanned with the file
      const key = `${nl + 1}:${end}`;
      if (taken.has(key)) continue;
      taken.add(key);
      if (members.length >= limits.maxMembers) return { members, outcome: 'members' };
      const body = input.subarray(nl + 1, end);
      if (total + body.length > limits.maxOutputBytes) return { members, outcome: 'size' };
      total += body.length;
      members.push({ name: label(n), bytes: body });
    }
    return undefined;
  };
  return split(strict, (n) => `[message ${n + 1}]`) ?? split(any, (n) => `[message ${n + 1}, lenient]`) ?? { members, outcome: 'ok' };
}
