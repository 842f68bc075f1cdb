/**
 * Which item goes to which engine (src/scan/route.ts): every engine gets the raw message, every
 * decoded part under every reading and every container member. The detection side is proved end to end through a real clamd
 * by test/clamd-routing.test.ts and test/mime-corpus.test.ts.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { route } from '../src/scan/route.js';
import type { Engine, ScanItem } from '../src/engines/engine.js';
import { bufferSource } from '../src/bytes/sources.js';

const engine = (label: string): Engine => ({
  label,
  scan: async () => ({ status: 'clean' }),
  version: async () => label,
  close: async () => undefined,
});
const item = (id: string, reading: string, container?: string): ScanItem => ({
  id, kind: id === 'raw' ? 'raw' : 'part', reading, source: bufferSource(Buffer.from(id)), ...(container !== undefined ? { container } : {}),
});

test('route: no decoded part is spared an engine, whatever reading found it (clamd was spared the standard reading and missed what its own parser reads otherwise)', () => {
  const readings = ['standard', 'lenient', 'preamble', 'epilogue', 'last-CTE', 'dup-boundary-2', 'uuencode', 'base64-block', 'yenc', 'binhex', 'data-uri'];
  const items = [item('raw', 'raw'), ...readings.map((r, i) => item(String(i + 1), r))];
  const clamd = engine('clamd');
  const yara = engine('yara');
  const jobs = route(items, [clamd, yara]);
  for (const e of [clamd, yara]) {
    assert.deepEqual(jobs.filter((j) => j.engine === e).map((j) => j.item), items, `${e.label} gets every item in document order`);
  }
});

test('route: members of containers go to every engine, clamd included (its own unpackers miss what other readers extract)', () => {
  const member = item('2/a.zip/x.exe', 'container', 'zip');
  const items = [item('raw', 'raw'), item('2', 'standard'), member];
  const clamd = engine('clamd');
  const yara = engine('yara');
  const jobs = route(items, [clamd, yara]);
  for (const e of [clamd, yara]) assert.deepEqual(jobs.filter((j) => j.engine === e).map((j) => j.item.id), ['raw', '2', '2/a.zip/x.exe'], e.label);
});

test('route: an item an engine declines (clamd raw_message = "parts": the raw message read one way) goes to the other engines only', () => {
  const items = [item('raw', 'raw'), item('1', 'standard'), item('2', 'standard')];
  const clamd: Engine = { ...engine('clamd'), declines: (i) => i.kind === 'raw' };
  const yara = engine('yara');
  const jobs = route(items, [clamd, yara]);
  assert.deepEqual(jobs.filter((j) => j.engine === clamd).map((j) => j.item.id), ['1', '2']);
  assert.deepEqual(jobs.filter((j) => j.engine === yara).map((j) => j.item.id), ['raw', '1', '2']);
});

test('route: an engine that would decline every item of a message gets them all (no message goes by an engine unseen)', () => {
  const clamd: Engine = { ...engine('clamd'), declines: (i) => i.kind === 'raw' };
  assert.deepEqual(route([item('raw', 'raw')], [clamd]).map((j) => j.item.id), ['raw'], 'a message with no part');
  const picky: Engine = { ...engine('picky'), declines: () => true };
  assert.deepEqual(route([item('raw', 'raw'), item('1', 'standard')], [picky]).map((j) => j.item.id), ['raw', '1']);
});
