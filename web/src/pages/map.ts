// The service map: a layered graph (callers on the left) of services and the
// databases, caches, queues and external APIs they call, each node ringed by
// its health as AWS X-Ray's console draws it, each edge labelled with its
// rate, p95 and error share; retry storms stand out. Click for a side panel.
// Edge labels show on retry storms and on the edges of the selected, focused
// or hovered node (all of them with the "All labels" toggle), so a node with
// many calls does not pile its labels on top of each other.
import cytoscape from 'cytoscape';
import dagre from 'cytoscape-dagre';
import { api, url, LOOKBACKS, type MapEdge, type MapNode, type ServiceMap, type FindingGroup } from '../api';
import { h, note, options, replace } from '../dom';
import * as fmt from '../format';
import { setQuery, type PageContext } from '../router';
import { panel, onEscape, stats, healthBar, section, HEALTH } from '../parts/panel';
import { edgeId, elements, nodeKind, KIND_STYLE, STYLE, type NodeKind } from '../parts/graph';
import { histogram } from '../parts/histogram';

cytoscape.use(dagre);

declare global {
  interface Window {
    __tracemap?: { cy?: cytoscape.Core; map?: ServiceMap };
  }
}

const REFRESH_MS = 10_000;

export function mapPage(root: HTMLElement, ctx: PageContext): () => void {
  const params = ctx.params;
  let lookback = params.get('lookback') ?? '1h';
  let focus = params.get('service') ?? '';
  let depth = params.get('depth') ?? '2';
  let auto = params.get('refresh') !== 'off';
  let allLabels = params.get('labels') === 'all';
  let hovered: string | undefined;
  let map: ServiceMap | undefined;
  let selected: { node: string } | { source: string; target: string } | undefined;
  let timer: number | undefined;
  let dashTimer: number | undefined;
  let inflight: AbortController | undefined;
  let openAfterLoad = false;

  const syncUrl = () => {
    const q = new URLSearchParams();
    if (lookback !== '1h') q.set('lookback', lookback);
    if (focus) {
      q.set('service', focus);
      q.set('depth', depth);
    }
    if (!auto) q.set('refresh', 'off');
    if (allLabels) q.set('labels', 'all');
    setQuery(q);
  };

  // Toolbar.
  const datalist = h('datalist', { id: 'map-node-names' });
  const search = h('input', {
    type: 'search',
    placeholder: 'Find a service…  ( / )',
    'aria-label': 'Find a service',
    list: 'map-node-names',
    'data-search': true,
    'data-testid': 'map-search',
    autocomplete: 'off',
    spellcheck: 'false',
  });
  search.value = focus;
  const depthSelect = h('select', { 'aria-label': 'Depth around the focused service', title: 'Hops around the focused service' },
    options([['1', 'depth 1'], ['2', 'depth 2'], ['3', 'depth 3'], ['5', 'depth 5']], depth));
  const clearFocus = h('button', { type: 'button', class: 'button', hidden: !focus }, 'Show all');
  const rangeButtons = LOOKBACKS.map((lb) =>
    h('button', { type: 'button', class: 'seg', 'aria-pressed': String(lb === lookback), 'data-lookback': lb }, lb),
  );
  const autoButton = h('button', { type: 'button', class: 'button toggle', 'aria-pressed': String(auto), title: 'Refresh every 10 s' }, 'Auto-refresh');
  const labelsButton = h('button', { type: 'button', class: 'button toggle', 'aria-pressed': String(allLabels), 'data-testid': 'labels-toggle', title: 'Label every edge (otherwise: retry storms and the selected or hovered node\'s edges)' }, 'All labels');
  const refreshButton = h('button', { type: 'button', class: 'button', title: 'Refresh now' }, 'Refresh');
  const status = h('span', { class: 'status', role: 'status', 'aria-live': 'polite' });

  const canvas = h('div', { class: 'cy', 'data-testid': 'map-canvas', 'aria-label': 'Service map', role: 'img' });
  const overlay = h('div', { class: 'map-overlay' });
  const legend = h(
    'div',
    { class: 'legend', 'aria-label': 'Legend' },
    h('div', { class: 'legend-row' },
      (['ok', 'error', 'fault', 'throttle'] as const).map((k) =>
        h('span', { class: 'legend-item' }, h('span', { class: 'swatch round', style: { background: HEALTH[k] } }),
          { ok: 'OK', error: '4xx error', fault: '5xx fault', throttle: '429 throttle' }[k]))),
    h('div', { class: 'legend-row' },
      (Object.keys(KIND_STYLE) as NodeKind[]).map((k) => h('span', { class: 'legend-item' }, h('span', { class: `shape shape-${k}` }), KIND_STYLE[k].label)),
      h('span', { class: 'legend-item' }, h('span', { class: 'storm-line' }), 'retry storm')),
  );
  const side = panel(() => {
    selected = undefined;
    cy.elements().unselect();
  });

  const page = h(
    'section',
    { class: 'page page-map', 'data-testid': 'page-map' },
    h(
      'div',
      { class: 'toolbar' },
      h('form', {
        class: 'map-search',
        role: 'search',
        onsubmit: (e: Event) => {
          e.preventDefault();
          findAndFocus(search.value.trim());
        },
      }, search, datalist, depthSelect, h('button', { type: 'submit', class: 'button primary' }, 'Focus'), clearFocus),
      h('div', { class: 'seg-group', role: 'group', 'aria-label': 'Time range' }, rangeButtons),
      labelsButton,
      autoButton,
      refreshButton,
      status,
    ),
    h('div', { class: 'map-body' }, canvas, overlay, legend, side.el),
  );
  root.append(page);

  const cy = cytoscape({
    container: canvas,
    style: STYLE,
    minZoom: 0.05,
    maxZoom: 3,
    wheelSensitivity: 0.3,
    boxSelectionEnabled: false,
    selectionType: 'single',
  });
  window.__tracemap = { cy };

  const reduceMotion = window.matchMedia?.('(prefers-reduced-motion: reduce)').matches;
  if (!reduceMotion) {
    let offset = 0;
    dashTimer = window.setInterval(() => {
      const storms = cy.edges('.storm');
      if (storms.empty()) return;
      offset = (offset - 2) % 32;
      storms.style('line-dash-offset', offset);
    }, 60);
  }

  function layout(): void {
    cy.layout({
      name: 'dagre',
      rankDir: 'LR',
      nodeSep: 28,
      rankSep: 200,
      edgeSep: 12,
      padding: 30,
      fit: true,
      animate: false,
    } as cytoscape.LayoutOptions).run();
    if (cy.zoom() > 1.4) {
      cy.zoom(1.4);
      cy.center();
    }
  }

  function show(next: ServiceMap): void {
    const els = elements(next);
    const oldIds = cy.elements().map((e) => e.id()).sort().join('\n');
    const newIds = els.map((e) => e.data.id as string).sort().join('\n');
    if (oldIds === newIds && cy.elements().nonempty()) {
      cy.batch(() => {
        for (const el of els) {
          const existing = cy.getElementById(el.data.id as string);
          existing.data(el.data);
          existing.classes(el.classes as string);
        }
      });
    } else {
      cy.batch(() => {
        cy.elements().remove();
        cy.add(els);
      });
      layout();
    }
    cy.nodes().removeClass('focus');
    if (focus) cy.getElementById(focus).addClass('focus');
    replace(datalist, next.nodes.map((n) => h('option', { value: n.id })));
    if (next.nodes.length === 0) {
      replace(overlay, note(focus ? `No calls around ${focus} in the last ${lookback}.` : `No traffic in the last ${lookback}. Send some traces and this map fills in.`));
    } else replace(overlay);
    highlight(search.value.trim() === focus ? '' : search.value.trim());
    updateLabels();
    if (selected) {
      const el = 'node' in selected ? cy.getElementById(selected.node) : cy.getElementById(edgeId(selected));
      if (el.nonempty()) {
        el.select();
        if (openAfterLoad) openPanel();
        else refreshPanelNumbers();
      }
      openAfterLoad = false;
    }
  }

  async function load(): Promise<void> {
    inflight?.abort();
    const controller = new AbortController();
    inflight = controller;
    ctx.signal.addEventListener('abort', () => controller.abort());
    status.textContent = 'Loading…';
    try {
      const next = await api.serviceMap(
        { lookback, service: focus || undefined, depth: focus ? depth : undefined },
        controller.signal,
      );
      map = next;
      window.__tracemap = { cy, map };
      show(next);
      const storms = next.edges.filter((e) => e.storm).length;
      status.textContent = `${next.nodes.length} nodes · ${next.edges.length} edges${storms ? ` · ${storms} retry storm${storms > 1 ? 's' : ''}` : ''} · updated ${new Date().toLocaleTimeString()}`;
      status.title = status.textContent;
      status.classList.remove('error');
    } catch (e) {
      if (controller.signal.aborted) return;
      status.textContent = `Could not load the map: ${(e as Error).message}`;
      status.classList.add('error');
    }
  }

  function schedule(): void {
    window.clearInterval(timer);
    timer = undefined;
    if (auto) timer = window.setInterval(() => {
      if (!document.hidden) void load();
    }, REFRESH_MS);
  }

  function highlight(text: string): void {
    cy.batch(() => {
      cy.elements().removeClass('dimmed match');
      if (!text) return;
      const needle = text.toLowerCase();
      const hits = cy.nodes().filter((n) => String(n.data('label')).toLowerCase().includes(needle));
      if (hits.empty()) return;
      hits.addClass('match');
      cy.elements().not(hits).not(hits.connectedEdges()).addClass('dimmed');
    });
  }

  /** Which edges carry their numbers: see the module doc. */
  function updateLabels(): void {
    cy.batch(() => {
      cy.edges().removeClass('lit').toggleClass('all-labels', allLabels);
      const lit = cy.$('node:selected').connectedEdges();
      for (const id of [focus, hovered]) if (id) lit.merge(cy.getElementById(id).connectedEdges());
      lit.addClass('lit');
    });
  }

  function findAndFocus(text: string): void {
    if (!text) {
      setFocus('');
      return;
    }
    const nodes = map?.nodes ?? [];
    const exact = nodes.find((n) => n.id === text || n.name === text);
    const partial = exact ?? nodes.find((n) => n.name.toLowerCase().includes(text.toLowerCase()));
    const target = partial?.id ?? text;
    search.value = target;
    selected = { node: target };
    openAfterLoad = true;
    setFocus(target);
  }

  function setFocus(service: string): void {
    focus = service;
    clearFocus.hidden = !focus;
    if (!focus) search.value = '';
    syncUrl();
    void load();
  }

  search.addEventListener('input', () => highlight(search.value.trim()));
  depthSelect.addEventListener('change', () => {
    depth = depthSelect.value;
    if (focus) {
      syncUrl();
      void load();
    }
  });
  clearFocus.addEventListener('click', () => setFocus(''));
  for (const b of rangeButtons) {
    b.addEventListener('click', () => {
      lookback = b.dataset.lookback!;
      rangeButtons.forEach((x) => x.setAttribute('aria-pressed', String(x === b)));
      syncUrl();
      void load();
    });
  }
  autoButton.addEventListener('click', () => {
    auto = !auto;
    autoButton.setAttribute('aria-pressed', String(auto));
    syncUrl();
    schedule();
  });
  refreshButton.addEventListener('click', () => void load());
  labelsButton.addEventListener('click', () => {
    allLabels = !allLabels;
    labelsButton.setAttribute('aria-pressed', String(allLabels));
    syncUrl();
    updateLabels();
  });
  cy.on('select unselect', 'node', updateLabels);
  cy.on('mouseover', 'node', (e) => { hovered = e.target.id(); updateLabels(); });
  cy.on('mouseout', 'node', () => { hovered = undefined; updateLabels(); });

  // Selection → side panel.
  /** Pans so the picked element is not hidden under the side panel. */
  const keepVisible = (x: number) => {
    const free = canvas.clientWidth - side.el.offsetWidth;
    if (side.isOpen() && x > free - 40) cy.panBy({ x: free / 2 - x, y: 0 });
  };
  cy.on('tap', 'node', (e) => {
    selected = { node: e.target.id() };
    openPanel();
    keepVisible(e.target.renderedPosition().x);
  });
  cy.on('tap', 'edge', (e) => {
    selected = { source: e.target.data('source'), target: e.target.data('target') };
    openPanel();
    keepVisible(e.target.renderedMidpoint().x);
  });
  cy.on('tap', (e) => {
    if (e.target === cy) side.close();
  });
  cy.on('dbltap', 'node', (e) => {
    const n = map?.nodes.find((x) => x.id === e.target.id());
    if (n?.type === 'service') {
      search.value = n.id;
      setFocus(n.id);
    }
  });
  onEscape(ctx.signal, () => side.close());

  let numbers: HTMLElement | undefined;
  let panelAbort: AbortController | undefined;

  function currentItem(): { node?: MapNode; edge?: MapEdge } {
    if (!map || !selected) return {};
    if ('node' in selected) {
      const id = selected.node;
      return { node: map.nodes.find((n) => n.id === id) };
    }
    const s = selected;
    return { edge: map.edges.find((e) => e.source === s.source && e.target === s.target) };
  }

  function numbersFor(item: { node?: MapNode; edge?: MapEdge }): HTMLElement {
    const x = item.node ?? item.edge!;
    const rows: Array<[string, string, string?]> = [
      ['Requests', fmt.count(x.requests)],
      ['Rate', fmt.rate(x.rate_per_s)],
      ['Errors (4xx)', `${fmt.count(x.errors)} · ${fmt.percent(x.errors, x.requests)}`, x.errors ? 'warn' : ''],
      ['Faults (5xx)', `${fmt.count(x.faults)} · ${fmt.percent(x.faults, x.requests)}`, x.faults ? 'bad' : ''],
      ['Throttles (429)', `${fmt.count(x.throttles)} · ${fmt.percent(x.throttles, x.requests)}`, x.throttles ? 'throttle' : ''],
    ];
    if (item.edge) rows.push(['Retries', `${fmt.count(item.edge.retries)} · ${fmt.percent(item.edge.retries, item.edge.requests)}`, item.edge.retries ? 'warn' : '']);
    rows.push(['p50', fmt.ms(x.p50_ms)], ['p95', fmt.ms(x.p95_ms)], ['p99', fmt.ms(x.p99_ms)]);
    return h('div', { class: 'panel-numbers' },
      item.edge?.storm ? h('p', { class: 'banner banner-bad', role: 'note' }, `Retry storm: ${fmt.count(item.edge.retries)} of ${fmt.count(item.edge.requests)} calls are retries.`) : null,
      stats(rows),
      healthBar(x.requests, x.errors, x.faults, x.throttles));
  }

  function refreshPanelNumbers(): void {
    const item = currentItem();
    if (!numbers || !side.isOpen() || (!item.node && !item.edge)) return;
    const next = numbersFor(item);
    numbers.replaceWith(next);
    numbers = next;
  }

  function openPanel(): void {
    const item = currentItem();
    if (!item.node && !item.edge) return;
    panelAbort?.abort();
    panelAbort = new AbortController();
    const signal = panelAbort.signal;
    ctx.signal.addEventListener('abort', () => panelAbort?.abort());

    numbers = numbersFor(item);
    const dist = h('div', { class: 'panel-async' }, note('Loading distribution…'));
    const ops = h('div', { class: 'panel-async' }, note('Loading…'));
    const finds = h('div', { class: 'panel-async' }, note('Loading…'));
    const range = { lookback };
    let title: string;
    let subtitle: string;
    let tracesService: string | undefined;
    let detailParams: Record<string, string>;
    let matches: (g: FindingGroup) => boolean;
    if (item.node) {
      const n = item.node;
      const kind = nodeKind(n);
      title = n.name;
      subtitle = `${KIND_STYLE[kind].label}${n.system ? ` · ${n.system}` : ''}`;
      detailParams = { node: n.id, ...range };
      if (n.type === 'service') {
        tracesService = n.id;
        matches = (g) => g.service === n.id || targets(g).includes(n.id);
      } else {
        const callers = (map?.edges ?? []).filter((e) => e.target === n.id && e.source !== 'user').sort((a, b) => b.requests - a.requests);
        tracesService = callers[0]?.source;
        matches = (g) => targets(g).includes(n.id);
      }
    } else {
      const e = item.edge!;
      title = `${e.source} → ${e.target}`;
      subtitle = `${e.type} calls`;
      detailParams = { source: e.source, target: e.target, ...range };
      tracesService = e.source === 'user' ? e.target : e.source;
      matches = (g) => g.service === e.source && targets(g).includes(e.target);
    }
    const links = h('div', { class: 'panel-links' },
      tracesService ? h('a', { class: 'button', href: url('/traces', { service: tracesService, sort: 'duration', lookback }), 'data-testid': 'slowest-traces' }, 'Slowest traces →') : null,
      tracesService ? h('a', { class: 'button', href: url('/traces', { service: tracesService, error: 'true', lookback }) }, 'Error traces →') : null,
      item.node?.type === 'service' && focus !== item.node.id
        ? h('button', { type: 'button', class: 'button', onclick: () => { search.value = item.node!.id; setFocus(item.node!.id); } }, 'Focus here')
        : null,
    );
    side.open(title, subtitle, numbers, links,
      section('Latency distribution', dist),
      section('Top operations', ops),
      section('Findings', finds));

    api.mapDetail(detailParams, signal).then(
      (d) => {
        const total = (d.latency ?? []).reduce((s, b) => s + b.count, 0);
        const x = item.node ?? item.edge!;
        replace(dist, total ? histogram(d.latency, [['p50', x.p50_ms], ['p95', x.p95_ms], ['p99', x.p99_ms]]) : note('No distribution for this range.'));
        const list = (d.operations ?? []).slice(0, 8);
        replace(ops, list.length
          ? h('table', { class: 'table compact' },
              h('thead', null, h('tr', null, h('th', null, 'Operation'), h('th', { class: 'num' }, 'Calls'), h('th', { class: 'num' }, 'Err'), h('th', { class: 'num' }, 'p95'))),
              h('tbody', null, list.map((o) => h('tr', null,
                h('td', { class: 'mono ellipsis', title: o.name }, o.name),
                h('td', { class: 'num' }, fmt.count(o.requests)),
                h('td', { class: 'num' }, fmt.percent(o.errors + o.faults, o.requests)),
                h('td', { class: 'num' }, fmt.ms(o.p95_ms))))))
          : note('No operations recorded.'),
          d.sampled_traces ? h('p', { class: 'muted small' }, `counted over the ${fmt.count(d.sampled_traces)} newest traces`) : null);
      },
      (err) => {
        if (signal.aborted) return;
        replace(dist, note(err?.status === 404 ? 'No distribution for this range.' : `No distribution: ${err.message}`));
        replace(ops, note('No operations available.'));
      },
    );

    api.findingGroups(range, signal).then(
      (groups) => {
        const mine = groups.filter(matches).slice(0, 8);
        replace(finds, mine.length
          ? h('ul', { class: 'finding-mini' }, mine.map((g) => h('li', null,
              h('span', { class: `kind-badge kind-${g.kind}` }, fmt.kindLabel(g.kind)), ' ',
              h('a', { href: url('/findings', { kind: g.kind, service: g.service, lookback }) }, `${g.service} → ${g.target}`),
              g.statement ? h('div', { class: 'mono small ellipsis', title: g.statement }, g.statement) : null,
              h('div', { class: 'muted small' }, `${fmt.count(g.occurrences)} times in ${fmt.count(g.traces)} traces · p95 ${fmt.ms(g.p95_ms)}`))))
          : note('No findings here.'));
      },
      (err) => {
        if (!signal.aborted) replace(finds, note(`Could not load findings: ${err.message}`, 'error'));
      },
    );
  }

  syncUrl();
  void load();
  schedule();

  return () => {
    window.clearInterval(timer);
    window.clearInterval(dashTimer);
    inflight?.abort();
    cy.destroy();
    if (window.__tracemap?.cy === cy) window.__tracemap = { map };
  };
}

/** A group's target may list several (`orders, payment-service`). */
function targets(g: FindingGroup): string[] {
  return g.target.split(',').map((s) => s.trim());
}
