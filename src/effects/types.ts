/**
 * What an effect is given and what it must provide. Each effect of a Decision
 * (policy/decision.ts) is carried out by one EffectRunner, a file of this directory registered
 * in run.ts; the spine calls runEffects() and nothing else.
 */
import type { Config } from '../config/load.js';
import type { ControlFile, ControlSummary } from '../courierfilter/control.js';
import type { Reply } from '../courierfilter/server.js';
import type { Engine } from '../engines/engine.js';
import type { LogFields, Logger } from '../ops/log.js';
import type { Decision, Effect, EffectKind } from '../policy/decision.js';
import type { Verdict } from '../policy/verdict.js';

export type { Decision, Effect, EffectKind } from '../policy/decision.js';

/** Courier's data file as the spine opened it (worker/data-file.ts). */
export interface MessageData {
  /** The path to read (and rewrite in place) the message by. */
  readonly readPath: string;
  readonly size: number;
  readAll(): Promise<Buffer>;
}

/** A message to scan again (strip scans what it wrote). */
export interface RescanInput {
  readonly path: string;
  readonly size: number;
  readonly bytes?: Buffer | undefined;
}

/** What effects tell the ones after them. */
export interface EffectState {
  /** Set by strip when the message cannot be delivered stripped: it is dropped instead (why). */
  dropInstead?: string;
  /** The quarantine entry's id, once kept. */
  quarantineId?: string;
}

export interface EffectEnv {
  /** The request's data path (as Courier named it). */
  readonly dataPath: string;
  readonly data: MessageData;
  /** The message's bytes when the spine read it whole (small messages), else undefined. */
  readonly bytes?: Buffer | undefined;
  readonly controls: readonly ControlFile[];
  readonly envelope: ControlSummary;
  readonly verdict: Verdict;
  readonly decision: Decision;
  readonly config: Config;
  readonly log: Logger;
  /** The message's log line: an effect adds what it did (quarantine=ID, dropped=N...). */
  readonly fields: LogFields;
  readonly signal: AbortSignal;
  rescan(input: RescanInput): Promise<Verdict>;
  readonly state: EffectState;
  /** The engines that scanned it (X-Virus-Scanned names them and their signature versions). */
  readonly engines?: readonly Engine[] | undefined;
}

/** What a commit effect gives back: how to take it back if a later one fails. */
export interface EffectDone {
  undo?: () => Promise<void>;
}

export interface EffectRunner<K extends EffectKind = EffectKind> {
  readonly kind: K;
  /**
   * commit: part of the answer: a failure makes it 451 and takes back the earlier commit
   * effects. after: runs once the answer stands (not after a 451 from a failed effect); a
   * failure is logged and changes nothing.
   */
  readonly phase: 'commit' | 'after';
  /** It writes the request's data or control files (run under the request's file lock). */
  readonly writes: boolean;
  /** "…could not be <failVerb>" in the 451 of a failure. */
  readonly failVerb: string;
  /** A failure that has its own answer (the handler's exit 75), else undefined. */
  failReply?(err: unknown): Reply | undefined;
  run(effect: Extract<Effect, { kind: K }>, env: EffectEnv): Promise<EffectDone | void>;
}
