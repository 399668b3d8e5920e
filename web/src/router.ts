// Path-based history routing: the server answers index.html for every page
// path, so a deep link such as /traces?service=x opens straight on its page.

export interface PageContext {
  path: string;
  params: URLSearchParams;
  /** Aborted when the page is left: fetches pass it on. */
  signal: AbortSignal;
}

/** Renders into `root`; may return a cleanup run when the page is left. */
export type Page = (root: HTMLElement, ctx: PageContext, match: string[]) => void | (() => void);

interface Route {
  pattern: RegExp;
  page: Page;
}

const routes: Route[] = [];
let onRender: (path: string) => void = () => {};
let current: { cleanup?: (() => void) | void; controller: AbortController } | undefined;
let outlet: HTMLElement;

export function route(pattern: RegExp, page: Page): void {
  routes.push({ pattern, page });
}

/** Goes to `href` (path and query) and renders its page. */
export function navigate(href: string, replace = false): void {
  if (replace) history.replaceState(null, '', href);
  else history.pushState(null, '', href);
  render();
  window.scrollTo(0, 0);
}

/**
 * Changes the query of the current URL without leaving the page (the page
 * already shows the new state): filters stay linkable and reloadable.
 */
export function setQuery(params: URLSearchParams, push = false): void {
  const q = params.toString();
  const href = location.pathname + (q ? `?${q}` : '');
  if (href === location.pathname + location.search) return;
  if (push) history.pushState(null, '', href);
  else history.replaceState(null, '', href);
}

function render(): void {
  if (current) {
    current.controller.abort();
    try {
      current.cleanup?.();
    } catch (e) {
      console.error(e);
    }
  }
  while (outlet.firstChild) outlet.removeChild(outlet.firstChild);
  const path = location.pathname;
  const controller = new AbortController();
  current = { controller };
  const ctx: PageContext = { path, params: new URLSearchParams(location.search), signal: controller.signal };
  for (const r of routes) {
    const m = r.pattern.exec(path);
    if (m) {
      current.cleanup = r.page(outlet, ctx, m.slice(1).map((s) => decodeURIComponent(s)));
      onRender(path);
      return;
    }
  }
  onRender(path);
}

/** Starts routing into `root`; same-origin link clicks stay in the app. */
export function start(root: HTMLElement, rendered: (path: string) => void): void {
  outlet = root;
  onRender = rendered;
  window.addEventListener('popstate', render);
  document.addEventListener('click', (event) => {
    if (event.defaultPrevented || event.button !== 0) return;
    if (event.metaKey || event.ctrlKey || event.shiftKey || event.altKey) return;
    const a = (event.target as Element | null)?.closest?.('a');
    if (!a || (a.target && a.target !== '_self') || a.hasAttribute('download')) return;
    const href = a.getAttribute('href');
    if (!href || href.startsWith('#')) return;
    const to = new URL(a.href, location.href);
    if (to.origin !== location.origin || to.pathname.startsWith('/api/') || to.pathname === '/metrics') return;
    event.preventDefault();
    navigate(to.pathname + to.search);
  });
  render();
}
