/**
 * Checks of engine options shared by the icap and command engines (the config loader checked
 * the config's values already; these guard the engines' own API). Throws an Error with code
 * EBADOPTION naming the engine.
 */
export function badOption(engine: string, message: string): Error {
  return Object.assign(new Error(`${engine} engine: ${message}`), { code: 'EBADOPTION' });
}

export function positiveInt(engine: string, name: string, v: number, max: number): void {
  if (!Number.isInteger(v) || v < 1 || v > max) throw badOption(engine, `${name} must be an integer in 1..${max}, got ${String(v)}`);
}
