/**
 * The quarantine store and its command line: the layout and modes (0700 directories, 0600
 * files), ids of our own form, the JSON record, list / show / delete / expire, and that nothing
 * from the message or its envelope (a hostile queue id, a sender with a path in it) ever becomes a
 * file name, and that an ID not of the quarantine's form (../x) is refused before it reaches one.
 * Also the daemon's path: --batch-test with action.quarantine keeps the message before the drop.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  QUARANTINE_ID_RE, checkId, deleteEntry, expireEntries, listEntries, newId, readEntry, writeEntry, type NewRecord,
} from '../src/quarantine/store.js';
import { eicar } from './helpers/eicar.js';
import { runAvfilter } from './helpers/avfilter-proc.js';

const HOSTILE_QUEUE_ID = '../../../etc/x\n/..';
const HOSTILE_SENDER = '../../evil/`rm -rf`@example.test';

function workdir(): { dir: string; qdir: string; cfg: string } {
  const dir = mkdtempSync(join(tmpdir(), 'avf-qstore-'));
  const qdir = join(dir, 'quarantine');
  const cfg = join(dir, 'avfilter.toml');
  writeFileSync(cfg, `quarantine_dir = ${JSON.stringify(qdir)}\n`);
  return { dir, qdir, cfg };
}

function record(extra: Partial<NewRecord> = {}): NewRecord {
  return {
    queue_id: HOSTILE_QUEUE_ID, sender: HOSTILE_SENDER, recipients: ['alice@example.test', 'bob@example.test'], client_ip: '192.0.2.7',
    names: ['Eicar-Test-Signature'], findings: [{ name: 'Eicar-Test-Signature', engine: 'yara', part: '2', filename: 'eicar.com' }],
    action: 'drop', ...extra,
  };
}

function files(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    out.push(p);
    if (statSync(p).isDirectory()) out.push(...files(p));
  }
  return out;
}

async function keep(dir: string, qdir: string, now?: Date, extra: Partial<NewRecord> = {}) {
  const data = join(dir, `D${Math.random().toString(36).slice(2)}`);
  const control = `${data}.C`;
  writeFileSync(data, 'Subject: hello\n\nbody\n');
  writeFileSync(control, 'sa@example.test\nMQID\nralice@example.test\n');
  return { data, control, entry: await writeEntry(qdir, { dataPath: data, controlPaths: [control], record: record(extra) }, now) };
}

test('an entry: 0700 directories, 0600 files, the data and control files as they were, the record as JSON', async () => {
  const { dir, qdir } = workdir();
  const { data, control, entry } = await keep(dir, qdir);
  assert.match(entry.id, /^\d{8}-\d{6}-[0-9a-f]{12}$/);
  assert.equal(statSync(qdir).mode & 0o777, 0o700);
  assert.equal(statSync(entry.dir).mode & 0o777, 0o700);
  assert.deepEqual(readdirSync(entry.dir).sort(), ['control-1', 'message.eml', 'record.json']);
  for (const f of readdirSync(entry.dir)) assert.equal(statSync(join(entry.dir, f)).mode & 0o777, 0o600, f);
  assert.deepEqual(readFileSync(join(entry.dir, 'message.eml')), readFileSync(data));
  assert.deepEqual(readFileSync(join(entry.dir, 'control-1')), readFileSync(control));
  const rec = JSON.parse(readFileSync(join(entry.dir, 'record.json'), 'utf8'));
  assert.equal(rec.id, entry.id);
  assert.equal(rec.state, 'held');
  assert.equal(rec.queue_id, HOSTILE_QUEUE_ID);
  assert.equal(rec.sender, HOSTILE_SENDER);
  assert.deepEqual(rec.recipients, ['alice@example.test', 'bob@example.test']);
  assert.equal(rec.client_ip, '192.0.2.7');
  assert.deepEqual(rec.names, ['Eicar-Test-Signature']);
  assert.equal(rec.findings[0].filename, 'eicar.com');
  assert.equal(rec.action, 'drop');
  assert.equal(rec.size, statSync(data).size);
  assert.equal(rec.controls, 1);
  assert.ok(Math.abs(Date.parse(rec.time) - Date.now()) < 60_000);
});

test('a hostile queue id or sender never reaches a file name: everything stays under quarantine_dir, named by our ids', async () => {
  const { dir, qdir } = workdir();
  for (let i = 0; i < 5; i++) await keep(dir, qdir);
  const all = files(qdir);
  for (const p of all) {
    assert.ok(p.startsWith(`${qdir}/`), p);
    const rel = p.slice(qdir.length + 1).split('/');
    assert.match(rel[0]!, QUARANTINE_ID_RE, p);
    if (rel.length > 1) assert.match(rel[1]!, /^(message\.eml|record\.json|control-\d+)$/, p);
    assert.ok(!p.includes('evil') && !p.includes('etc'), p);
  }
  assert.equal(readdirSync(qdir).length, 5, 'ids are unique');
  assert.ok(!existsSync(join(dir, 'evil')));
});

test('ids: made of digits, letters and hyphens, unique; checkId refuses anything that could name another path', () => {
  const ids = new Set(Array.from({ length: 1000 }, () => newId()));
  assert.equal(ids.size, 1000);
  for (const id of ids) assert.equal(checkId(id), id);
  for (const bad of ['../x', '..', '.', '', 'a/b', '.release-key', '-rf', 'a b', 'a\nb', 'x'.repeat(65), 'é']) {
    assert.throws(() => checkId(bad), { code: 'EQUARANTINE_ID' }, JSON.stringify(bad));
  }
});

test('quarantine_dir must be private: a directory others can enter, or a symlink, is refused', async () => {
  const { dir, qdir } = workdir();
  mkdirSync(qdir, { mode: 0o755 });
  chmodSync(qdir, 0o755);
  await assert.rejects(keep(dir, qdir), { code: 'EQUARANTINE_DIR' });
  const real = join(dir, 'real');
  mkdirSync(real, { mode: 0o700 });
  const link = join(dir, 'link');
  symlinkSync(real, link);
  await assert.rejects(keep(dir, link), { code: 'EQUARANTINE_DIR' });
  assert.deepEqual(readdirSync(real), []);
});

test('list, read, delete and expire', async () => {
  const { dir, qdir } = workdir();
  const old = await keep(dir, qdir, new Date(Date.now() - 10 * 86_400_000));
  const recent = await keep(dir, qdir, new Date(Date.now() - 2 * 86_400_000));
  const now = await keep(dir, qdir);
  assert.deepEqual((await listEntries(qdir)).entries.map((e) => e.id), [old.entry.id, recent.entry.id, now.entry.id]);
  assert.equal((await readEntry(qdir, now.entry.id)).record.sender, HOSTILE_SENDER);
  assert.deepEqual(await expireEntries(qdir, 5), [old.entry.id]);
  assert.deepEqual((await listEntries(qdir)).entries.map((e) => e.id), [recent.entry.id, now.entry.id]);
  await deleteEntry(qdir, recent.entry.id);
  assert.deepEqual(readdirSync(qdir), [now.entry.id]);
  await assert.rejects(deleteEntry(qdir, recent.entry.id), { code: 'EQUARANTINE_NOT_FOUND' });
  await assert.rejects(readEntry(qdir, recent.entry.id), { code: 'EQUARANTINE_NOT_FOUND' });
  await assert.rejects(deleteEntry(qdir, '../quarantine'), { code: 'EQUARANTINE_ID' });
  assert.deepEqual(readdirSync(qdir), [now.entry.id]);
});

test('the command line: list (table and --json), show, delete, expire; exit statuses', async () => {
  const { dir, qdir, cfg } = workdir();
  const a = await keep(dir, qdir, new Date(Date.now() - 40 * 86_400_000));
  const b = await keep(dir, qdir, undefined, { sender: 'x\u001b[31m@example.test', recipients: ['c@example.test'] });
  const av = (...args: string[]) => runAvfilter(['-f', cfg, '--quarantine', ...args]);

  let r = av('list');
  assert.equal(r.code, 0, r.stderr);
  const lines = r.stdout.trim().split('\n');
  assert.match(lines[0]!, /^ID\s+TIME \(UTC\)\s+SENDER\s+RCPTS\s+STATE\s+NAMES$/);
  assert.equal(lines.length, 3, r.stdout);
  assert.match(lines[1]!, new RegExp(`^${a.entry.id}\\s+\\d{4}-\\d\\d-\\d\\d \\d\\d:\\d\\d:\\d\\d\\s+<\\.\\./\\.\\./evil/\`rm -rf\`@example\\.test>\\s+2\\s+held\\s+Eicar-Test-Signature$`));
  assert.ok(lines[2]!.startsWith(b.entry.id) && lines[2]!.includes('\\u001b[31m') && !r.stdout.includes('\u001b'), 'control characters are shown escaped');

  r = av('list', '--json');
  assert.equal(r.code, 0, r.stderr);
  const recs = JSON.parse(r.stdout);
  assert.deepEqual(recs.map((x: { id: string }) => x.id), [a.entry.id, b.entry.id]);
  assert.equal(recs[1].sender, 'x\u001b[31m@example.test');

  r = av('show', a.entry.id);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, new RegExp(`^id: ${a.entry.id}\n`));
  assert.match(r.stdout, /\nstate: held\n/);
  assert.match(r.stdout, /\nrecipients: alice@example\.test, bob@example\.test\n/);
  assert.match(r.stdout, /\nfound: Eicar-Test-Signature by yara in part 2 "eicar\.com"\n/);
  r = av('show', a.entry.id, '--json');
  assert.equal(r.code, 0, r.stderr);
  assert.equal(JSON.parse(r.stdout).message, join(a.entry.dir, 'message.eml'));

  for (const bad of ['../x', '../quarantine', 'a/b', '.release-key', '..']) {
    for (const cmd of ['show', 'delete', 'release']) {
      r = av(cmd, bad);
      assert.equal(r.code, 2, `${cmd} ${bad}: ${r.stderr}`);
      assert.match(r.stderr, /not a quarantine id/);
    }
  }
  r = av('show', '20990101-000000-000000000000');
  assert.equal(r.code, 1);
  assert.match(r.stderr, /no quarantine entry/);
  for (const args of [['frobnicate'], ['list', 'extra'], ['show'], ['expire', 'soon'], ['expire', '-1'], ['delete', a.entry.id, '--json']]) {
    r = av(...args);
    assert.equal(r.code, 2, `${args.join(' ')}: ${r.stdout}${r.stderr}`);
    assert.match(r.stderr, /usage: avfilter/);
  }
  assert.equal(runAvfilter(['-f', cfg, '--json']).code, 2, '--json without --quarantine');
  assert.equal(readdirSync(qdir).length, 2, 'refused commands changed nothing');

  r = av('expire', '30');
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, `deleted ${a.entry.id}\n`);
  assert.match(r.stderr, new RegExp(`event=quarantine-delete quarantine=${a.entry.id} by=expire days=30`));
  r = av('delete', b.entry.id);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stderr, new RegExp(`event=quarantine-delete quarantine=${b.entry.id} by=delete`));
  assert.deepEqual(readdirSync(qdir), []);
  r = av('delete', b.entry.id);
  assert.equal(r.code, 1);
  r = av('list');
  assert.equal(r.code, 0);
  assert.equal(r.stdout, '');
});

test('--batch-test with action.quarantine: the infected message is kept (data, record from the envelope) before the drop', () => {
  const { dir, qdir } = workdir();
  const spool = join(dir, 'spool');
  mkdirSync(spool);
  const cfg = join(dir, 'batch.toml');
  writeFileSync(cfg, [
    `tmpdir = "${dir}/work"`, `spool_dirs = ["${spool}"]`, `quarantine_dir = "${qdir}"`, '[action]', 'infected = "drop"', 'quarantine = true', '',
  ].join('\n'));
  const data = join(spool, 'D1');
  const control = join(spool, 'C1');
  writeFileSync(data, [
    'From: a@example.test', 'Subject: t', 'MIME-Version: 1.0', 'Content-Type: multipart/mixed; boundary="b"', '',
    '--b', 'Content-Type: application/octet-stream; name="e.com"', 'Content-Transfer-Encoding: base64', '', eicar().toString('base64'), '--b--', '',
  ].join('\n'));
  writeFileSync(control, [`s${HOSTILE_SENDER}`, 'fdns; c ([192.0.2.9])', `M${'0'.repeat(16)}.${'1'.repeat(16)}.00000001`, 'rx@example.test', 'R', 'N', 'OTCPREMOTEIP=192.0.2.9', ''].join('\n'));
  const r = runAvfilter(['-f', cfg, '--batch-test'], { input: `${data}\n${control}\n\n` });
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /^200 /);
  assert.match(readFileSync(control, 'utf8'), /\nS0 \d+/, 'dropped after it was kept');
  const ids = readdirSync(qdir);
  assert.equal(ids.length, 1);
  assert.match(ids[0]!, QUARANTINE_ID_RE);
  assert.match(r.stderr, new RegExp(`quarantine=${ids[0]}`), 'the message line names the entry');
  const e = JSON.parse(readFileSync(join(qdir, ids[0]!, 'record.json'), 'utf8'));
  assert.equal(e.sender, HOSTILE_SENDER);
  assert.deepEqual(e.recipients, ['x@example.test']);
  assert.deepEqual(e.names, ['Eicar-Test-Signature']);
  assert.deepEqual(readFileSync(join(qdir, ids[0]!, 'message.eml')), readFileSync(data));
  assert.equal(e.controls, 1);
  assert.match(readFileSync(join(qdir, ids[0]!, 'control-1'), 'utf8'), /^s\.\.\/\.\.\/evil/, 'the control file as it was before the drop');
  assert.equal(e.action, 'drop');
  assert.equal(e.client_ip, '192.0.2.9');
  assert.deepEqual(e.findings.map((f: { name: string; part: string }) => f.name), ['Eicar-Test-Signature']);
});
