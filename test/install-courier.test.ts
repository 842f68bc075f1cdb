/**
 * Installing avfilter into a REAL Courier the two ways the README gives, then using it over SMTP
 * and taking it away again:
 *
 * 1. `npm pack`, `npm install -g` of the tarball (a copy, not a link to the checkout), then
 *    `avfilter --install-filter` into the real /usr/lib/courier/filters and /etc/courier, a
 *    config naming a real clamd, the filter started as filterctl starts it: an EICAR attachment
 *    is dropped, clean mail delivered; `--uninstall-filter` removes what install wrote.
 * 2. The Debian package (`npm run deb`): `dpkg -i`, the files, man pages and directories it
 *    gives; `--install-filter` afterwards finds everything in place; the filter started with the
 *    packaged default config (no engine named: the embedded engine, EICAR only) drops an EICAR
 *    attachment and logs at error severity that it has no real signatures; `dpkg -r` is refused
 *    while the filter is active; `dpkg --purge` leaves nothing behind.
 *
 * These change system paths (/usr/lib/courier/filters/avfilter, /etc/courier/filters/
 * avfilter.toml, /usr/bin/avfilter, /var/lib/avfilter, the dpkg database), so they run only
 * under CI=true or AVFILTER_TEST_TAKE_COURIER=1, and only where none of the others exist once this
 * suite holds the Courier harness (another Courier suite may have its files in place before);
 * /var/lib/avfilter, which any daemon run with the default tmpdir makes, is moved aside and put
 * back. They put every path back as it was also when a step fails.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { type CourierHarness, repoRoot, startCourier } from './helpers/courier.js';
import { TAKE_COURIER_VAR } from './helpers/courier-host.js';
import { headerValue, type DeliveredMessage, replyQueueId, waitFor } from './helpers/courier-mail.js';
import { attachmentMessage, cleanTextMessage, envelope, type Envelope } from './helpers/e2e-messages.js';
import { startClamd, type RunningClamd } from './helpers/clamd.js';
import { eicar } from './helpers/eicar.js';

const WRAPPER = '/usr/lib/courier/filters/avfilter';
const CONFIG = '/etc/courier/filters/avfilter.toml';
const SYSTEM_PATHS = [WRAPPER, CONFIG, '/usr/bin/avfilter', '/usr/lib/avfilter', '/var/lib/avfilter', '/etc/courier/filters/active/avfilter'];
const DELIVERY_TIMEOUT_MS = 20_000;
const QUEUE_TIMEOUT_MS = 20_000;
const LOG_TIMEOUT_MS = 10_000;
const CMD_TIMEOUT_MS = 300_000;

function packageInstalled(): boolean {
  const r = spawnSync('dpkg-query', ['-W', '-f=${Status}', 'avfilter'], { encoding: 'utf8' });
  return r.status === 0 && /installed/.test(r.stdout) && !/not-installed/.test(r.stdout);
}

const allowed = process.env['CI'] === 'true' || process.env[TAKE_COURIER_VAR] === '1';
const why = process.getuid?.() !== 0 ? 'needs root' : !allowed ? `changes system paths; run with CI=true or ${TAKE_COURIER_VAR}=1` : undefined;
if (why && process.env['CI'] === 'true') throw new Error(`install-courier tests: ${why}`);
const opts = { skip: why ?? false };
/** avfilter's working directory: moved aside while the tests run (a daemon of another suite may have made it), put back after. */
const WORK_DIR = '/var/lib/avfilter';
let savedWorkDir: string | undefined;
/**
 * Set in before(), once this suite holds the Courier harness (so no other Courier suite is
 * mid-run with its files in place): the host's own avfilter, which these tests do not touch.
 */
let busy: string | undefined;

/** Skips the test when the host has an avfilter of its own; true when skipped. */
function hostBusy(t: { skip(msg: string): void }): boolean {
  if (busy === undefined) return false;
  t.skip(busy);
  return true;
}

