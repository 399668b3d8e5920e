// The tracemap web UI: the shell (header, navigation) and the routes.
import './style.css';
import { h } from './dom';
import { route, start, navigate } from './router';
import { mapPage } from './pages/map';
import { findingsPage } from './pages/findings';
import { tracesPage } from './pages/traces';
import { tracePage } from './pages/trace';

const nav: Array<[string, string, RegExp]> = [
  ['/map', 'Service map', /^\/(map)?$/],
  ['/findings', 'Findings', /^\/findings$/],
  ['/traces', 'Traces', /^\/traces?(\/|$)/],
];

const links = nav.map(([href, label]) => h('a', { href, class: 'nav-link' }, label));

const traceInput = h('input', {
  type: 'search',
  name: 'trace_id',
  placeholder: 'Go to trace id…',
  'aria-label': 'Trace id',
  class: 'trace-go',
  autocomplete: 'off',
  spellcheck: 'false',
});

const header = h(
  'header',
  { class: 'topbar' },
  h('a', { href: '/map', class: 'brand', 'aria-label': 'tracemap home' }, h('span', { class: 'brand-mark', 'aria-hidden': 'true' }), 'tracemap'),
  h('nav', { 'aria-label': 'Pages' }, links),
  h(
    'form',
    {
      class: 'trace-go-form',
      role: 'search',
      onsubmit: (e: Event) => {
        e.preventDefault();
        const id = traceInput.value.trim();
        if (id) navigate(`/trace/${encodeURIComponent(id)}`);
      },
    },
    traceInput,
  ),
);

const main = h('main', { id: 'main', tabindex: '-1' });
const app = document.getElementById('app')!;
app.append(header, main);

route(/^\/(?:map)?$/, mapPage);
route(/^\/findings$/, findingsPage);
route(/^\/traces$/, tracesPage);
route(/^\/trace\/([^/]+)$/, tracePage);
route(/.*/, (root) => {
  root.append(
    h('section', { class: 'page', 'data-testid': 'page-not-found' },
      h('h1', null, 'Page not found'),
      h('p', null, 'Try the ', h('a', { href: '/map' }, 'service map'), '.')),
  );
});

start(main, (path) => {
  nav.forEach(([, label, re], i) => {
    const a = links[i]!;
    if (re.test(path)) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
    void label;
  });
  const page = nav.find(([, , re]) => re.test(path));
  document.title = page ? `${page[1]} · tracemap` : 'tracemap';
});

// Keyboard: "/" focuses the page's search box, Esc closes the open panel.
document.addEventListener('keydown', (e) => {
  const t = e.target as HTMLElement;
  const typing = t.isContentEditable || ['INPUT', 'TEXTAREA', 'SELECT'].includes(t.tagName);
  if (e.key === '/' && !typing && !e.metaKey && !e.ctrlKey && !e.altKey) {
    const box = document.querySelector<HTMLInputElement>('[data-search]') ?? traceInput;
    e.preventDefault();
    box.focus();
    box.select();
  } else if (e.key === 'Escape') {
    document.dispatchEvent(new CustomEvent('tracemap:close'));
    if (typing) t.blur();
  }
});
