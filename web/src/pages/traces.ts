// Trace search: a form over GET /api/v1/traces, a scatter of duration against
// start time (errors in red) and the result list. Everything is in the URL.
import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';
import { api, url, LOOKBACKS, FINDING_KINDS, type TraceSummary, type Params } from '../api';
import { h, note, options, replace } from '../dom';
import * as fmt from '../format';
import { navigate, type PageContext } from '../router';

const FIELDS = ['service', 'operation', 'correlation_id', 'attr', 'min_duration', 'max_duration', 'lookback', 'finding', 'error', 'sort', 'limit'] as const;

export function tracesPage(root: HTMLElement, ctx: PageContext): () => void {
  const p = ctx.params;
  const get = (k: string) => p.get(k) ?? '';
  const lookback = get('lookback') || '1h';

  const service = h('select', { name: 'service', id: 'f-service', 'data-testid': 'traces-service' }, options([['', 'Any service'], ...(get('service') ? [[get('service'), get('service')] as [string, string]] : [])], get('service')));
  const operation = h('select', { name: 'operation', id: 'f-operation' }, options([['', 'Any operation'], ...(get('operation') ? [[get('operation'), get('operation')] as [string, string]] : [])], get('operation')));
  const correlation = h('input', { name: 'correlation_id', id: 'f-correlation', type: 'search', placeholder: 'e.g. req-42', 'data-search': true, 'data-testid': 'traces-correlation', autocomplete: 'off', spellcheck: 'false' });
  correlation.value = get('correlation_id');
  const attr = h('input', { name: 'attr', id: 'f-attr', type: 'text', placeholder: 'key:value', autocomplete: 'off', spellcheck: 'false' });
  attr.value = p.getAll('attr').join(' ');
  const minD = h('input', { name: 'min_duration', id: 'f-min', type: 'text', placeholder: '100ms', size: 7 });
  minD.value = get('min_duration');
  const maxD = h('input', { name: 'max_duration', id: 'f-max', type: 'text', placeholder: '2s', size: 7 });
  maxD.value = get('max_duration');
  const range = h('select', { name: 'lookback', id: 'f-lookback' }, options(LOOKBACKS.map((l): [string, string] => [l, `Last ${l}`]), lookback));
  const finding = h('select', { name: 'finding', id: 'f-finding' }, options([['', 'Any'], ...FINDING_KINDS.map((k): [string, string] => [k, fmt.kindLabel(k)])], get('finding')));
  const sort = h('select', { name: 'sort', id: 'f-sort' }, options([['start', 'Newest first'], ['duration', 'Slowest first']], get('sort') || 'start'));
  const limit = h('select', { name: 'limit', id: 'f-limit' }, options([['20', '20'], ['50', '50'], ['100', '100'], ['500', '500']], get('limit') || '20'));
  const errorOnly = h('input', { type: 'checkbox', name: 'error', id: 'f-error' });
  errorOnly.checked = get('error') === 'true';

  const field = (label: string, control: HTMLElement, id: string) => h('div', { class: 'field' }, h('label', { for: id }, label), control);
  const form = h('form', { class: 'search-form', 'data-testid': 'traces-form', role: 'search' },
    field('Service', service, 'f-service'),
    field('Operation', operation, 'f-operation'),
    field('Correlation id', correlation, 'f-correlation'),
    field('Attribute', attr, 'f-attr'),
    field('Min duration', minD, 'f-min'),
    field('Max duration', maxD, 'f-max'),
    field('Range', range, 'f-lookback'),
    field('Finding', finding, 'f-finding'),
    field('Sort', sort, 'f-sort'),
    field('Limit', limit, 'f-limit'),
    h('div', { class: 'field field-check' }, errorOnly, h('label', { for: 'f-error' }, 'Errors only')),
    h('div', { class: 'field field-submit' }, h('button', { type: 'submit', class: 'button primary', 'data-testid': 'traces-submit' }, 'Find traces')));

  form.addEventListener('submit', (e) => {
    e.preventDefault();
    const q: Params = {
      service: service.value,
      operation: operation.value,
      correlation_id: correlation.value.trim(),
      attr: attr.value.trim() ? attr.value.trim().split(/\s+(?=[^\s:]+:)/) : undefined,
      min_duration: minD.value.trim(),
      max_duration: maxD.value.trim(),
      lookback: range.value === '1h' ? '' : range.value,
      finding: finding.value,
      error: errorOnly.checked ? 'true' : '',
      sort: sort.value === 'start' ? '' : sort.value,
      limit: limit.value === '20' ? '' : limit.value,
    };
    navigate(url('/traces', q));
  });

  const loadOperations = (svc: string, keep: string) => {
    if (!svc) {
      replace(operation, ...options([['', 'Any operation']], ''));
      return;
    }
    api.operations(svc, ctx.signal).then((ops) => {
      replace(operation, ...options([['', 'Any operation'], ...ops.map((o): [string, string] => [o, o])], keep));
      if (keep && !ops.includes(keep)) operation.append(...options([[keep, keep]], keep));
    }, () => {});
  };
  service.addEventListener('change', () => loadOperations(service.value, ''));
  api.services(ctx.signal).then((svcs) => {
    replace(service, ...options([['', 'Any service'], ...svcs.map((s): [string, string] => [s, s])], get('service')));
    if (get('service') && !svcs.includes(get('service'))) service.append(...options([[get('service'), get('service')]], get('service')));
  }, () => {});
  loadOperations(get('service'), get('operation'));

  const status = h('p', { class: 'status', role: 'status' }, 'Searching…');
  const chartBox = h('div', { class: 'scatter', 'data-testid': 'traces-scatter' });
  const tooltip = h('div', { class: 'scatter-tip', hidden: true });
  const results = h('div', { class: 'trace-results', 'data-testid': 'trace-results' });
  root.append(h('section', { class: 'page page-traces', 'data-testid': 'page-traces' },
    h('div', { class: 'page-head' }, h('h1', null, 'Traces')),
    form,
    h('div', { class: 'scatter-wrap' }, chartBox, tooltip),
    status,
    results));

  let plot: uPlot | undefined;
  let resize: (() => void) | undefined;
  const query: Params = {};
  for (const k of FIELDS) {
    const all = p.getAll(k);
    if (all.length) query[k] = k === 'attr' ? all : all[0];
  }
  if (!query.lookback) query.lookback = lookback;

  api.traces(query, ctx.signal).then(
    (traces) => {
      status.textContent = traces.length
        ? `${traces.length} trace${traces.length === 1 ? '' : 's'}${traces.length >= Number(get('limit') || 20) ? ' (limit reached)' : ''}`
        : '';
      if (!traces.length) {
        chartBox.hidden = true;
        replace(results, note('No traces match. Widen the range or drop a filter.'));
        return;
      }
      ({ plot, resize } = scatter(chartBox, tooltip, traces));
      renderList(results, traces);
    },
    (err) => {
      if (ctx.signal.aborted) return;
      status.textContent = '';
      chartBox.hidden = true;
      replace(results, note(`Search failed: ${err.message}`, 'error'));
    },
  );

  return () => {
    if (resize) window.removeEventListener('resize', resize);
    plot?.destroy();
  };
}

