#!/usr/bin/env node
// A Courier global filter for the benchmark (bench/courier-capture.ts): it keeps a copy of each
// message's data file as Courier's submit wrote it, so that the filter section can feed avfilter
// the bytes Courier hands a filter (its own Received: line, its MIME rewrite) instead of the mix
// as generated. courierfilter starts it as /etc/courier/filters/active/NAME; it follows
// courier-filter-protocol.md §1.5 (socket .NAME in allfilters, chmod 0660, rename to NAME),
// closes fd 3 once ready and exits on stdin EOF. Per message: the envelope sender of the first
// control file (`s` record) must be bench-N@...; the data file is copied to capture/N beside the
// program's real path (a directory the courier user can write), then 200 Ok. Anything else is
// answered 451, so no message is delivered uncaptured by mistake.
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';

const NAME = path.basename(process.argv[1]);
const DIR_ALL = '/var/lib/courier/allfilters';
const DIR_OPTIONAL = '/var/lib/courier/filters';
const CAPTURE_DIR = path.join(path.dirname(fs.realpathSync(process.argv[1])), 'capture');
const MAX_REQUEST_BYTES = 64 * 1024;

function log(line) {
  process.stderr.write(`${NAME}: ${line}\n`);
}

function capture(dataPath, controlPaths) {
  const ctl = fs.readFileSync(controlPaths[0], 'latin1');
  const sender = /^s(.*)$/m.exec(ctl)?.[1] ?? '';
  const m = /^bench-(\d+)@/.exec(sender);
  if (!m) {
    log(`not a bench message: from=<${sender}>`);
    return '451 capture: not a bench message\n';
  }
  fs.copyFileSync(dataPath, path.join(CAPTURE_DIR, m[1]));
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
      reply = capture(paths[0], paths.slice(1));
    } catch (err) {
      log(`error ${err.code ?? ''} ${err.message}`);
      reply = '451 capture: internal error\n';
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
  process.exit(0);
});
