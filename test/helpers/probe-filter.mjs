#!/usr/bin/env node
// A minimal Courier global filter used only to prove the E2E harness (test/helpers/courier.ts)
// and a real Courier work before avfilter is involved. courierfilter starts it as
// /etc/courier/filters/active/NAME; it follows courier-filter-protocol.md §1.5 (socket .NAME in
// allfilters, chmod 0660, rename to NAME), closes fd 3 once ready, and exits on stdin EOF.
// Decision per message, from the header `X-Probe:` of the data file:
//   reject   -> 550 (two lines, to check multi-line replies reach the client)
//   tempfail -> 451
//   drop     -> appends `I<n> R ...` and `S<n> <time>` for every recipient, then 200 (the records
//               avfilter's drop writes), so the harness's queue inspection can be checked
//   anything else -> 200 Ok
// One stderr line per message (courierfilter sends it to syslog): `probe: id=... verdict=...`.
// Capture (the benchmark's bench/courier-capture.ts): when a directory `capture` sits beside the
// program's real path (made there, writable by the courier user), each message whose envelope
// sender is bench-N@... first has its data file copied there as `N`, as Courier's submit wrote it.
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';

const NAME = path.basename(process.argv[1]);
const DIR_ALL = '/var/lib/courier/allfilters';
const DIR_OPTIONAL = '/var/lib/courier/filters';
// A request is a few short paths; anything larger is a broken client.
const MAX_REQUEST_BYTES = 64 * 1024;
const CAPTURE_DIR = path.join(path.dirname(fs.realpathSync(process.argv[1])), 'capture');

function log(line) {
  process.stderr.write(`${NAME}: ${line}\n`);
}

function controlRecords(text) {
  const out = { id: '', sender: '', rcpts: [] };
  for (const line of text.split('\n')) {
    if (line.startsWith('M')) out.id = line.slice(1);
    else if (line.startsWith('s')) out.sender = line.slice(1);
    else if (line.startsWith('r')) out.rcpts.push(line.slice(1));
  }
  return out;
}

function decide(dataPath, controlPaths) {
  const data = fs.readFileSync(dataPath, 'latin1');
  const head = data.split('\n\n', 1)[0];
  const m = /^X-Probe:\s*(\S+)/im.exec(head);
  const mode = m ? m[1].toLowerCase() : 'pass';
  const ctl = controlPaths.map((p) => controlRecords(fs.readFileSync(p, 'latin1')));
  const id = ctl[0]?.id ?? '';
  const sender = ctl[0]?.sender ?? '';
  const bench = /^bench-(\d+)@/.exec(sender);
  if (bench && fs.existsSync(CAPTURE_DIR)) fs.copyFileSync(dataPath, path.join(CAPTURE_DIR, bench[1]));
  const nrcpt = ctl.reduce((n, c) => n + c.rcpts.length, 0);
  const summary = `id=${id} from=<${sender}> rcpts=${nrcpt}`;
  if (mode === 'reject') {
    log(`${summary} verdict=reject`);
    return '550-probe: rejected on request\n550 (header X-Probe: reject)\n';
  }
  if (mode === 'tempfail') {
    log(`${summary} verdict=tempfail`);
    return '451 probe: tempfail on request\n';
  }
  if (mode === 'drop') {
    const now = Math.floor(Date.now() / 1000);
    controlPaths.forEach((p, i) => {
      const fd = fs.openSync(p, fs.constants.O_WRONLY | fs.constants.O_APPEND);
      try {
        ctl[i].rcpts.forEach((_r, n) => {
          fs.writeSync(fd, `I${n} R 250 Ok - dropped by ${NAME}\n`);
          fs.writeSync(fd, `S${n} ${now}\n`);
        });
      } finally {
        fs.closeSync(fd);
      }
    });
    log(`${summary} verdict=drop`);
    return '200 Ok\n';
  }
  log(`${summary} verdict=pass`);
  return '200 Ok\n';
}

function serve(conn) {
  let buf = '';
  conn.setEncoding('latin1');
  conn.on('error', () => {});
  conn.on('data', (chunk) => {
    buf += chunk;
    if (buf.length > MAX_REQUEST_BYTES) {
      conn.destroy();
      return;
    }
    const end = buf.indexOf('\n\n');
    if (end < 0) return;
    const paths = buf.slice(0, end).split('\n');
    let reply;
    try {
      reply = decide(paths[0], paths.slice(1));
    } catch (err) {
      log(`error ${err.code ?? ''} ${err.message}`);
      reply = '451 probe: internal error\n';
    }
    conn.end(reply);
  });
}

const sockPath = path.join(DIR_ALL, NAME);
const tmpPath = path.join(DIR_ALL, `.${NAME}`);
fs.rmSync(path.join(DIR_OPTIONAL, NAME), { force: true });
fs.rmSync(tmpPath, { force: true });
const server = net.createServer(serve);
server.listen(tmpPath, () => {
  fs.chmodSync(tmpPath, 0o660);
  fs.renameSync(tmpPath, sockPath);
  try {
    if (fs.fstatSync(3).isFIFO()) fs.closeSync(3);
  } catch {
    // not started by courierfilter: nothing to hand back
  }
  log(`ready, pid ${process.pid}`);
});

process.stdin.on('data', () => {});
process.stdin.on('end', () => {
  server.close();
  fs.rmSync(sockPath, { force: true });
  log('stdin closed, exiting');
  process.exit(0);
});