function sh(cmd: string, args: string[], env: NodeJS.ProcessEnv = process.env): string {
  const r = spawnSync(cmd, args, { encoding: 'utf8', env, timeout: CMD_TIMEOUT_MS });
  assert.equal(r.status, 0, `${cmd} ${args.join(' ')} exited ${r.status ?? r.signal}:\n${r.stdout}\n${r.stderr}`);
  return `${r.stdout}${r.stderr}`;
}

/** Everything these tests may have put on the system, removed (the host had none of it). */
function cleanSystem(): void {
  fs.rmSync('/etc/courier/filters/active/avfilter', { force: true });
  if (packageInstalled() || spawnSync('dpkg-query', ['-W', 'avfilter']).status === 0) {
    spawnSync('dpkg', ['--purge', 'avfilter'], { timeout: CMD_TIMEOUT_MS });
  }
  for (const p of SYSTEM_PATHS) fs.rmSync(p, { recursive: true, force: true });
}

let h: CourierHarness | undefined;
let clamd: RunningClamd | undefined;
let work: string;

before(async () => {
  if (why) return;
  work = fs.mkdtempSync(path.join(os.tmpdir(), 'avf-install-courier-'));
  fs.chmodSync(work, 0o755);
  h = await startCourier();
  const present = SYSTEM_PATHS.filter((p) => p !== WORK_DIR && fs.existsSync(p));
  if (present.length || packageInstalled()) {
    busy = `this host has an avfilter of its own (${[...present, ...(packageInstalled() ? ['the avfilter package'] : [])].join(', ')}): not touched`;
    if (process.env['CI'] === 'true') throw new Error(`install-courier tests: ${busy}`);
    return;
  }
  if (fs.existsSync(WORK_DIR)) {
    savedWorkDir = `${WORK_DIR}.install-test-${process.pid}`;
    fs.renameSync(WORK_DIR, savedWorkDir);
  }
  clamd = await startClamd();
});

after(async () => {
  if (why) return;
  try {
    if (busy === undefined) {
      if (h && fs.existsSync('/etc/courier/filters/active/avfilter')) await h.removeFilter('avfilter').catch(() => undefined);
      cleanSystem();
      if (savedWorkDir) fs.renameSync(savedWorkDir, WORK_DIR);
    }
  } finally {
    await clamd?.stop();
    await h?.stop();
    fs.rmSync(work, { recursive: true, force: true });
  }
});

function subjectIs(env: Envelope) {
  return (m: DeliveredMessage): boolean => headerValue(m.header, 'Subject') === env.subject;
}

/** A clean message is delivered; an EICAR attachment gets 250 and reaches no mailbox. */
async function cleanDeliveredEicarDropped(label: string): Promise<{ eicarFrom: string; mark: number }> {
  const harness = h!;
  const to = [harness.address('avtest')];
  const clean = envelope(`${label}-clean`);
  const sent = await harness.sendMail({ from: clean.from, to, message: cleanTextMessage(clean, to).raw });
  assert.equal(sent.final?.code, 250, `clean mail: ${sent.last.code} ${sent.last.text}`);
  await harness.waitForDelivery(subjectIs(clean), DELIVERY_TIMEOUT_MS);

  const bad = envelope(`${label}-eicar`);
  const mark = harness.logMark();
  const r = await harness.sendMail({
    from: bad.from, to, message: attachmentMessage(bad, to, { filename: 'eicar.com', contentType: 'application/octet-stream', data: eicar() }),
  });
  assert.equal(r.final?.code, 250, `EICAR mail (drop answers 2xx): ${r.last.code} ${r.last.text}`);
  const id = replyQueueId(r.final!.text);
  assert.ok(id, `no queue id in ${r.final!.text}`);
  await harness.waitForLog(new RegExp(`courierd: completed,id=\\S*${id.replace(/\./g, '\\.')}\\b`), mark, QUEUE_TIMEOUT_MS);
  assert.deepEqual(harness.delivered().filter(subjectIs(bad)).map((m) => m.user), [], 'the EICAR message was delivered');
  const line = await waitFor('the verdict line', LOG_TIMEOUT_MS, () =>
    harness.logSince(mark).split('\n').find((l) => l.includes(bad.from) && /verdict=infected/.test(l)));
  assert.match(line, /action=drop/);
  return { eicarFrom: bad.from, mark };
}

