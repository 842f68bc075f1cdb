/**
 * action.block_ip_seconds in the real daemon with two workers: the block one worker sets after a
 * virus is answered by the other worker too (the master keeps the table and tells every
 * worker), survives a reload (a new generation of workers is given the table), and ends after
 * its seconds; a reload that sets block_ip_seconds = 0 lifts every block. The worker that saw the virus is stopped (SIGSTOP) while the next messages come,
 * so they can only be answered by the other one.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { daemonEnv, stopDaemon, waitForWorkers, waitLog, workerPids } from './helpers/daemon-env.js';
import { eicar } from './helpers/eicar.js';
import { waitFor } from './helpers/avfilter-proc.js';
import { parseProm, scrape } from './helpers/prom.js';

const BLOCK_SECONDS = 12;

const control = (ip: string): string =>
  `ssender@example.test\nfdns; client.example.test ([${ip}])\nM000000000016A031.000000006B019110.00002AB4\nrsink@harness.test\nR\nN\nORELAYCLIENT=\nOTCPREMOTEIP=${ip}\nuauthsmtp\n`;

const mail = (body: Buffer): string =>
  `Received: from client.example.test\nFrom: a@example.test\nSubject: t\nContent-Transfer-Encoding: base64\n\n${body.toString('base64')}\n`;

test('a block set by one worker is answered 451 by the other, kept across a reload, and over after its seconds', async () => {
  const env = daemonEnv('', 'avf-block-');
  const metrics = `${env.dir}/metrics.sock`;
  const config = (seconds: number): string => `workers = 2\nmetrics = "unix:${metrics}"\n[[engine]]\ntype = "yara"\n[action]\ninfected = "reject"\nblock_ip_seconds = ${seconds}`;
  env.write(config(BLOCK_SECONDS));
  const blockedIps = async (): Promise<number | undefined> => parseProm((await scrape({ socketPath: metrics })).body).get('avfilter_blocked_ips');
  const d = await env.up();
  try {
    await waitLog(d, /event=started/, 30_000);
    const first = await waitForWorkers(d.child.pid!, 2, 30_000);
    const clean = (ip: string) => env.send(env.request(mail(Buffer.from('nothing here\n')), [control(ip)]).line);

    assert.match(await clean('::ffff:192.0.2.7'), /^200 /, 'not blocked before any virus');
    assert.match(await env.send(env.request(mail(eicar()), [control('::ffff:192.0.2.7')]).line), /^550 /);
    await waitLog(d, /event=ip-blocked ip=192\.0\.2\.7 seconds=\d+ until=\S+ worker=\d+ pid=\d+/);
    const m = / event=ip-blocked ip=192\.0\.2\.7 seconds=\d+ until=(\S+) worker=\d+ pid=(\d+)/.exec(d.stderr())!;
    const until = Date.parse(m[1]!);
    const saw = Number(m[2]);
    assert.ok(first.includes(saw), `the reporting worker ${saw} is one of ${first}`);
    assert.ok(until > Date.now(), 'the block is in force');
    assert.equal(await blockedIps(), 1, 'the master\'s table, as a gauge');

    // only the other worker can take connections now
    process.kill(saw, 'SIGSTOP');
    let replies: string[];
    try {
      replies = await Promise.all([clean('::ffff:192.0.2.7'), clean('192.0.2.7'), clean('::ffff:192.0.2.7'), clean('198.51.100.1')]);
    } finally {
      process.kill(saw, 'SIGCONT');
    }
    for (const r of replies.slice(0, 3)) assert.match(r, /^451 4\.7\.1 Mail from 192\.0\.2\.7 is deferred for a while: it sent a virus/);
    assert.match(replies[3]!, /^200 /, 'another IP is not blocked');
    await waitLog(d, /verdict=blocked action=tempfail reply=451/);

    // a reload: a new generation of workers, the same table
    d.child.kill('SIGHUP');
    await waitLog(d, /event=reloaded/, 30_000);
    await waitFor(() => first.every((p) => { try { process.kill(p, 0); return false; } catch { return true; } }), 30_000, 'the old workers gone');
    assert.ok(Date.now() < until - 500, `the reload took too long for this test (${BLOCK_SECONDS} s block)`);
    assert.match(await clean('192.0.2.7'), /^451 /, 'the new workers know the block');

    // and it ends
    await new Promise((r) => setTimeout(r, Math.max(0, until - Date.now()) + 200));
    assert.match(await clean('192.0.2.7'), /^200 /, 'the block is over');
    assert.equal(await blockedIps(), 0);

    // blocked again, then the feature turned off by a reload: the blocks are lifted
    assert.match(await env.send(env.request(mail(eicar()), [control('192.0.2.7')]).line), /^550 /);
    await waitFor(() => (d.stderr().match(/event=ip-blocked ip=192\.0\.2\.7 /g) ?? []).length === 2, 10_000, 'the second block');
    assert.match(await clean('192.0.2.7'), /^451 /);
    const reloads = (d.stderr().match(/event=reloaded/g) ?? []).length;
    const before = workerPids(d.child.pid!);
    env.write(config(0));
    d.child.kill('SIGHUP');
    await waitFor(() => (d.stderr().match(/event=reloaded/g) ?? []).length > reloads, 30_000, 'the second reload');
    await waitFor(() => before.every((p) => { try { process.kill(p, 0); return false; } catch { return true; } }), 30_000, 'the old workers gone');
    assert.match(await clean('192.0.2.7'), /^200 /, 'block_ip_seconds = 0 lifts the blocks');
    assert.equal(await blockedIps(), 0);
  } finally {
    await stopDaemon(d);
  }
});
