/**
 * The Courier harness in a process of its own, for courier-host.test.ts to interrupt: starts it
 * and prints "up PORT"; with the argument "stop" it then stops it, prints "stopped" and exits,
 * otherwise it waits (for the signal the test sends). A start failure is printed as
 * "failed CODE MESSAGE" with exit status 1.
 */
import { startCourier } from './courier.js';

try {
  const h = await startCourier();
  process.stdout.write(`up ${h.port}\n`);
  if (process.argv[2] === 'stop') {
    await h.stop();
    process.stdout.write('stopped\n');
  } else {
    setInterval(() => undefined, 1 << 30);
  }
} catch (err) {
  const e = err as Error & { code?: string };
  process.stdout.write(`failed ${e.code ?? 'ERROR'} ${e.message}\n`);
  process.exitCode = 1;
}
