/**
 * The infected request captured from a real Courier (test/fixtures/courier/02-eicar-b64-multipart:
 * multipart/mixed with eicar.com as a base64 attachment, one recipient), written into a test
 * daemon's spool. The repository holds the data file with a placeholder where the attachment
 * goes; EICAR is put in at run time (helpers/eicar.ts says why).
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import { eicar } from './eicar.js';
import type { DaemonEnv, Request } from './daemon-env.js';

const FIXTURES = fileURLToPath(new URL('../../../test/fixtures/courier/', import.meta.url));

/** The sample's envelope, as its control file says. */
export const SAMPLE = {
  sender: 'sender@example.test',
  recipient: 'sink@harness.test',
  queueId: '000000000016A051.000000006B019110.00002ABA',
  clientIp: '127.0.0.1',
} as const;

/** The sample's data file, as Courier wrote it (its MIME notice as the preamble), EICAR put in. */
export function infectedSampleData(): string {
  const b64 = eicar().toString('base64').replace(/.{76}/g, '$&\n');
  return readFileSync(join(FIXTURES, '02-eicar-b64-multipart-data.in'), 'utf8').replace('@EICAR_BASE64_LINES@', b64);
}

export function infectedSample(env: DaemonEnv): Request {
  return env.request(infectedSampleData(), [readFileSync(join(FIXTURES, '02-eicar-b64-multipart-control1'), 'utf8')]);
}
