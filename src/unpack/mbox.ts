/**
 * An mbox file (a mailbox exported or forwarded as one attachment): the messages in it, split
 * at their "From " separator lines. Each becomes a member, which the stage then walks as mail.
 *
 * Written by hand: the format is a line rule (a line starting "From " after an empty line, or
 * at the very start, begins a message; RFC 4155) and a library would bring a mailbox model we
 * do not need. Quoted ">From " lines are left as they are: for a scanner the bytes in between
 * are what matters, and un-quoting cannot hide or reveal content.
 *
 * Input: the file's bytes and limits. Output: UnpackResult (members "[message N]"). Linear in
 * the input (one indexOf pass); never throws.
 */
import type { UnpackLimits, UnpackResult, UnpackedMember } from './types.js';

export function unpackMbox(input: Buffer, limits: UnpackLimits): UnpackResult {
  const members: UnpackedMember[] = [];
  let total = 0;
  const starts: number[] = [];
  if (input.toString('latin1', 0, 5) === 'From ') starts.push(0);
  let at = 0;
  for (;;) {
    const i = input.indexOf('\n\nFrom ', at, 'latin1');
    const j = input.indexOf('\n\r\nFrom ', at, 'latin1');
    const k = i < 0 ? j : j < 0 ? i : Math.min(i, j);
    if (k < 0) break;
    const start = input[k + 1] === 0x0d ? k + 3 : k + 2;
    starts.push(start);
    at = start + 5;
  }
  for (let n = 0; n < starts.length; n++) {
    if (Date.now() > limits.deadline) return { members, outcome: 'time' };
    if (members.length >= limits.maxMembers) return { members, outcome: 'members' };
    const from = starts[n]!;
    const end = n + 1 < starts.length ? starts[n + 1]! : input.length;
    const nl = input.indexOf(0x0a, from);
    if (nl < 0 || nl >= end) continue;
    const body = input.subarray(nl + 1, end);
    if (total + body.length > limits.maxOutputBytes) return { members, outcome: 'size' };
    total += body.length;
    members.push({ name: `[message ${n + 1}]`, bytes: body });
  }
  return { members, outcome: 'ok' };
}
