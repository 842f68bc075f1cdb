import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigError, loadConfig, parseConfig, parseSize } from '../src/config/load.js';
import { ACTION_KEYS, ENGINE_KEYS, MIME_KEYS, SECTIONS, TOP_KEYS } from '../src/config/schema.js';
import { formatConfig } from '../src/config/print.js';

function err(fn: () => unknown): ConfigError {
  try {
    fn();
  } catch (e) {
    assert.ok(e instanceof ConfigError, `expected ConfigError, got ${String(e)}`);
    return e;
  }
  assert.fail('expected an error');
}

test('empty config gives the documented defaults, with the embedded engine', () => {
  const c = parseConfig('', 'x.toml');
  assert.equal(c.all_mode, true);
  assert.equal(c.socket_dir_all, '/var/lib/courier/allfilters');
  assert.equal(c.request_timeout, 120);
  assert.equal(c.action.infected, 'drop');
  assert.equal(c.action.error, 'tempfail');
  assert.deepEqual(c.engine.map((e) => e.type), ['yara']);
  assert.ok(Object.isFrozen(c) && Object.isFrozen(c.action) && Object.isFrozen(c.engine));
});

test('contract keys parse, sizes accept "25M"', () => {
  const c = parseConfig(`
all_mode = false
waitfile = "/run/avfilter.wait"
request_timeout = 30
[[engine]]
type = "clamd"
servers = ["unix:/run/clamav/clamd.ctl", "tcp:127.0.0.1:3310", "tcp:[::1]:3310"]
max_stream_size = "25M"
[[engine]]
type = "yara"
rules = "/etc/avfilter/rules"
[action]
infected = "reject"
error = "accept"
quarantine = true
`, 'x.toml');
  assert.equal(c.all_mode, false);
  assert.equal(c.engine.length, 2);
  const clamd = c.engine[0]!;
  assert.equal(clamd.type, 'clamd');
  if (clamd.type === 'clamd') {
    assert.equal(clamd.max_stream_size, 25 * 1024 * 1024);
    assert.equal(clamd.servers.length, 3);
    assert.equal(clamd.connect_timeout, 5);
  }
  assert.equal(c.action.infected, 'reject');
  assert.equal(c.action.error, 'accept');
});

test('unknown keys are errors naming the key and its line', () => {
  const e = err(() => parseConfig('all_mode = true\nreqest_timeout = 5\n', '/etc/a.toml'));
  assert.equal(e.code, 'ECONFIG_KEY');
  assert.match(e.message, /^\/etc\/a\.toml:2: unknown key "reqest_timeout"/);
  const e2 = err(() => parseConfig('[action]\ninfected = "drop"\nbogus = 1\n', 'a.toml'));
  assert.match(e2.message, /a\.toml:3: unknown key "action\.bogus"/);
  const e3 = err(() => parseConfig('[[engine]]\ntype = "clamd"\nserver = ["x"]\n', 'a.toml'));
  assert.match(e3.message, /unknown key "engine\[0\]\.server"/);
});

test('bad values name key, expectation and line', () => {
  assert.match(err(() => parseConfig('x = 1\nrequest_timeout = "soon"\n', 'a.toml')).message, /unknown key "x"/);
  assert.match(err(() => parseConfig('\nrequest_timeout = "soon"\n', 'a.toml')).message, /a\.toml:2: "request_timeout" must be a number of seconds/);
  assert.match(err(() => parseConfig('request_timeout = 0\n', 'a.toml')).message, /from 1 to 3600/);
  assert.match(err(() => parseConfig('[action]\ninfected = "delete"\n', 'a.toml')).message, /a\.toml:2: "action\.infected" must be one of "drop", "reject", "tempfail", "pass"/);
  assert.match(err(() => parseConfig('tmpdir = "relative/dir"\n', 'a.toml')).message, /absolute path/);
  assert.match(err(() => parseConfig('[[engine]]\ntype = "sophos"\n', 'a.toml')).message, /type = "sophos" is unknown/);
  assert.match(err(() => parseConfig('[[engine]]\ntype = "icap"\nurl = "icap://x"\n', 'a.toml')).message, /a\.toml:3: "engine\[0\]\.url": url "icap:\/\/x": needs a service path/);
  assert.match(err(() => parseConfig('[[engine]]\ntype = "icap"\n', 'a.toml')).message, /^a\.toml:1: "engine\[0\]\.url" is required/);
  assert.match(err(() => parseConfig('[[engine]]\ntype = "command"\ncommand = ["s", "{}"]\nname_pattern = "(a)(b)"\n', 'a.toml')).message, /a\.toml:4: "engine\[0\]\.name_pattern" must have exactly one capture group/);
  assert.match(err(() => parseConfig('[[engine]]\ntype = "command"\ncommand = ["s", "{}"]\ninfected_exit = [256]\n', 'a.toml')).message, /a\.toml:4: "engine\[0\]\.infected_exit" must be a list of exit codes/);
  assert.match(err(() => parseConfig('[[engine]]\ntype = "clamd"\nservers = []\n', 'a.toml')).message, /a\.toml:3: "engine\[0\]\.servers" must be a list of addresses/);
});

