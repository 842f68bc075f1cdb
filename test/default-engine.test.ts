/**
 * The default engine (no [[engine]] in the config): a REAL clamd started by the test
 * (helpers/clamd.ts) is chosen when the socket named by clamd.conf answers, the embedded engine
 * when none answers; an engine set that knows only the EICAR test rule says so loudly (log at
 * start and reload, `--config -v`). clamd.conf is the test's own, named by AVFILTER_CLAMD_CONF,
 * so the machine's clamd never takes part.
 */
import assert from 'node:assert/strict';
import { chmodSync, copyFileSync, mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { parseConfig, parseOptionsOf } from '../src/config/load.js';
import { formatConfig } from '../src/config/print.js';
import { findDefaultClamd, resolveConfig } from '../src/app/default-engine.js';
import { noRealSignatures, signatureLines } from '../src/app/signatures.js';
import { clamdLocalSocket, localSocketOf } from '../src/engines/clamd/local-socket.js';
import { describeClamdVersion, parseClamdVersion } from '../src/engines/clamd/version.js';
import { countRules } from '../src/engines/yara/rule-count.js';
import { ruleInfo } from '../src/engines/yara/rule-info.js';
import { DEFAULT_RULES_DIR } from '../src/engines/yara/rules.js';
import { runAvfilter } from './helpers/avfilter-proc.js';
import { startClamd, type RunningClamd } from './helpers/clamd.js';
import { daemonEnv, stopDaemon, waitLog } from './helpers/daemon-env.js';
import { eicar } from './helpers/eicar.js';

const dir = mkdtempSync(join(tmpdir(), 'avf-default-engine-'));
// Courier's user must reach the configs: run as root, --config checks that the daemon's user can read them.
chmodSync(dir, 0o755);
const unserved = join(dir, 'nobody.ctl');
const conf = (name: string, text: string): string => {
  const p = join(dir, name);
  writeFileSync(p, text);
  return p;
};
const noClamdConf = conf('no-clamd.conf', `LocalSocket ${unserved}\n`);
const mail = (body: Buffer): string =>
  `From: a@example.test\nSubject: t\nMIME-Version: 1.0\nContent-Type: application/octet-stream\nContent-Transfer-Encoding: base64\n\n${body.toString('base64')}\n`;
const virusPath = join(dir, 'virus.eml');
writeFileSync(virusPath, mail(eicar()));
const emptyCfg = conf('empty.toml', `tmpdir = "${dir}/work"\n`);

test('clamd.conf: the last LocalSocket wins, comments and relative paths are not taken', () => {
  assert.equal(localSocketOf('# LocalSocket /commented\nLocalSocket /a.ctl\nFoo bar\nLocalSocket   /b.ctl   # note\n'), '/b.ctl');
  assert.equal(localSocketOf('LocalSocketGroup clamav\nTCPSocket 3310\n'), undefined);
  assert.equal(localSocketOf('LocalSocket relative.ctl\n'), undefined);
  assert.deepEqual(clamdLocalSocket({ AVFILTER_CLAMD_CONF: noClamdConf }, '/fallback.ctl'), { path: unserved, from: `${noClamdConf}:LocalSocket` });
  // no LocalSocket, or no readable clamd.conf: the distribution's path
  const tcpOnly = conf('tcp-only.conf', 'TCPSocket 3310\n');
  assert.equal(clamdLocalSocket({ AVFILTER_CLAMD_CONF: tcpOnly }, '/fallback.ctl').path, '/fallback.ctl');
  assert.equal(clamdLocalSocket({ AVFILTER_CLAMD_CONF: join(dir, 'missing.conf') }, '/fallback.ctl').path, '/fallback.ctl');
});

test('VERSION line: database version and date, or none', () => {
  assert.deepEqual(parseClamdVersion('ClamAV 1.0.7/27480/Sat Dec  6 09:25:28 2026'), { engine: 'ClamAV 1.0.7', database: 27480, date: 'Sat Dec 6 09:25:28 2026' });
  assert.deepEqual(parseClamdVersion('ClamAV 1.0.7'), { engine: 'ClamAV 1.0.7', database: undefined, date: undefined });
  assert.match(describeClamdVersion('ClamAV 1.0.7'), /no official signature database/);
  assert.match(describeClamdVersion('ClamAV 1.0.7/27480/Sat Dec  6 09:25:28 2026', { kind: 'unix', path: '/x.ctl' }), /^ClamAV 1\.0\.7 at unix:\/x\.ctl, database 27480 of Sat Dec 6/);
});

test('rule info: the shipped rules are the EICAR test rule only; one real rule makes a real set', () => {
  assert.deepEqual(countRules('private rule A { condition: true }\nrule B : tag { strings: $a = "rule C" condition: $a }').names, ['A', 'B']);
  const shipped = ruleInfo(DEFAULT_RULES_DIR);
  assert.equal(shipped.testOnly, true);
  assert.equal(shipped.rules, 1);
  const own = join(dir, 'rules');
  mkdirSync(own);
  copyFileSync(join(DEFAULT_RULES_DIR, 'eicar.yar'), join(own, 'eicar.yar'));
  assert.equal(ruleInfo(own).testOnly, true, 'a copy of the test rule is still only the test rule');
  writeFileSync(join(own, 'real.yar'), 'rule Real_Thing { strings: $a = "definitely-malware-marker" condition: $a }\n');
  assert.deepEqual({ ...ruleInfo(own), dir: '' }, { dir: '', files: 2, rules: 2, testOnly: false });

  const embedded = parseConfig('', 'x.toml');
  assert.match(noRealSignatures(embedded) ?? '', /^no real signatures: this is not a virus scanner; yara: 1 rule in .*only the EICAR test rule/);
  assert.equal(noRealSignatures(parseConfig(`[[engine]]\ntype = "yara"\nrules = "${own}"\n`, 'x.toml')), undefined);
  assert.equal(noRealSignatures(parseConfig('[[engine]]\ntype = "clamd"\n', 'x.toml')), undefined);
  assert.equal(noRealSignatures(parseConfig(`[[engine]]\ntype = "clamd"\n[[engine]]\ntype = "yara"\n`, 'x.toml')), undefined, 'clamd beside the test rule is real');
});

test('engine_origin: configured tables win; the default is carried to the workers as parse options', () => {
  const configured = parseConfig('[[engine]]\ntype = "yara"\n', 'x.toml', { defaultClamdSocket: '/s.ctl' });
  assert.equal(configured.engine_origin, 'configured');
  assert.equal(configured.engine[0]!.type, 'yara');
  assert.deepEqual(parseOptionsOf(configured), {});
  const embedded = parseConfig('', 'x.toml');
  assert.equal(embedded.engine_origin, 'default-embedded');
  assert.deepEqual(parseOptionsOf(embedded), {});
  const clamd = parseConfig('', 'x.toml', { defaultClamdSocket: '/s.ctl' });
  assert.equal(clamd.engine_origin, 'default-clamd');
  assert.deepEqual(clamd.engine.map((e) => e.type === 'clamd' && e.servers), [['unix:/s.ctl']]);
  assert.deepEqual(parseConfig('', 'x.toml', parseOptionsOf(clamd)), clamd);
  // The printed config says where the engine came from and still parses.
  const printed = formatConfig(clamd);
  assert.match(printed, /^# engine: none configured, so the default: the clamd/m);
  assert.equal(parseConfig(printed, 'printed').engine_origin, 'configured');
});


/**
 * A daemon (config `text`) started with AVFILTER_CLAMD_CONF = clamdConfFile (the env its
 * master inherits), given to `body`; stopped and the variable put back afterwards.
 */
async function withDaemon(
  clamdConfFile: string, text: string,
  body: (d: Awaited<ReturnType<ReturnType<typeof daemonEnv>['up']>>, env: ReturnType<typeof daemonEnv>) => Promise<void>,
): Promise<void> {
  const saved = process.env['AVFILTER_CLAMD_CONF'];
  process.env['AVFILTER_CLAMD_CONF'] = clamdConfFile;
  const env = daemonEnv(text, 'avf-defeng-');
  const d = await env.up();
  try {
    await body(d, env);
  } finally {
    await stopDaemon(d);
    if (saved === undefined) delete process.env['AVFILTER_CLAMD_CONF'];
    else process.env['AVFILTER_CLAMD_CONF'] = saved;
  }
}

describe('no clamd answers', () => {
  test('the embedded engine, and --config -v says it is no virus scanner', async () => {
    const cfg = await resolveConfig({ text: '', source: 'x.toml' }, { env: { AVFILTER_CLAMD_CONF: noClamdConf }, fallbackSocket: unserved });
    assert.equal(cfg.engine_origin, 'default-embedded');
    assert.equal(cfg.engine[0]!.type, 'yara');
    assert.equal(await findDefaultClamd({ env: { AVFILTER_CLAMD_CONF: noClamdConf } }), undefined);

    const r = runAvfilter(['-f', emptyCfg, '--config', '-v'], { env: { AVFILTER_CLAMD_CONF: noClamdConf } });
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^type = "yara"/m);
    assert.match(r.stdout, /^# engine: none configured, so the default: the embedded engine/m);
    assert.match(r.stdout, /^# signatures: yara 1 rule in \S+, only the EICAR test rule$/m);
    assert.match(r.stdout, /^# no real signatures: this is not a virus scanner/m);
    // without -v nothing is asked of the engines
    assert.doesNotMatch(runAvfilter(['-f', emptyCfg, '--config'], { env: { AVFILTER_CLAMD_CONF: noClamdConf } }).stdout, /# signatures:/);
  });

  test('the daemon logs no-real-signatures at error severity at start and on every reload', async () => {
    await withDaemon(noClamdConf, '', async (d, env) => {
      await waitLog(d, /event=started/, 30_000);
      await waitLog(d, /level=error event=no-real-signatures reason="?no real signatures: this is not a virus scanner/);
      const count = (): number => (d.stderr().match(/event=no-real-signatures/g) ?? []).length;
      assert.equal(count(), 1);
      d.child.kill('SIGHUP');
      await waitLog(d, /event=reloaded/, 30_000);
      await waitLog(d, /event=reloaded[^\n]*\n(?:[^\n]*\n)*?[^\n]*level=error event=no-real-signatures/);
      assert.equal(count(), 2);
      // real rules: reloaded, nothing to complain about
      const own = join(env.dir, 'rules');
      mkdirSync(own);
      writeFileSync(join(own, 'real.yar'), 'rule Real_Thing { strings: $a = "definitely-malware-marker" condition: $a }\n');
      env.write(`[[engine]]\ntype = "yara"\nrules = "${own}"\n`);
      d.child.kill('SIGHUP');
      await waitLog(d, /event=reloaded[^\n]*\n(?:[^\n]*\n)*?[^\n]*event=reloaded/, 30_000);
      await new Promise((r) => setTimeout(r, 300));
      assert.equal(count(), 2, d.stderr());
    });
  });
});

describe('a clamd answers at the socket clamd.conf names', () => {
  let clamd: RunningClamd;
  let clamdConf: string;
  before(async () => {
    clamd = await startClamd();
    clamdConf = conf('clamd.conf', `# the test's clamd\nLocalSocket ${clamd.socketPath}\nLocalSocketMode 666\n`);
  });
  after(async () => {
    await clamd?.stop();
  });

  test('it is the default engine, and a configured engine is never replaced', async () => {
    const found = await findDefaultClamd({ env: { AVFILTER_CLAMD_CONF: clamdConf } });
    assert.equal(found?.path, clamd.socketPath);
    assert.match(found?.version ?? '', /^ClamAV /);
    const cfg = await resolveConfig({ text: '', source: 'x.toml' }, { env: { AVFILTER_CLAMD_CONF: clamdConf } });
    assert.equal(cfg.engine_origin, 'default-clamd');
    assert.deepEqual(cfg.engine.map((e) => e.type === 'clamd' && e.servers), [[`unix:${clamd.socketPath}`]]);
    assert.equal(noRealSignatures(cfg), undefined);
    const lines = await signatureLines(cfg);
    assert.equal(lines.length, 1);
    assert.match(lines[0]!, new RegExp(`^# signatures: clamd ClamAV \\S+ at unix:${clamd.socketPath}, `));
    // No LocalSocket in clamd.conf: the distribution's path is tried
    const fallback = await resolveConfig({ text: '', source: 'x.toml' }, { env: { AVFILTER_CLAMD_CONF: conf('tcp.conf', 'TCPSocket 3310\n') }, fallbackSocket: clamd.socketPath });
    assert.equal(fallback.engine_origin, 'default-clamd');
    const configured = await resolveConfig({ text: '[[engine]]\ntype = "yara"\n', source: 'x.toml' }, { env: { AVFILTER_CLAMD_CONF: clamdConf } });
    assert.equal(configured.engine_origin, 'configured');
    assert.equal(configured.engine[0]!.type, 'yara');
  });

  test('--config -v and -t use it', () => {
    const env = { AVFILTER_CLAMD_CONF: clamdConf };
    const r = runAvfilter(['-f', emptyCfg, '--config', '-v'], { env });
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^type = "clamd"/m);
    assert.ok(r.stdout.includes(`servers = ["unix:${clamd.socketPath}"]`), r.stdout);
    assert.match(r.stdout, /^# engine: none configured, so the default: the clamd/m);
    assert.match(r.stdout, /^# signatures: clamd ClamAV /m);
    assert.doesNotMatch(r.stdout, /no real signatures/);
    const t = runAvfilter(['-f', emptyCfg, '-t', virusPath], { env });
    assert.equal(t.stdout, `${virusPath}: ${clamd.names.eicar} FOUND\n`);
    assert.equal(t.code, 1);
  });

  test('the daemon\'s workers scan with it, and it logs no no-real-signatures', async () => {
    await withDaemon(clamdConf, '[action]\ninfected = "reject"\n', async (d, env) => {
      await waitLog(d, /event=started/, 30_000);
      const reply = await env.send(env.request(mail(eicar())).line);
      assert.match(reply, /^5\d\d /);
      assert.ok(reply.includes(clamd.names.eicar), reply);
      assert.doesNotMatch(d.stderr(), /no-real-signatures/);
    });
  });
});