describe('npm install -g of the package, then avfilter --install-filter into the real Courier', () => {
  let prefix: string;
  let avfilter: string;

  test('npm pack and npm install -g put avfilter and avfilter_sig on the PATH as copies of the package', opts, (t) => {
    if (hostBusy(t)) return;
    const tarball = sh('npm', ['pack', '--ignore-scripts', '--pack-destination', work, '--loglevel=error'], { ...process.env, npm_config_loglevel: 'error' })
      .trim().split('\n').pop()!;
    prefix = path.join(work, 'prefix');
    sh('npm', ['install', '-g', '--prefix', prefix, '--prefer-offline', '--no-audit', '--no-fund', '--loglevel=error', path.join(work, tarball)]);
    avfilter = path.join(prefix, 'bin', 'avfilter');
    for (const b of ['avfilter', 'avfilter_sig']) {
      const real = fs.realpathSync(path.join(prefix, 'bin', b));
      assert.ok(real.startsWith(path.join(prefix, 'lib', 'node_modules', 'avfilter') + path.sep), `${b} resolves to ${real}, not a copy under the prefix`);
      assert.ok(!real.startsWith(repoRoot() + path.sep), `${b} is the checkout itself`);
    }
    assert.match(sh(avfilter, ['--version']), /^\d+\.\d+\.\d+/);
  });

  test('--install-filter writes the wrapper and the sample config; with a clamd named, EICAR over SMTP is dropped', opts, async (t) => {
    if (hostBusy(t)) return;
    const out = sh(avfilter, ['--install-filter']);
    assert.match(out, /created {3}\/usr\/lib\/courier\/filters\/avfilter/);
    assert.match(out, /created {3}\/etc\/courier\/filters\/avfilter\.toml/);
    assert.match(fs.readFileSync(WRAPPER, 'utf8'), new RegExp(fs.realpathSync(avfilter).replace(/[.*+?^${}()|[\]\\]/g, '\\$&')));
    // The admin names a real clamd in the sample config, as the README says, and checks it.
    fs.appendFileSync(CONFIG, `\n[[engine]]\ntype = "clamd"\nservers = ["unix:${clamd!.socketPath}"]\n`);
    const check = sh(avfilter, ['--config', '-v']);
    assert.match(check, /type = "clamd"/);
    assert.doesNotMatch(check, /no real signatures/);
    await h!.installFilter('avfilter', WRAPPER);
    const { mark } = await cleanDeliveredEicarDropped('npm');
    const line = h!.logSince(mark).split('\n').find((l) => /verdict=infected/.test(l)) ?? '';
    assert.ok(line.includes(clamd!.names.eicar), `clamd's name for EICAR is not in ${line}`);
    await h!.removeFilter('avfilter');
  });

  test('--uninstall-filter removes the wrapper and keeps the edited config', opts, (t) => {
    if (hostBusy(t)) return;
    const out = sh(avfilter, ['--uninstall-filter']);
    assert.match(out, /removed {3}\/usr\/lib\/courier\/filters\/avfilter/);
    assert.ok(!fs.existsSync(WRAPPER));
    assert.ok(fs.existsSync(CONFIG), 'the edited config was removed');
    cleanSystem();
  });
});

