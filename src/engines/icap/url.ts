/** ICAP service URLs: the grammar is the config's (config/icap-url.ts). */
export { hostHeader, ICAP_DEFAULT_PORT, parseIcapUrl, type IcapUrl } from '../../config/icap-url.js';
