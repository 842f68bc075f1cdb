/**
 * One error type: every error of avfilter's that carries a code is an AvError with an origin
 * (the named classes are AvErrors that only fix their name and origin), originOf classifies
 * them by that origin, each origin agrees with the class src/ops/codes.ts gives the code, and
 * the verdict's ErrorOrigin is errors.ts's Origin less `limit` and `config`.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { AvError, errorOriginOf, originOf, type ErrorOrigin, type Origin } from '../src/errors.js';
import type { ErrorOrigin as VerdictErrorOrigin } from '../src/policy/verdict.js';
import { CODES, type CodeClass } from '../src/ops/codes.js';
import { ConfigError, parseConfig } from '../src/config/load.js';
import { parseServer } from '../src/config/address.js';
import { parseMetricsAddress } from '../src/config/metrics-address.js';
import { parseIcapUrl } from '../src/config/icap-url.js';
import { InstallError } from '../src/app/install.js';
import { ControlError, parseControl, summarize } from '../src/courierfilter/control.js';
import { formatReply } from '../src/courierfilter/reply.js';
import { RequestReader } from '../src/courierfilter/request.js';
import { bindFilterSocket } from '../src/courierfilter/socket.js';
import { badOption } from '../src/engines/options.js';
import { YaraError, YaraErrorCode } from '../src/engines/yara/errors.js';
import { MimeError, MimeErrorCode } from '../src/mime/limits.js';
import { makeFifo, SigPipeError } from '../src/ops/sig-pipe.js';

// Compile-time: the vocabularies are one. A difference fails the build, not only this test.
type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
const verdictOriginsAreErrorsOrigins: Same<VerdictErrorOrigin, ErrorOrigin> = true;
const codeClassesAreOrigins: Same<Exclude<CodeClass, 'fault'> | 'internal', Origin> = true;

/** codes.ts says `fault` where errors.ts says `internal`; every other word is the same. */
const classOf = (o: Origin): CodeClass => (o === 'internal' ? 'fault' : o);

function caught(fn: () => unknown): unknown {
  try {
    fn();
  } catch (err) {
    return err;
  }
  assert.fail('expected a throw');
}

async function rejected(p: Promise<unknown>): Promise<unknown> {
  try {
    await p;
  } catch (err) {
    return err;
  }
  assert.fail('expected a rejection');
}

/** An AvError with this name, code and origin, that originOf classifies by that origin and the code table agrees with. */
function check(err: unknown, name: string, code: string, origin: Origin): void {
  assert.ok(err instanceof AvError, `${name}: an AvError, got ${String(err)}`);
  assert.equal(err.name, name);
  assert.equal(err.code, code);
  assert.equal(err.origin, origin, `${name} ${code}`);
  assert.equal(originOf(err), origin);
  const spec = (CODES as Record<string, { class: CodeClass }>)[code];
  if (spec !== undefined) assert.equal(spec.class, classOf(origin), `${code}: codes.ts says ${spec.class}, the error says ${origin}`);
}

test('the vocabularies are one (checked when this file compiles)', () => {
  assert.equal(verdictOriginsAreErrorsOrigins, true);
  assert.equal(codeClassesAreOrigins, true);
});

test('the named error classes are AvErrors that keep their name, code and message', () => {
  const cases: Array<[Error, string, string, Origin]> = [
    [new ConfigError('ECONFIG_KEY', 'a.toml:3: key x'), 'ConfigError', 'ECONFIG_KEY', 'config'],
    [new InstallError('must run as root'), 'InstallError', 'EINSTALL', 'config'],
    [new SigPipeError('EPIPE_BUSY', 'pipe busy'), 'SigPipeError', 'EPIPE_BUSY', 'input'],
    [new YaraError(YaraErrorCode.COMPILE, 'a.yar: bad'), 'YaraError', 'EYARA_COMPILE', 'config'],
    [new ControlError('EBAD_CONTROL', 'no s record'), 'ControlError', 'EBAD_CONTROL', 'input'],
    [new ControlError('EABORTED', 'deadline'), 'ControlError', 'EABORTED', 'abort'],
    [new ControlError('ESHORT_WRITE', 'short write'), 'ControlError', 'ESHORT_WRITE', 'internal'],
    [new ControlError('EINVAL', 'bad argument'), 'ControlError', 'EINVAL', 'internal'],
    [new ControlError('ENOENT', 'gone'), 'ControlError', 'ENOENT', 'input'],
  ];
  for (const [err, name, code, origin] of cases) check(err, name, code, origin);
  const cause = new Error('inner');
  const withCause = new ConfigError('ECONFIG_READ', 'cannot read', { cause });
  assert.equal(withCause.message, 'cannot read');
  assert.equal(withCause.cause, cause);
  assert.match(String(new ConfigError('ECONFIG_KEY', 'a.toml:3: key x')), /^ConfigError: a\.toml:3: key x$/);
});

test('every MimeError code has the origin the code table gives it (limits are limits, EABORTED an abort)', () => {
  for (const code of Object.values(MimeErrorCode)) check(new MimeError(code, 'x'), 'MimeError', code, CODES[code].class === 'fault' ? 'internal' : CODES[code].class as Origin);
  assert.equal(originOf(new MimeError(MimeErrorCode.ABORTED, 'x')), 'abort');
  assert.equal(originOf(new MimeError(MimeErrorCode.PART_LIMIT, 'x')), 'limit');
});

