/**
 * clamd server addresses: the grammar is the config's (config/address.ts), so `avfilter --config`
 * refuses exactly the addresses the engine would.
 */
export { formatServer, parseServer, type ServerAddress as ClamdAddress } from '../../config/address.js';
