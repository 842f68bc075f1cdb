import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Slots } from '../src/worker/slots.js';

test('wedge: a waiter aborted while queued takes no slot, so the slots are all free again afterwards', async () => {
  const slots = new Slots(1);
  assert.equal(await slots.acquire(new AbortController().signal), true);
  const waiters = Array.from({ length: 6 }, () => new AbortController());
  const got = waiters.map((c) => slots.acquire(c.signal));
  for (const c of waiters) c.abort();
  assert.deepEqual(await Promise.all(got), [false, false, false, false, false, false]);
  assert.equal(slots.waiting, 0);
  slots.release();
  assert.equal(slots.inUse, 0);
  // the next request gets a slot at once
  assert.equal(await slots.acquire(new AbortController().signal), true);
});

test('slots: waiters are served in order as slots are released; release without a slot throws', async () => {
  const slots = new Slots(2);
  const s = new AbortController().signal;
  assert.equal(await slots.acquire(s), true);
  assert.equal(await slots.acquire(s), true);
  const order: number[] = [];
  const a = slots.acquire(s).then(() => order.push(1));
  const b = slots.acquire(s).then(() => order.push(2));
  slots.release();
  slots.release();
  await Promise.all([a, b]);
  assert.deepEqual(order, [1, 2]);
  slots.release();
  slots.release();
  assert.throws(() => slots.release(), /without a slot/);
  assert.equal(await slots.acquire(AbortSignal.abort()), false, 'an aborted signal gets no slot');
});