describe('the Debian package: dpkg -i, use through Courier, dpkg --purge', () => {
  let deb: string;

  test('npm run deb builds a package with the programs, wrapper, conffile, man pages and licences', opts, (t) => {
    if (hostBusy(t)) return;
    deb = sh(process.execPath, [path.join(repoRoot(), 'dist', 'tools', 'deb.js'), '--out', work]).trim().split('\n').pop()!;
    assert.match(path.basename(deb), /^avfilter_\d+\.\d+\.\d+-1_[a-z0-9]+\.deb$/);
    const info = sh('dpkg-deb', ['--info', deb]);
    assert.match(info, /Depends: nodejs \(>= 20\), courier-mta/);
    assert.match(info, /Recommends: clamav-daemon/);
    assert.equal(execFileSync('dpkg-deb', ['--ctrl-tarfile', deb]).length > 0, true);
    const conffiles = execFileSync('sh', ['-c', `dpkg-deb --ctrl-tarfile '${deb}' | tar -xOf - ./conffiles`], { encoding: 'utf8' });
    assert.equal(conffiles.trim(), CONFIG);
    const contents = sh('dpkg-deb', ['--contents', deb]);
    for (const p of ['./usr/lib/avfilter/dist/bin/avfilter.js', './usr/lib/courier/filters/avfilter', `.${CONFIG}`,
      './usr/share/man/man8/avfilter.8.gz', './usr/share/man/man8/avfilter_sig.8.gz', './usr/share/man/man5/avfilter.toml.5.gz',
      './usr/share/doc/avfilter/copyright', './usr/lib/avfilter/node_modules/7z-wasm/7zz.wasm']) {
      assert.ok(contents.includes(` ${p}\n`) || contents.includes(` ${p} `), `${p} is not in the package`);
    }
    assert.match(contents, /\.\/usr\/bin\/avfilter -> \.\.\/lib\/avfilter\/dist\/bin\/avfilter\.js/);
    assert.doesNotMatch(contents, /node_modules\/typescript\//, 'a development dependency is bundled');
    if (process.arch === 'x64') assert.match(contents, /yara-x-linux-x64-gnu\/yara-x\.linux-x64-gnu\.node/);
  });

  test('dpkg -i installs it: private directories owned by courier, config readable by courier only, man avfilter answers', opts, (t) => {
    if (hostBusy(t)) return;
    const out = sh('dpkg', ['-i', deb]);
    assert.match(out, /checked {3}as courier: the config loads/);
    assert.match(out, /no real signatures/);
    assert.match(out, /filterctl start avfilter/);
    const courier = Number(execFileSync('id', ['-u', 'courier'], { encoding: 'utf8' }).trim());
    for (const d of ['/var/lib/avfilter/tmp', '/var/lib/avfilter/quarantine']) {
      const st = fs.statSync(d);
      assert.equal(st.uid, courier, `${d} owner`);
      assert.equal(st.mode & 0o777, 0o700, `${d} mode`);
    }
    const cfg = fs.statSync(CONFIG);
    assert.equal(cfg.mode & 0o777, 0o640);
    assert.match(sh('man', ['-w', 'avfilter']), /avfilter\.8/);
    assert.match(sh('avfilter', ['--version']), /^\d+\.\d+\.\d+/);
    // The package's files are what --install-filter would write: it finds them all in place.
    const again = sh('avfilter', ['--install-filter']);
    assert.doesNotMatch(again, /^(created|updated|fixed|replaced) /m, again);
    sh('dpkg', ['--verify', 'avfilter']);
  });

  test('the packaged filter in Courier: EICAR dropped, clean mail delivered, "no real signatures" logged at error', opts, async (t) => {
    if (hostBusy(t)) return;
    const mark = h!.logMark();
    await h!.installFilter('avfilter', WRAPPER);
    await h!.waitForLog(/event=no-real-signatures/, mark, LOG_TIMEOUT_MS);
    assert.match(h!.logSince(mark), /level=error [^\n]*event=no-real-signatures|event=no-real-signatures[^\n]*level=error/);
    await cleanDeliveredEicarDropped('deb');
  });

  test('dpkg -r is refused while the filter is active; stopped, dpkg --purge leaves nothing behind', opts, async (t) => {
    if (hostBusy(t)) return;
    const r = spawnSync('dpkg', ['-r', 'avfilter'], { encoding: 'utf8', timeout: CMD_TIMEOUT_MS });
    assert.notEqual(r.status, 0, 'removal while active succeeded');
    assert.match(r.stderr, /filterctl stop avfilter/);
    assert.ok(fs.existsSync('/usr/lib/avfilter/dist/bin/avfilter.js'), 'files went away although removal was refused');
    await h!.removeFilter('avfilter');
    sh('dpkg', ['--purge', 'avfilter']);
    assert.equal(packageInstalled(), false);
    for (const p of SYSTEM_PATHS) assert.ok(!fs.existsSync(p), `${p} is left after purge`);
  });
});
