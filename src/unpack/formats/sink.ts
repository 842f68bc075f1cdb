/**
 * Where a format reader puts what it takes out (src/unpack/formats/): one per unpack call.
 * Owns the three limits every reader shares, so no reader re-implements them: the member count
 * (UnpackLimits.maxMembers), the output bytes over all members (maxOutputBytes, checked before
 * a member is kept and told to decoders as `room` so they stop before allocating more) and the
 * deadline (checked by the readers' loops through timeUp()).
 *
 * `size`, `members` and `time` stop the reader (stopped === true) and are what the result
 * says; `corrupt` lets it go on with the rest of the container, so one damaged stream does not
 * hide the next one, and is the result only when nothing stopped the reading.
 */
import type { UnpackedMember, UnpackLimits, UnpackOutcome, UnpackResult } from '../types.js';

export class MemberSink {
  readonly members: UnpackedMember[] = [];
  private bytes = 0;
  private outcome: UnpackOutcome = 'ok';
  private detail: string | undefined;
  private halted = false;
  private ticks = 0;

  constructor(private readonly limits: UnpackLimits) {}

  /** Output bytes still allowed (what a decoder may produce for the next member). */
  get room(): number {
    return Math.max(0, this.limits.maxOutputBytes - this.bytes);
  }

  /** True once a limit stopped the reading: the reader returns result() at once. */
  get stopped(): boolean {
    return this.halted;
  }

  /** Keeps a member unless a limit forbids it; false means stop. */
  add(name: string, bytes: Buffer): boolean {
    if (this.halted) return false;
    if (this.members.length >= this.limits.maxMembers) {
      this.fail('members', `more than ${this.limits.maxMembers} members`);
      return false;
    }
    if (bytes.length > this.room) {
      this.fail('size', `${name}: output passes ${this.limits.maxOutputBytes} bytes`);
      return false;
    }
    this.bytes += bytes.length;
    this.members.push({ name, bytes });
    return true;
  }

  /** A detail for an `ok` result (something the log should say); an outcome's detail wins. */
  note(detail: string): void {
    if (this.outcome === 'ok') this.detail ??= detail;
  }

  /**
   * Records an outcome; every outcome but `corrupt` stops the reading, unless `goOn` (content
   * this reader cannot decode: the verdict is a limit, but what comes after it is still read,
   * so a virus there is found).
   */
  fail(outcome: Exclude<UnpackOutcome, 'ok'>, detail: string, goOn = false): void {
    if (this.outcome === 'ok' || (this.outcome === 'corrupt' && outcome !== 'corrupt')) {
      this.outcome = outcome;
      this.detail = detail;
    }
    if (outcome !== 'corrupt' && !goOn) this.halted = true;
  }

  /**
   * Checks the deadline; cheap enough for every loop turn (Date.now() every 256th call: the
   * loops' turns are short, so the deadline is overrun by microseconds only).
   */
  timeUp(): boolean {
    if (this.halted) return true;
    if ((++this.ticks & 0xff) !== 0) return false;
    if (Date.now() > this.limits.deadline) {
      this.fail('time', 'deadline passed');
      return true;
    }
    return false;
  }

  /** Checks the deadline now (before and after a long library call). */
  timeUpNow(): boolean {
    if (this.halted) return true;
    if (Date.now() > this.limits.deadline) {
      this.fail('time', 'deadline passed');
      return true;
    }
    return false;
  }

  result(): UnpackResult {
    return { members: this.members, outcome: this.outcome, detail: this.detail };
  }
}