function renderList(box: HTMLElement, traces: TraceSummary[]): void {
  const longest = Math.max(...traces.map((t) => t.duration_ms), 0.001);
  replace(box, h('ol', { class: 'trace-list' }, traces.map((t) => h('li', null,
    h('a', { class: 'trace-row', href: `/trace/${encodeURIComponent(t.trace_id)}`, 'data-testid': 'trace-row', 'data-trace-id': t.trace_id },
      h('div', { class: 'trace-row-head' },
        h('span', { class: 'trace-title' },
          h('span', { class: 'svc-dot', style: { background: fmt.serviceColor(t.root_service) }, 'aria-hidden': 'true' }),
          h('strong', null, t.root_service || '(unknown)'), ': ', h('span', { class: 'op' }, t.root_operation || '(root span missing)')),
        h('span', { class: 'trace-duration' }, fmt.ms(t.duration_ms))),
      h('div', { class: 'duration-track', 'aria-hidden': 'true' },
        h('span', { class: `duration-fill${t.error_count ? ' error' : ''}`, style: { width: `${Math.max(0.5, (100 * t.duration_ms) / longest)}%` } })),
      h('div', { class: 'trace-row-meta' },
        h('span', null, `${t.span_count} spans`),
        t.error_count ? h('span', { class: 'pill pill-bad' }, `${t.error_count} error${t.error_count > 1 ? 's' : ''}`) : null,
        !t.complete ? h('span', { class: 'pill' }, 'in progress') : null,
        t.finding_kinds.map((k) => h('span', { class: `kind-badge kind-${k}` }, fmt.kindLabel(k))),
        h('span', { class: 'svc-chips' }, t.services.slice(0, 8).map((s) => h('span', { class: 'svc-chip' }, h('span', { class: 'svc-dot', style: { background: fmt.serviceColor(s) } }), s)),
          t.services.length > 8 ? h('span', { class: 'muted' }, `+${t.services.length - 8}`) : null),
        t.correlation_ids.length ? h('span', { class: 'mono small corr', title: 'Correlation ids' }, t.correlation_ids.slice(0, 2).join(', ')) : null,
        h('span', { class: 'spacer' }),
        h('span', { class: 'muted small', title: fmt.time(t.start_us) }, fmt.time(t.start_us)),
        h('span', { class: 'mono small muted' }, t.trace_id.slice(0, 12))))))));
}