test('what the config checks throw: AvErrors of origin config, with their codes and messages', () => {
  const server = caught(() => parseServer('clamd.ctl'));
  check(server, 'AvError', 'EBADSERVER', 'config');
  assert.match((server as Error).message, /^invalid clamd server "clamd\.ctl": /);
  check(caught(() => parseMetricsAddress('tcp:nowhere')), 'AvError', 'EBADMETRICS', 'config');
  check(caught(() => parseIcapUrl('http://127.0.0.1/x')), 'AvError', 'EBADOPTION', 'config');
  const opt = badOption('icap', 'no url');
  check(opt, 'AvError', 'EBADOPTION', 'config');
  assert.equal(opt.message, 'icap engine: no url');
  const cfg = caught(() => parseConfig('request_timeout = "soon"\n', 'a.toml'));
  assert.ok(cfg instanceof ConfigError);
  check(cfg, 'ConfigError', cfg.code, 'config');
});

test('the codecs\' errors: a bad reply code and impossible request limits are internal, a bad control file is input', () => {
  check(caught(() => formatReply(700, 'x')), 'AvError', 'EBAD_REPLY_CODE', 'internal');
  check(caught(() => new RequestReader({ maxLineBytes: 0, maxLines: 10 })), 'AvError', 'EINVALID_LIMITS', 'internal');
  check(caught(() => parseControl('/c', Buffer.from('sa@b\0\n'))), 'ControlError', 'EBAD_CONTROL', 'input');
  check(caught(() => summarize([])), 'ControlError', 'ENO_CONTROL', 'input');
});

test('a second filter on a live socket is EALREADY_RUNNING (config); a second avfilter_sig pipe is EPIPE_BUSY (input)', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'avf-errors-'));
  const live = createServer();
  await new Promise<void>((resolve) => live.listen(join(dir, 'avfilter'), resolve));
  try {
    check(await rejected(bindFilterSocket(dir, join(dir, 'other'), 'avfilter', () => undefined)), 'AvError', 'EALREADY_RUNNING', 'config');
  } finally {
    await new Promise((resolve) => live.close(resolve));
  }
  writeFileSync(join(dir, 'pipe'), '');
  check(await rejected(makeFifo(join(dir, 'pipe'), 0o600)), 'SigPipeError', 'EPIPE_BUSY', 'input');
});

test('originOf: an AvError says; otherwise an abort code or AbortError is abort, anything else internal; a verdict never carries limit or config', () => {
  assert.equal(originOf(new AvError('ECONNECT', 'scanner', 'down')), 'scanner');
  assert.equal(originOf(Object.assign(new Error('x'), { code: 'EABORTED' })), 'abort');
  assert.equal(originOf(new DOMException('stopped', 'AbortError')), 'abort');
  assert.equal(originOf(new Error('x')), 'internal');
  assert.equal(originOf('a string'), 'internal');
  assert.equal(errorOriginOf(new AvError('ECONNECT', 'scanner', 'down')), 'scanner');
  assert.equal(errorOriginOf(new MimeError(MimeErrorCode.PART_LIMIT, 'x')), 'internal');
  assert.equal(errorOriginOf(new ConfigError('ECONFIG_KEY', 'x')), 'internal');
  assert.equal(errorOriginOf(new ControlError('EABORTED', 'x')), 'abort');
});

const SRC = fileURLToPath(new URL('../../src/', import.meta.url));

/** The only classes in src/ that extend Error itself, each with why. */
const PLAIN_ERRORS: Readonly<Record<string, string>> = {
  AvError: 'the one error type',
  Truncated: "tnef.ts's private end-of-input signal: no code, never leaves tnef.ts",
  FilterFailure: "the PDF filters' outcome (size, corrupt, time), no code: caught by pdf-chain.ts, never leaves src/unpack/formats",
};

test('no lookalike error class and no Object.assign(new Error(...), { code }) is left in src/', () => {
  const found: string[] = [];
  for (const rel of readdirSync(SRC, { recursive: true, encoding: 'utf8' }).filter((f) => f.endsWith('.ts'))) {
    const text = readFileSync(join(SRC, rel), 'utf8');
    for (const m of text.matchAll(/class (\w+) extends (\w*Error)\b/g)) {
      if (m[2] !== 'AvError' && !Object.hasOwn(PLAIN_ERRORS, m[1]!)) found.push(`${rel}: class ${m[1]} extends ${m[2]}`);
    }
    // Node's own argument codes stay on TypeError/RangeError, as Node's own checks throw them
    for (const m of text.matchAll(/Object\.assign\(\s*(?:new \w*Error\(|err\b)[\s\S]{0,300}?\{\s*code:\s*([^\s,}]+)/g)) {
      if (!/^'ERR_INVALID_ARG_(TYPE|VALUE)'$/.test(m[1]!)) found.push(`${rel}: Object.assign(..., { code: ${m[1]} })`);
    }
  }
  assert.deepEqual(found, [], 'make these AvErrors (or a subclass that fixes the origin)');
});
