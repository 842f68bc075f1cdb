/**
 * The configurable answers ([replies]): "CODE TEXT" templates with macros (policy/macros.ts),
 * expanded for one message. Whatever comes from the message (virus names an engine read out
 * of it, file names, addresses, the reason) is escaped by macros.ts for a reply line: printable
 * ASCII only, each value and the whole line bounded, so nothing from the message can break or
 * forge a reply. The loader checked the code's class; the runtime checked the macros.
 * Fails with nothing: a template the config accepted always expands.
 */
import type { Reply } from '../courierfilter/server.js';
import { escapeValue, expandTemplate, type MacroValues } from './macros.js';

export type { MacroValues };

export function expandReply(template: string, values: MacroValues): Reply {
  return { code: Number(template.slice(0, 3)), text: expandTemplate(template.slice(4), values, 'reply') };
}

/** One value made safe for a reply or header line (the mark effect's virus names). */
export function replySafe(s: string): string {
  return escapeValue(s, 'reply');
}
