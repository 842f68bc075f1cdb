/**
 * Memory that comes back: when the master replaces an idle worker (worker_idle_memory_limit),
 * and the malloc settings its workers start with.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { IDLE_GROWTH_SLACK_BYTES, IDLE_RECYCLE_AFTER_MS, shouldRecycleIdle, type IdleWorkerFigures } from '../src/master/idle-recycle.js';
import { IDLE_GC_AFTER_MS } from '../src/worker/idle-gc.js';
import { workerEnv } from '../src/master/pool.js';

const MiB = 1024 * 1024;
const LIMIT = 96 * MiB;
/** A worker that qualifies: answered mail, idle long enough, far above the limit and its start. */
const fat: IdleWorkerFigures = { rss: 300 * MiB, readyRss: 80 * MiB, idleMs: IDLE_RECYCLE_AFTER_MS, served: 1, busy: 0 };

test('idle recycle: a worker idle long enough, above the limit and well above its size at start is replaced', () => {
  assert.equal(shouldRecycleIdle(fat, LIMIT), true);
  assert.equal(shouldRecycleIdle({ ...fat, idleMs: IDLE_RECYCLE_AFTER_MS * 100, served: 5000 }, LIMIT), true);
});

test('idle recycle: not while it holds a request, nor before it has been idle long enough', () => {
  assert.equal(shouldRecycleIdle({ ...fat, busy: 1 }, LIMIT), false);
  assert.equal(shouldRecycleIdle({ ...fat, idleMs: IDLE_RECYCLE_AFTER_MS - 1 }, LIMIT), false);
  assert.equal(shouldRecycleIdle({ ...fat, idleMs: 0 }, LIMIT), false);
});

test('idle recycle: a worker that has answered nothing is never replaced (a fresh one is as small as it gets)', () => {
  assert.equal(shouldRecycleIdle({ ...fat, served: 0 }, LIMIT), false);
});

test('idle recycle: at or under the limit it stays, however much it grew', () => {
  assert.equal(shouldRecycleIdle({ ...fat, rss: LIMIT, readyRss: 10 * MiB }, LIMIT), false);
  assert.equal(shouldRecycleIdle({ ...fat, rss: LIMIT + 1, readyRss: 10 * MiB }, LIMIT), true);
});

test('idle recycle: growth since ready of at most the slack is not worth a restart (a worker that starts above the limit is not replaced for ever)', () => {
  const ready = 150 * MiB;
  assert.equal(shouldRecycleIdle({ ...fat, readyRss: ready, rss: ready + IDLE_GROWTH_SLACK_BYTES }, LIMIT), false);
  assert.equal(shouldRecycleIdle({ ...fat, readyRss: ready, rss: ready + IDLE_GROWTH_SLACK_BYTES + 1 }, LIMIT), true);
  assert.equal(shouldRecycleIdle({ ...fat, readyRss: undefined }, LIMIT), false, 'size at start unknown: left alone');
});

test('idle recycle: worker_idle_memory_limit = 0 turns it off', () => {
  assert.equal(shouldRecycleIdle(fat, 0), false);
  assert.equal(shouldRecycleIdle({ ...fat, rss: 64 * 1024 * MiB }, 0), false);
});

test('worker environment: glibc malloc settings that give memory back, unless the admin set them; the rest passes through', () => {
  const env = workerEnv({ PATH: '/usr/bin', LANG: 'C' });
  assert.equal(env.MALLOC_ARENA_MAX, '2');
  assert.equal(env.MALLOC_MMAP_THRESHOLD_, '131072');
  assert.equal(env.MALLOC_TRIM_THRESHOLD_, '131072');
  assert.equal(env.PATH, '/usr/bin');
  assert.equal(env.LANG, 'C');
  const admin = workerEnv({ MALLOC_ARENA_MAX: '8', MALLOC_TRIM_THRESHOLD_: '1048576' });
  assert.equal(admin.MALLOC_ARENA_MAX, '8');
  assert.equal(admin.MALLOC_TRIM_THRESHOLD_, '1048576');
  assert.equal(admin.MALLOC_MMAP_THRESHOLD_, '131072', 'what the admin left unset gets the default');
  const given = { MALLOC_ARENA_MAX: '4' };
  workerEnv(given);
  assert.deepEqual(given, { MALLOC_ARENA_MAX: '4' }, 'the daemon\'s own environment is not changed');
});

test('idle recycle waits for the worker\'s own idle collection and the beat after it (a worker the collection brings down is not replaced)', () => {
  const BEATS = 2 * 1000;
  assert.ok(IDLE_RECYCLE_AFTER_MS >= IDLE_GC_AFTER_MS + BEATS, `${IDLE_RECYCLE_AFTER_MS} ms >= ${IDLE_GC_AFTER_MS} ms + two beats`);
});