/** Duration against start time; click a point to open its trace. */
function scatter(box: HTMLElement, tip: HTMLElement, traces: TraceSummary[]): { plot: uPlot; resize: () => void } {
  const sorted = traces.slice().sort((a, b) => a.start_us - b.start_us);
  const xs = sorted.map((t) => t.start_us / 1e6);
  const ok = sorted.map((t) => (t.error_count ? null : Math.max(t.duration_ms, 0.01)));
  const bad = sorted.map((t) => (t.error_count ? Math.max(t.duration_ms, 0.01) : null));
  const durations = sorted.map((t) => Math.max(t.duration_ms, 0.01));
  const spread = Math.max(...durations) / Math.min(...durations);
  const width = () => Math.max(300, box.clientWidth || 800);
  // A little room either side, and at least a minute wide: one trace alone
  // must not stretch the axis over years.
  const x0 = xs[0]!;
  const x1 = xs[xs.length - 1]!;
  const pad = Math.max((x1 - x0) * 0.04, 30 - (x1 - x0) / 2, 1);
  const xRange: uPlot.Range.MinMax = [x0 - pad, x1 + pad];
  const opts: uPlot.Options = {
    width: width(),
    height: 184,
    legend: { show: false },
    cursor: { points: { show: false }, x: false, y: false, drag: { x: false, y: false, setScale: false } },
    scales: { x: { time: true, range: (): uPlot.Range.MinMax => xRange }, y: spread > 50 ? { distr: 3 } : { range: (_u, _min, max) => [0, max * 1.1 || 1] } },
    axes: [
      // One line per tick (uPlot's default adds a date line under the first
      // tick that collides with its neighbours); the date goes in the axis label.
      { stroke: '#495057', grid: { stroke: '#e9ecef' }, ticks: { stroke: '#dee2e6' }, size: 30, values: clockTicks, label: dateLabel(xRange), labelSize: 18, labelFont: '11px system-ui, sans-serif', labelGap: 2 },
      { stroke: '#495057', grid: { stroke: '#e9ecef' }, ticks: { stroke: '#dee2e6' }, size: 64, values: (_u, vals) => vals.map((v) => (v == null ? '' : fmt.ms(v))) },
    ],
    series: [
      {},
      { label: 'OK', stroke: '#4c6ef5', fill: 'rgba(76,110,245,0.35)', paths: () => null, points: { show: true, size: 8, width: 1.5, stroke: '#3b5bdb', fill: 'rgba(76,110,245,0.35)' } },
      { label: 'Error', stroke: '#e03131', fill: 'rgba(224,49,49,0.45)', paths: () => null, points: { show: true, size: 9, width: 1.5, stroke: '#c92a2a', fill: 'rgba(224,49,49,0.45)' } },
    ],
  };
  const plot = new uPlot(opts, [xs, ok, bad], box);
  const nearest = (e: MouseEvent): TraceSummary | undefined => {
    const r = plot.over.getBoundingClientRect();
    const mx = e.clientX - r.left;
    const my = e.clientY - r.top;
    let best: TraceSummary | undefined;
    let bestD = 12 * 12;
    sorted.forEach((t, i) => {
      const x = plot.valToPos(xs[i]!, 'x');
      const y = plot.valToPos(durations[i]!, 'y');
      const d = (x - mx) ** 2 + (y - my) ** 2;
      if (d < bestD) {
        bestD = d;
        best = t;
      }
    });
    return best;
  };
  plot.over.addEventListener('mousemove', (e) => {
    const t = nearest(e);
    plot.over.style.cursor = t ? 'pointer' : 'default';
    if (!t) {
      tip.hidden = true;
      return;
    }
    replace(tip, h('strong', null, `${t.root_service}: ${t.root_operation}`), h('br'), `${fmt.ms(t.duration_ms)} · ${t.span_count} spans${t.error_count ? ` · ${t.error_count} errors` : ''}`, h('br'), h('span', { class: 'muted' }, fmt.time(t.start_us)));
    tip.hidden = false;
    const r = box.getBoundingClientRect();
    tip.style.left = `${Math.min(e.clientX - r.left + 14, r.width - 260)}px`;
    tip.style.top = `${e.clientY - r.top + 10}px`;
  });
  plot.over.addEventListener('mouseleave', () => { tip.hidden = true; });
  plot.over.addEventListener('click', (e) => {
    const t = nearest(e);
    if (t) navigate(`/trace/${encodeURIComponent(t.trace_id)}`);
  });
  const resize = () => plot.setSize({ width: width(), height: 184 });
  window.addEventListener('resize', resize);
  return { plot, resize };
}

const pad2 = (n: number) => String(n).padStart(2, '0');

/** Local clock time at each tick: seconds shown when ticks are under a minute apart, the day when a day or more. */
function clockTicks(_u: uPlot, splits: number[], _axis: number, _space: number, incr: number): string[] {
  return splits.map((v) => {
    if (v == null) return '';
    const d = new Date(v * 1000);
    const hm = `${pad2(d.getHours())}:${pad2(d.getMinutes())}`;
    if (incr >= 86_400) return `${pad2(d.getMonth() + 1)}-${pad2(d.getDate())}`;
    if (incr >= 3_600) return d.getHours() === 0 && d.getMinutes() === 0 ? `${pad2(d.getMonth() + 1)}-${pad2(d.getDate())}` : hm;
    return incr < 60 ? `${hm}:${pad2(d.getSeconds())}` : hm;
  });
}

/** "Start time · 2026-11-29" (or the two dates the range spans). */
function dateLabel([from, to]: uPlot.Range.MinMax): string {
  const day = (sec: number) => fmt.time(sec * 1e6).slice(0, 10);
  const a = day(from ?? 0);
  const b = day(to ?? 0);
  return `Start time (local) · ${a === b ? a : `${a} – ${b}`}`;
}
