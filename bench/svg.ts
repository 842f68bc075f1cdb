/**
 * A line chart as hand-written SVG (no dependency): x = categories (e.g. concurrency 1, 4, 16,
 * equally spaced), y = values from 0, one coloured line with markers per series, a legend.
 * Input: title, axis labels, categories, series. Output: the SVG text. Missing points (NaN)
 * break the line.
 */

export interface Series {
  name: string;
  values: readonly number[];
}

const COLOURS = ['#444444', '#1f77b4', '#2ca02c', '#d62728', '#9467bd', '#ff7f0e', '#8c564b'];

function esc(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

/** A "nice" axis maximum: 1, 2 or 5 times a power of ten, at least `max`. */
function niceMax(max: number): number {
  if (!(max > 0)) return 1;
  const p = 10 ** Math.floor(Math.log10(max));
  for (const m of [1, 2, 5, 10]) if (m * p >= max) return m * p;
  return 10 * p;
}

export function lineChart(opts: { title: string; xLabel: string; yLabel: string; categories: readonly string[]; series: readonly Series[] }): string {
  const W = 720;
  const H = 420;
  const left = 70;
  const right = 250;
  const top = 50;
  const bottom = 60;
  const pw = W - left - right;
  const ph = H - top - bottom;
  const all = opts.series.flatMap((s) => s.values.filter(Number.isFinite));
  const yMax = niceMax(Math.max(0, ...all) * 1.05);
  const n = opts.categories.length;
  const x = (i: number): number => left + (n === 1 ? pw / 2 : (i * pw) / (n - 1));
  const y = (v: number): number => top + ph - (v / yMax) * ph;
  const out: string[] = [];
  out.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="12">`);
  out.push(`<rect width="${W}" height="${H}" fill="white"/>`);
  out.push(`<text x="${left + pw / 2}" y="24" text-anchor="middle" font-size="15" font-weight="bold">${esc(opts.title)}</text>`);
  for (let k = 0; k <= 5; k++) {
    const v = (yMax * k) / 5;
    out.push(`<line x1="${left}" y1="${y(v).toFixed(1)}" x2="${left + pw}" y2="${y(v).toFixed(1)}" stroke="#dddddd"/>`);
    out.push(`<text x="${left - 8}" y="${(y(v) + 4).toFixed(1)}" text-anchor="end">${Number(v.toPrecision(4))}</text>`);
  }
  out.push(`<line x1="${left}" y1="${top}" x2="${left}" y2="${top + ph}" stroke="black"/>`);
  out.push(`<line x1="${left}" y1="${top + ph}" x2="${left + pw}" y2="${top + ph}" stroke="black"/>`);
  opts.categories.forEach((c, i) => {
    out.push(`<text x="${x(i).toFixed(1)}" y="${top + ph + 18}" text-anchor="middle">${esc(c)}</text>`);
  });
  out.push(`<text x="${left + pw / 2}" y="${H - 15}" text-anchor="middle">${esc(opts.xLabel)}</text>`);
  out.push(`<text transform="translate(18 ${top + ph / 2}) rotate(-90)" text-anchor="middle">${esc(opts.yLabel)}</text>`);
  opts.series.forEach((s, si) => {
    const colour = COLOURS[si % COLOURS.length]!;
    let d = '';
    s.values.forEach((v, i) => {
      if (!Number.isFinite(v)) return;
      const prev = i > 0 && Number.isFinite(s.values[i - 1]!);
      d += `${prev ? 'L' : 'M'}${x(i).toFixed(1)} ${y(v).toFixed(1)} `;
    });
    if (d) out.push(`<path d="${d.trim()}" fill="none" stroke="${colour}" stroke-width="2"/>`);
    s.values.forEach((v, i) => {
      if (Number.isFinite(v)) out.push(`<circle cx="${x(i).toFixed(1)}" cy="${y(v).toFixed(1)}" r="3.5" fill="${colour}"><title>${esc(`${s.name}: ${v.toFixed(1)}`)}</title></circle>`);
    });
    const ly = top + 10 + si * 22;
    out.push(`<line x1="${left + pw + 20}" y1="${ly}" x2="${left + pw + 44}" y2="${ly}" stroke="${colour}" stroke-width="2"/>`);
    out.push(`<text x="${left + pw + 50}" y="${ly + 4}">${esc(s.name)}</text>`);
  });
  out.push('</svg>');
  return out.join('\n') + '\n';
}
