/**
 * Errors the embedded YARA-X engine raises while it is being set up (binding, rules directory,
 * compilation). Scans never throw: they resolve with an EngineResult (see ../engine.ts).
 *
 * Callers (the config loader, `--config -v`) classify by `code`, never by message text; the
 * message is for the admin and names the package, directory or file at fault.
 */
import { AvError } from '../../errors.js';

export const YaraErrorCode = {
  /** The native binding could not be loaded (other platform, package not installed). */
  UNAVAILABLE: 'EYARA_UNAVAILABLE',
  /** A rule file does not compile (or is not UTF-8); the message names the file. */
  COMPILE: 'EYARA_COMPILE',
  /** The rules directory is missing, not a directory, or holds no *.yar / *.yara file. */
  NO_RULES: 'EYARA_NO_RULES',
  /** The rules directory or a rule file exists but cannot be read (permissions, I/O). */
  RULES_IO: 'EYARA_RULES_IO',
} as const;

export type YaraErrorCodeValue = (typeof YaraErrorCode)[keyof typeof YaraErrorCode];

/** Raised while the engine is set up, from the config: origin `config`. */
export class YaraError extends AvError {
  declare readonly code: YaraErrorCodeValue;

  constructor(code: YaraErrorCodeValue, message: string, options?: { cause?: unknown }) {
    super(code, 'config', message, options);
    this.name = 'YaraError';
  }
}
