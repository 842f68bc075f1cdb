/**
 * A Prometheus stand-in for the benchmark: GET /metrics on avfilter's metrics endpoint (a unix
 * socket) every second while a mode with `metrics` runs, so that mode measures the endpoint as
 * it is used (Prometheus scrapes every 15 s by default: once a second is the heavy case).
 */
import { request } from 'node:http';

export interface Scraper {
  /** Stops; resolves with how many scrapes answered 200 and how many did not. */
  stop(): Promise<{ ok: number; failed: number }>;
}

export const SCRAPE_EVERY_MS = 1000;

export function startScraper(socketPath: string, everyMs = SCRAPE_EVERY_MS): Scraper {
  let ok = 0;
  let failed = 0;
  let inFlight: Promise<void> = Promise.resolve();
  const once = (): Promise<void> => new Promise<void>((resolve) => {
    const req = request({ socketPath, path: '/metrics', timeout: 5000 }, (res) => {
      res.resume();
      res.on('end', () => {
        if (res.statusCode === 200) ok++;
        else failed++;
        resolve();
      });
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', () => {
      failed++;
      resolve();
    });
    req.end();
  });
  const timer = setInterval(() => {
    inFlight = inFlight.then(once);
  }, everyMs);
  return {
    async stop() {
      clearInterval(timer);
      await inFlight;
      return { ok, failed };
    },
  };
}
