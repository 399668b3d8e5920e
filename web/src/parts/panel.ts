// The side panel shared by the map (a node or an edge) and the trace page (a
// span): a titled <aside> with a close button; Esc closes it too.
import { h, replace, type Child } from '../dom';

export interface Panel {
  el: HTMLElement;
  open(title: Child, subtitle: Child, ...body: Child[]): void;
  close(): void;
  isOpen(): boolean;
  body: HTMLElement;
}

export function panel(onClose: () => void, testid = 'side-panel'): Panel {
  const title = h('h2', { class: 'panel-title' });
  const subtitle = h('div', { class: 'panel-subtitle' });
  const body = h('div', { class: 'panel-body' });
  const closeButton = h('button', { type: 'button', class: 'icon-button panel-close', 'aria-label': 'Close panel', title: 'Close (Esc)' }, '×');
  const el = h(
    'aside',
    { class: 'side-panel', 'data-testid': testid, hidden: true, 'aria-labelledby': 'panel-title', tabindex: '-1' },
    h('div', { class: 'panel-head' }, h('div', { class: 'panel-heading' }, title, subtitle), closeButton),
    body,
  );
  title.id = 'panel-title';
  const p: Panel = {
    el,
    body,
    open(t, s, ...children) {
      replace(title, t);
      replace(subtitle, s);
      replace(body, ...children);
      el.hidden = false;
      body.scrollTop = 0;
    },
    close() {
      if (el.hidden) return;
      el.hidden = true;
      onClose();
    },
    isOpen: () => !el.hidden,
  };
  closeButton.addEventListener('click', () => p.close());
  return p;
}

/** Listens for Esc (main.ts sends `tracemap:close`) until the page is left. */
export function onEscape(signal: AbortSignal, fn: () => void): void {
  document.addEventListener('tracemap:close', fn, { signal });
}

/** A two-column list of labelled numbers. */
export function stats(rows: Array<[string, Child, string?]>): HTMLElement {
  return h(
    'dl',
    { class: 'stats' },
    rows.map(([label, value, cls]) => h('div', { class: `stat ${cls ?? ''}` }, h('dt', null, label), h('dd', null, value))),
  );
}

export const HEALTH = {
  ok: '#2f9e44',
  error: '#f08c00',
  fault: '#e03131',
  throttle: '#8b5cf6',
  none: '#ced4da',
};

/** A horizontal bar split like the map's health ring, with a legend. */
export function healthBar(requests: number, errors: number, faults: number, throttles: number): HTMLElement {
  const ok = Math.max(0, requests - errors - faults - throttles);
  const parts: Array<[string, number, string]> = [
    ['ok', ok, HEALTH.ok],
    ['4xx errors', errors, HEALTH.error],
    ['5xx faults', faults, HEALTH.fault],
    ['429 throttles', throttles, HEALTH.throttle],
  ];
  const total = requests || 1;
  return h(
    'div',
    { class: 'health' },
    h(
      'div',
      { class: 'health-bar', role: 'img', 'aria-label': parts.map(([l, n]) => `${l} ${n}`).join(', ') },
      requests === 0
        ? h('span', { style: { width: '100%', background: HEALTH.none } })
        : parts.filter(([, n]) => n > 0).map(([l, n, c]) => h('span', { title: `${l}: ${n}`, style: { width: `${(100 * n) / total}%`, background: c } })),
    ),
    h(
      'ul',
      { class: 'health-legend' },
      parts.map(([l, n, c]) =>
        h('li', null, h('span', { class: 'swatch', style: { background: c } }), `${l} `, h('strong', null, `${((100 * n) / total).toFixed(n && n / total < 0.001 ? 2 : 1)}%`)),
      ),
    ),
  );
}

export function section(title: string, ...children: Child[]): HTMLElement {
  return h('section', { class: 'panel-section' }, h('h3', null, title), children);
}
