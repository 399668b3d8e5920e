// A small latency histogram (SVG bars, one per bucket `le_ms`), built with
// attribute setters only.
import { h, svg } from '../dom';
import { ms } from '../format';

export function histogram(buckets: Array<{ le_ms: number | null; count: number }>, marks: Array<[string, number]> = []): HTMLElement {
  const data = buckets
    .filter((b) => Number.isFinite(b.count))
    .map((b) => ({ le_ms: b.le_ms ?? Infinity, count: b.count }))
    .sort((a, b) => (a.le_ms === b.le_ms ? 0 : a.le_ms < b.le_ms ? -1 : 1));
  const width = 300;
  const height = 110;
  const pad = { l: 30, r: 6, t: 8, b: 22 };
  const max = Math.max(1, ...data.map((b) => b.count));
  const bw = (width - pad.l - pad.r) / Math.max(1, data.length);
  const chart = svg('svg', { viewBox: `0 0 ${width} ${height}`, class: 'histogram', role: 'img', 'aria-label': 'Latency distribution' });
  chart.append(
    svg('line', { x1: pad.l, x2: width - pad.r, y1: height - pad.b, y2: height - pad.b, class: 'axis' }),
    svg('text', { x: pad.l - 4, y: pad.t + 8, 'text-anchor': 'end', class: 'tick' }, String(max)),
    svg('text', { x: pad.l - 4, y: height - pad.b, 'text-anchor': 'end', class: 'tick' }, '0'),
  );
  const labelEvery = Math.ceil(data.length / 6);
  data.forEach((b, i) => {
    const bh = ((height - pad.t - pad.b) * b.count) / max;
    const x = pad.l + i * bw;
    const bar = svg('rect', { x: x + 1, y: height - pad.b - bh, width: Math.max(1, bw - 2), height: bh, class: 'bar' });
    const range = Number.isFinite(b.le_ms) ? `≤ ${ms(b.le_ms)}` : `> ${ms(data[i - 1]?.le_ms ?? 0)}`;
    bar.append(svg('title', {}, `${range}: ${b.count}`));
    chart.append(bar);
    if (i % labelEvery === 0 || i === data.length - 1) {
      chart.append(svg('text', { x: x + bw / 2, y: height - 6, 'text-anchor': 'middle', class: 'tick' }, Number.isFinite(b.le_ms) ? ms(b.le_ms) : `>${ms(data[i - 1]?.le_ms ?? 0)}`));
    }
  });
  return h(
    'figure',
    { class: 'histogram-figure' },
    chart,
    marks.length ? h('figcaption', null, marks.map(([l, v]) => h('span', null, `${l} ${ms(v)}`))) : null,
  );
}
