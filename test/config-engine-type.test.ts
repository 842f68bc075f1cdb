// Regression test for src/config/load.ts found by test/fuzz-config.test.ts: an engine type was
// looked up with ENGINE_KEYS[type], so a type naming an Object member found that member and the
// loader crashed with "TypeError: specs.map is not a function" instead of a ConfigError.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ConfigError, parseConfig } from '../src/config/load.js';

test('an engine type naming an Object member (constructor, __proto__, toString) is ECONFIG_KEY, not a TypeError', () => {
  for (const type of ['constructor', '__proto__', 'toString', 'hasOwnProperty', 'valueOf', 'isPrototypeOf']) {
    assert.throws(
      () => parseConfig(`[[engine]]\ntype = "${type}"\n`, '/etc/avfilter.toml'),
      (e: unknown) => {
        assert.ok(e instanceof ConfigError, `ConfigError for ${type}, got ${String(e)}`);
        assert.equal(e.code, 'ECONFIG_KEY');
        assert.equal(e.message, `/etc/avfilter.toml:2: engine[0].type = "${type}" is unknown; use "clamd", "yara", "icap" or "command"`);
        return true;
      },
    );
  }
});
