/**
 * Checks of engine options shared by the icap and command engines (the config loader checked
 * the config's values already; these guard the engines' own API). Throws an AvError with code
 * EBADOPTION (origin config) naming the engine.
 */
import { AvError } from '../errors.js';

export function badOption(engine: string, message: string): AvError {
  return new AvError('EBADOPTION', 'config', `${engine} engine: ${message}`);
}

export function positiveInt(engine: string, name: string, v: number, max: number): void {
  if (!Number.isInteger(v) || v < 1 || v > max) throw badOption(engine, `${name} must be an integer in 1..${max}, got ${String(v)}`);
}
