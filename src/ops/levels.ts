/**
 * Log severities, most severe first: the one list the logger (log.ts) and the event registry
 * (events.ts) both read, so that neither has to import the other for it.
 */
export type Level = 'error' | 'warning' | 'info' | 'debug';
export const LEVELS: readonly Level[] = ['error', 'warning', 'info', 'debug'];