test('a typo in a key says which key was meant (server → servers) and where', () => {
  const e = err(() => parseConfig('[[engine]]\ntype = "yara"\n\n[[engine]]\ntype = "clamd"\nserver = ["unix:/x"]\n', 'a.toml'));
  assert.equal(e.message, 'a.toml:6: unknown key "engine[1].server"; did you mean "servers"?');
  assert.match(err(() => parseConfig('workres = 2\n', 'a.toml')).message, /a\.toml:1: unknown key "workres"; did you mean "workers"\?/);
});

test('the line of a key in the second [[engine]] table is its own, not the first table\'s', () => {
  const text = '[[engine]]\ntype = "clamd"\nscan_timeout = 5\n[[engine]]\ntype = "clamd"\nscan_timeout = 0\n';
  assert.match(err(() => parseConfig(text, 'a.toml')).message, /^a\.toml:6: "engine\[1\]\.scan_timeout"/);
});


test('TOML syntax errors carry the line', () => {
  const e = err(() => parseConfig('all_mode = true\n\nrequest_timeout = = 3\n', 'b.toml'));
  assert.equal(e.code, 'ECONFIG_SYNTAX');
  assert.match(e.message, /^b\.toml:3: /);
});

test('parseSize', () => {
  assert.equal(parseSize(100), 100);
  assert.equal(parseSize('512K'), 512 * 1024);
  assert.equal(parseSize('25M'), 25 * 1024 * 1024);
  assert.equal(parseSize('1G'), 1024 ** 3);
  assert.equal(parseSize('1.5M'), undefined);
  assert.equal(parseSize(-1), undefined);
  assert.equal(parseSize('lots'), undefined);
});

test('file selection: -f, then $AVFILTER_CONFIG, missing named file is an error', () => {
  const dir = mkdtempSync(join(tmpdir(), 'avf-cfg-'));
  const f = join(dir, 'a.toml');
  writeFileSync(f, 'request_timeout = 7\n');
  assert.equal(loadConfig(f).request_timeout, 7);
  assert.equal(loadConfig(undefined, { AVFILTER_CONFIG: f }).request_timeout, 7);
  const e = err(() => loadConfig(join(dir, 'missing.toml')));
  assert.equal(e.code, 'ECONFIG_READ');
  assert.match(e.message, /missing\.toml/);
  assert.equal(err(() => loadConfig(undefined, { AVFILTER_CONFIG: join(dir, 'nope.toml') })).code, 'ECONFIG_READ');
});

test('--config output lists every key and parses back to the same config', () => {
  const c = parseConfig('[[engine]]\ntype = "clamd"\nservers = ["tcp:127.0.0.1:3310"]\n[action]\ninfected = "reject"\n', 'a.toml');
  const text = formatConfig(c);
  for (const s of [...TOP_KEYS, ...ACTION_KEYS, ...MIME_KEYS, ...ENGINE_KEYS['clamd']!]) {
    assert.match(text, new RegExp(`^${s.key} = `, 'm'), s.key);
  }
  const again = parseConfig(text, 'printed');
  assert.deepEqual({ ...again, source: '' }, { ...c, source: '' });
});

test('README documents every schema key', () => {
  const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');
  for (const s of TOP_KEYS) assert.ok(readme.includes(`| \`${s.key}\``), `README lacks ${s.key}`);
  for (const { name, specs } of SECTIONS) {
    for (const s of specs) assert.ok(readme.includes(`| \`${name}.${s.key}\``), `README lacks ${name}.${s.key}`);
  }
  for (const [, keys] of Object.entries(ENGINE_KEYS)) {
    for (const s of keys) assert.ok(readme.includes(`| \`${s.key}\``), `README lacks engine key ${s.key}`);
  }
});

