// The policy table and its effects, through `avfilter --batch-test` on requests made like
// Courier's (data file + control file, checked byte for byte): [action.by_name] with the most
// severe action winning, pass_recipients splitting one message, [replies] with macros and
// hostile values, and action.damaged for a container that retrying cannot make readable.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { createRuntime } from '../src/app/runtime.js';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { decide, infectedAction } from '../src/policy/actions.js';
import { parseConfig, ConfigError } from '../src/config/load.js';
import type { Verdict } from '../src/policy/verdict.js';
import { eicar } from './helpers/eicar.js';
import { runAvfilter } from './helpers/avfilter-proc.js';
import { daemonEnv, singlePart } from './helpers/daemon-env.js';
import { policy } from './helpers/policy.js';

const infected = (...names: string[]): Verdict => ({ kind: 'infected', names, findings: [] });

test('[action.by_name]: each name its own action, the default for the others, the most severe wins', () => {
  const p = policy({ infected: 'drop', by_name: { 'Heuristics.Phishing.*': 'pass', '*eicar*': 'reject', 'Win.Trojan.*': 'quarantine' } });
  assert.equal(infectedAction(['Heuristics.Phishing.Email.SpoofedDomain'], p), 'pass');
  assert.equal(infectedAction(['Win.Test.EICAR_HDB-1'], p), 'reject', 'globs are case-insensitive and * crosses dots');
  assert.equal(infectedAction(['Other.Virus'], p), 'drop', 'no glob: action.infected');
  assert.equal(infectedAction(['Heuristics.Phishing.X', 'Other.Virus'], p), 'drop', 'pass and the default drop: drop');
  assert.equal(infectedAction(['Heuristics.Phishing.X', 'Win.Trojan.Agent'], p), 'quarantine');
  assert.equal(infectedAction(['Win.Trojan.Agent', 'Eicar-Signature', 'Heuristics.Phishing.X'], p), 'reject');
  const d = decide(infected('Win.Trojan.Agent'), p);
  assert.equal(d.action, 'quarantine');
  assert.deepEqual(d.effects.map((e) => e.kind), ['quarantine', 'drop']);
  assert.equal(decide(infected('Heuristics.Phishing.X'), p).action, 'pass');
});

test('pass_recipients: those recipients get it marked, the others get the action (a refusal becomes their drop)', () => {
  const p = policy({ infected: 'reject' }, { skip: { pass_recipients: ['abuse@*', 'SOC@example.test'] } });
  const some = decide(infected('V'), p, { recipients: ['abuse@example.test', 'u@example.test', 'soc@example.test'] });
  assert.equal(some.action, 'drop');
  assert.equal(some.code, 200);
  assert.deepEqual(some.passTo, ['abuse@example.test', 'soc@example.test']);
  assert.deepEqual(some.effects.find((e) => e.kind === 'drop'), { kind: 'drop', keep: ['abuse@example.test', 'soc@example.test'] });
  assert.ok(some.effects.some((e) => e.kind === 'mark'));
  const all = decide(infected('V'), p, { recipients: ['abuse@example.test'] });
  assert.equal(all.action, 'pass');
  assert.equal(decide(infected('V'), p, { recipients: ['u@example.test'] }).code, 550, 'nobody asked: the action');
});

test('[replies]: codes of the right class only, known macros only, values from the message escaped', () => {
  const err = (text: string): string => {
    try {
      parseConfig(text, 'r.toml');
    } catch (e) {
      assert.ok(e instanceof ConfigError);
      return e.message;
    }
    return assert.fail(`accepted: ${text}`);
  };
  assert.match(err('[replies]\ninfected_reject = "451 4.7.1 held"\n'), /r\.toml:2: "replies\.infected_reject" must have a 5xx code/);
  assert.match(err('[replies]\ninfected_tempfail = "550 no"\n'), /must have a 4xx code/);
  assert.match(err('[replies]\naccept = "550 no"\n'), /must have a 2xx code/);
  // macros are checked with the other templates when the runtime is built (as for --config and the daemon)
  const dir = mkdtempSync(join(tmpdir(), 'avf-replies-'));
  const withMacro = parseConfig(`tmpdir = "${dir}"\n[[engine]]\ntype = "yara"\n[replies]\ninfected_reject = "550 virus %x"\n`, 'r.toml');
  assert.throws(() => createRuntime(withMacro, { makeTmpdir: false }), (e: unknown) => {
    assert.ok(e instanceof ConfigError);
    assert.match(e.message, /^r\.toml:5: "replies\.infected_reject" unknown macro %x/);
    return true;
  });
  const badTemplate = parseConfig(`tmpdir = "${dir}"\n[[engine]]\ntype = "yara"\n[notify]\ntemplate = "${dir}/none"\n`, 'n.toml');
  assert.throws(() => createRuntime(badTemplate, { makeTmpdir: false }), /n\.toml:5: "notify\.template": .*cannot read the notice template: ENOENT/);
  assert.match(err('[replies]\ninfected_reject = "virus found"\n'), /"CODE TEXT"/);
  assert.match(err('[replies]\ninfected_reject = "550 a\\u0007b"\n'), /control characters/);
  const cfg = parseConfig('[action]\ninfected = "reject"\n[replies]\ninfected_reject = "554 5.7.0 %v from %s to %r (%q, %i) 100%%"\n', 'r.toml');
  const hostile = 'Evil\r\n250 ok\u001b[31m\u202e';
  const d = decide(infected(hostile, 'Two'), cfg, { sender: 'x\ny@z', recipients: ['a@b'], queueId: 'Q1', clientIp: '192.0.2.7' });
  assert.equal(d.code, 554);
  assert.equal(d.text, '5.7.0 Evil 250 ok [31m?, Two from x y@z to a@b (Q1, 192.0.2.7) 100%');
  assert.doesNotMatch(d.text, /[\r\n\u0000-\u001f\u007f-\uffff]/);
});

