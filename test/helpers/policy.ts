// The policy part of a config for decide(): the built-in defaults with some [action] keys (and
// other sections) changed, as the loader would give them.
import { parseConfig, type Config } from '../../src/config/load.js';
import type { PolicyConfig } from '../../src/policy/actions.js';

const DEFAULTS = parseConfig('', 'defaults');

type Sections = { [K in keyof PolicyConfig]?: Partial<PolicyConfig[K]> };

export function policy(action: Partial<Config['action']> = {}, more: Sections = {}): PolicyConfig {
  const pick = <K extends keyof PolicyConfig>(k: K): PolicyConfig[K] => ({ ...DEFAULTS[k], ...(more[k] ?? {}) }) as PolicyConfig[K];
  return {
    action: { ...DEFAULTS.action, ...action, ...(more.action ?? {}) },
    replies: pick('replies'), skip: pick('skip'), banned: pick('banned'), headers: pick('headers'), notify: pick('notify'),
  };
}
