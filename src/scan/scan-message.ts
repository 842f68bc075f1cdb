/**
 * Scanning one message: the data file → MIME parts → every engine → one Verdict.
 *
 * This is a composition module: it joins src/mime and src/engines, which know nothing of each
 * other. Inputs: the path of a message file, the engines, MIME limits, a tmpdir and an
 * AbortSignal carrying the request's deadline. Output: a Verdict; it never throws for a bad
 * message or a failing engine (an unexpected fault becomes an "error" verdict with code
 * EINTERNAL).
 *
 * Order of precedence: infected (we know enough to act) > limit > error > clean. "clean" needs
 * every engine to have answered clean for every item: the raw message and each decoded part.
 */
import { stat } from 'node:fs/promises';
import type { Engine, EngineResult, ScanItem } from '../engines/engine.js';
import { extractParts, type MimeLimits } from '../mime/index.js';
import { fileSource } from '../scan/sources.js';
import { uniqueNames, type Finding, type Verdict } from '../policy/verdict.js';

export interface ScanDeps {
  readonly engines: readonly Engine[];
  readonly mimeLimits: MimeLimits;
  readonly tmpdir: string;
}

export interface ScanReport {
  readonly verdict: Verdict;
  /** Items handed to the engines (raw message + distinct decoded parts). */
  readonly items: number;
  readonly bytes: number;
}

/** How many scans of one message run at once: enough to overlap I/O, few enough to be fair. */
const ITEM_CONCURRENCY = 4;

export async function scanMessage(path: string, deps: ScanDeps, signal: AbortSignal): Promise<ScanReport> {
  try {
    return await scanMessageInner(path, deps, signal);
  } catch (err) {
    const code = errCode(err) ?? 'EINTERNAL';
    if (signal.aborted) return { verdict: { kind: 'error', code: 'ETIMEOUT', reason: 'request deadline reached' }, items: 0, bytes: 0 };
    return { verdict: { kind: 'error', code, reason: errMessage(err) }, items: 0, bytes: 0 };
  }
}

async function scanMessageInner(path: string, deps: ScanDeps, signal: AbortSignal): Promise<ScanReport> {
  if (deps.engines.length === 0) {
    return { verdict: { kind: 'error', code: 'ENO_ENGINE', reason: 'no scan engine configured' }, items: 0, bytes: 0 };
  }
  let size: number;
  try {
    const st = await stat(path);
    if (!st.isFile()) return { verdict: { kind: 'error', code: 'ENOT_FILE', reason: 'not a regular file' }, items: 0, bytes: 0 };
    size = st.size;
  } catch (err) {
    return { verdict: { kind: 'error', code: errCode(err) ?? 'EIO', reason: 'cannot read message file' }, items: 0, bytes: 0 };
  }

  const raw: ScanItem = { id: 'raw', kind: 'raw', source: fileSource(path, size), reading: 'raw' };
  const extraction = await extractParts({ path }, { limits: deps.mimeLimits, tmpdir: deps.tmpdir, signal });
  try {
    const items: ScanItem[] = [raw, ...extraction.parts.map((p) => ({
      id: p.path, kind: 'part' as const, source: p.source, filename: p.filename,
      contentType: p.contentType, encoding: p.encoding, reading: p.reading,
    }))];
    const bytes = items.reduce((n, i) => n + i.source.size, 0);
    const { findings, firstError } = await scanItems(items, deps.engines, signal);

    let verdict: Verdict;
    if (findings.length > 0) verdict = { kind: 'infected', names: uniqueNames(findings), findings };
    else if (extraction.limit) verdict = { kind: 'limit', code: extraction.limit.code, reason: extraction.limit.message };
    else if (firstError) verdict = { kind: 'error', code: firstError.code, reason: firstError.message };
    else verdict = { kind: 'clean', items: items.length };
    return { verdict, items: items.length, bytes };
  } finally {
    await extraction.dispose().catch(() => undefined);
  }
}

interface ScanOutcome { findings: Finding[]; firstError?: { code: string; message: string } | undefined }

/** Every engine on every item, a few at a time; stops starting new work once a virus is found. */
async function scanItems(items: readonly ScanItem[], engines: readonly Engine[], signal: AbortSignal): Promise<ScanOutcome> {
  const jobs: Array<{ item: ScanItem; engine: Engine }> = [];
  for (const item of items) for (const engine of engines) jobs.push({ item, engine });
  const out: ScanOutcome = { findings: [] };
  let next = 0;
  const worker = async () => {
    while (next < jobs.length && out.findings.length === 0 && !signal.aborted) {
      const { item, engine } = jobs[next++]!;
      const r = await safeScan(engine, item, signal);
      if (r.status === 'infected') {
        for (const name of r.names) {
          out.findings.push({ name, engine: engine.label, itemId: item.id, filename: item.filename, encoding: item.encoding, reading: item.reading });
        }
      } else if (r.status === 'error') {
        out.firstError ??= { code: r.code, message: `${engine.label}: ${r.message}` };
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(ITEM_CONCURRENCY, jobs.length) }, worker));
  if (out.findings.length === 0 && signal.aborted) out.firstError ??= { code: 'ETIMEOUT', message: 'request deadline reached' };
  return out;
}

/** An engine that throws (it should not) is a scanner error, never clean. */
async function safeScan(engine: Engine, item: ScanItem, signal: AbortSignal): Promise<EngineResult> {
  try {
    return await engine.scan(item, signal);
  } catch (err) {
    return { status: 'error', code: errCode(err) ?? 'EENGINE', message: errMessage(err) };
  }
}

function errCode(err: unknown): string | undefined {
  const c = (err as { code?: unknown } | null)?.code;
  return typeof c === 'string' ? c : undefined;
}

function errMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
