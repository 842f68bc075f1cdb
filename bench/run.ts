/** `npm run bench`: runs every benchmark section and prints its table. */
import { benchMime } from './mime.js';
import { benchShapes, printShapes } from './shapes.js';

const rows = await benchMime();
console.log('MIME extraction (median of interleaved runs, MB/s of input)');
console.log('| message | size MB | extractParts MB/s | plain mailsplit MB/s | ratio |');
console.log('|---|---|---|---|---|');
for (const r of rows) console.log(`| ${r.name} | ${r.sizeMB.toFixed(1)} | ${r.extractMBs.toFixed(1)} | ${r.mailsplitMBs.toFixed(1)} | ${r.ratio.toFixed(2)} |`);

printShapes(await benchShapes());