test('damaged (a container no reader can open): its own outcome, reject 554 naming the file by default; tempfail, pass and drop on request', () => {
  const dmg: Verdict = { kind: 'damaged', code: 'EUNPACK_CORRUPT', reason: 'damaged 7z at 2/report.7z: x', name: 'report\u001b.7z', path: '2/report\u001b.7z' };
  const d = decide(dmg, policy());
  assert.equal(d.code, 554);
  assert.equal(d.verdict, 'damaged');
  assert.equal(d.text, '5.7.1 Message rejected: damaged attachment cannot be scanned: report .7z (damaged)');
  assert.equal(decide(dmg, policy({ damaged: 'tempfail' })).code, 451);
  assert.equal(decide(dmg, policy({ damaged: 'pass' })).code, 200);
  assert.deepEqual(decide(dmg, policy({ damaged: 'drop' })).effects, [{ kind: 'drop', keep: [] }]);
  // a resource limit stays action.limit
  assert.equal(decide({ kind: 'limit', code: 'EUNPACK_SIZE', reason: 'too big' }, policy()).code, 451);
});

// ---- through avfilter --batch-test, the embedded engine (its EICAR rule) ----

const YARA = '[[engine]]\ntype = "yara"\n';
const TWO_RCPTS = 'ss@example.test\nfdns; x ([192.0.2.9])\nM00AB.CD.EF\nrabuse@example.test\nR\nN\nruser@example.test\nR\nN\n';

function batch(extra: string, data: string | Buffer, control = TWO_RCPTS) {
  const env = daemonEnv(`${extra}\n${YARA}`);
  const req = env.request(data, [control]);
  const r = runAvfilter(['-f', env.cfg, '--batch-test'], { input: req.line });
  return { ...r, data: readFileSync(req.dataPath), control: readFileSync(req.controlPaths[0]!, 'latin1') };
}

test('batch: by_name reject answers 550 naming the virus and leaves both files as they were', () => {
  const msg = singlePart(eicar());
  const r = batch('[action.by_name]\n"*eicar*" = "reject"', msg);
  assert.match(r.stdout, /^550 5\.7\.1 Message rejected: virus found: .*EICAR/im);
  assert.equal(r.data.toString('latin1'), msg);
  assert.equal(r.control, TWO_RCPTS);
  assert.match(r.stderr, /verdict=infected .*action=reject reply=550/);
});

test('batch: pass_recipients keeps abuse@ pending and marks the other delivered; the data file gets X-Virus-Found after Received', () => {
  const msg = singlePart(eicar());
  const r = batch('[skip]\npass_recipients = ["abuse@*"]', msg);
  assert.match(r.stdout, /^200 /m);
  assert.match(r.control, /^I1 R 250 Ok - virus found, message dropped by avfilter\nS1 \d+\n$/m);
  assert.doesNotMatch(r.control, /^[IS]0 /m, 'abuse@ stays pending');
  assert.match(r.data.toString('latin1'), /^Received: x\nX-Virus-Found: .*eicar.* \(avfilter\)\nSubject: t\n/i);
  assert.match(r.stderr, /action=drop .*passed_to=abuse@example\.test/);
});

test('batch: a truncated 7z attachment is damaged: 554 naming the file (a sender learns now, not after days of retries)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'avf-7z-'));
  const payload = join(dir, 'payload.bin');
  spawnSync('sh', ['-c', `head -c 20000 /dev/urandom > ${payload}`]);
  const made = spawnSync('7z', ['a', '-bd', '-y', join(dir, 'a.7z'), payload]);
  assert.equal(made.status, 0, made.stderr?.toString());
  const cut = readFileSync(join(dir, 'a.7z')).subarray(0, 9000);
  const msg = 'Received: x\nSubject: t\nMIME-Version: 1.0\nContent-Type: multipart/mixed; boundary="B"\n\n--B\nContent-Type: text/plain\n\nhi\n'
    + '--B\nContent-Type: application/x-7z-compressed\nContent-Disposition: attachment; filename="re\u0007port.7z"\nContent-Transfer-Encoding: base64\n\n'
    + `${cut.toString('base64').replace(/.{76}/g, '$&\n')}\n--B--\n`;
  const r = batch('', msg);
  assert.match(r.stdout, /^554 5\.7\.1 Message rejected: damaged attachment cannot be scanned: re[ ?]port\.7z \(damaged\)$/m);
  assert.match(r.stderr, /verdict=damaged .*action=reject reply=554/);
  assert.equal(r.control, TWO_RCPTS);
  const t = batch('[action]\ndamaged = "tempfail"', msg);
  assert.match(t.stdout, /^451 4\.7\.1 Message held: damaged attachment/m);
});