test('--config output parses back to the same config, even for a path with DEL or C1 characters', () => {
  const cfg = parseConfig('tmpdir = "/var/x\\u007fy\\u0085z"\nspool_dirs = ["/a", "/b"]\n', 'a.toml');
  const printed = formatConfig(cfg);
  const again = parseConfig(printed, 'printed.toml');
  assert.equal(again.tmpdir, '/var/x\u007fy\u0085z');
  assert.deepEqual(again.spool_dirs, ['/a', '/b']);
});

test('[unpack] and action.encrypted: defaults, bounds, sizes, unknown keys', () => {
  const c = parseConfig('', 'x.toml');
  assert.deepEqual({ ...c.unpack }, { enabled: true, max_depth: 10, max_members: 10000, max_size: 256 * 1024 * 1024, max_ratio: 200, max_time: 30 });
  assert.equal(c.action.encrypted, 'reject');
  const d = parseConfig('[unpack]\nenabled = false\nmax_size = "64M"\nmax_depth = 3\n[action]\nencrypted = "pass"\n', 'x.toml');
  assert.equal(d.unpack.enabled, false);
  assert.equal(d.unpack.max_size, 64 * 1024 * 1024);
  assert.equal(d.unpack.max_depth, 3);
  assert.equal(d.action.encrypted, 'pass');
  assert.match(err(() => parseConfig('[unpack]\nmax_depth = 0\n', 'x.toml')).message, /x\.toml:2: "unpack\.max_depth"/);
  assert.match(err(() => parseConfig('[action]\nencrypted = "strip"\n', 'x.toml')).message, /action\.encrypted/);
  assert.match(err(() => parseConfig('[unpack]\nmax_dept = 3\n', 'x.toml')).message, /max_depth/);
  assert.match(formatConfig(c), /\[unpack\]\nenabled = true/);
});

test('worker_idle_memory_limit: 96M by default, a size like the other size keys, 0 turns it off, bounds name the key', () => {
  assert.equal(parseConfig('', 'x.toml').worker_idle_memory_limit, 96 * 1024 * 1024);
  assert.equal(parseConfig('worker_idle_memory_limit = "128M"\n', 'x.toml').worker_idle_memory_limit, 128 * 1024 * 1024);
  assert.equal(parseConfig('worker_idle_memory_limit = 0\n', 'x.toml').worker_idle_memory_limit, 0);
  assert.equal(parseConfig('worker_idle_memory_limit = "0"\n', 'x.toml').worker_idle_memory_limit, 0);
  assert.match(err(() => parseConfig('\nworker_idle_memory_limit = -1\n', 'x.toml')).message, /x\.toml:2: "worker_idle_memory_limit"/);
  assert.match(err(() => parseConfig('worker_idle_memory_limit = "lots"\n', 'x.toml')).message, /worker_idle_memory_limit.*size/);
  assert.match(formatConfig(parseConfig('worker_idle_memory_limit = "1G"\n', 'x.toml')), /^worker_idle_memory_limit = /m);
});

test('the contract\'s icap and command engine tables load, with their defaults', () => {
  const cfg = parseConfig([
    '[[engine]]', 'type = "icap"', 'url = "icap://127.0.0.1:1344/srv_clamav"', '',
    '[[engine]]', 'type = "command"', 'command = ["clamscan", "--no-summary", "{}"]', '',
  ].join('\n'), 'a.toml');
  assert.deepEqual({ ...cfg.engine[0] }, {
    type: 'icap', url: 'icap://127.0.0.1:1344/srv_clamav', connect_timeout: 5, scan_timeout: 60, max_size: 5 * 1024 * 1024, max_connections: 0,
  });
  assert.deepEqual(JSON.parse(JSON.stringify(cfg.engine[1])), {
    type: 'command', command: ['clamscan', '--no-summary', '{}'], version_command: [], scan_timeout: 60, max_processes: 2,
    max_size: 25 * 1024 * 1024, clean_exit: [0], infected_exit: [1], name_pattern: '^.*?: (.+) FOUND$',
  });
  assert.match(err(() => parseConfig('[[engine]]\ntype = "icap"\nurl = "http://127.0.0.1/x"\n', 'a.toml')).message, /a\.toml:3: "engine\[0\]\.url": .*must start with icap:\/\//);
  assert.match(err(() => parseConfig('[[engine]]\ntype = "command"\ncommand = []\n', 'a.toml')).message, /a\.toml:3: "engine\[0\]\.command" must be a list/);
});
