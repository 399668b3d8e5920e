// One trace: header, its findings, and a waterfall with collapsible subtrees,
// service colours, findings marked on their spans and the critical path. The
// repeated calls of an N+1 finding fold into one group row until opened.
import { api, url, type Finding, type Span, type TraceDetail } from '../api';
import { h, note, replace, messageText, type Child } from '../dom';
import * as fmt from '../format';
import type { PageContext } from '../router';
import { panel, onEscape, stats, section } from '../parts/panel';

interface Node {
  span: Span;
  children: Node[];
  depth: number;
}

/** The calls of one N+1 finding under one parent, drawn as one row while folded. */
interface CallGroup {
  key: string;
  finding: Finding;
  /** The parent's span id, or '' when the calls are roots. */
  parentId: string;
  members: Node[];
  /** The count to show: the finding's own when this group holds all its spans. */
  count: number;
}

/** A waterfall row: one span, or one group of N+1 calls. */
type Item = { node: Node; depth: number } | { group: CallGroup; depth: number };

interface Badge {
  kind: string;
  text: string;
  title: string;
  lead: boolean;
}

export function tracePage(root: HTMLElement, ctx: PageContext, match: string[]): void {
  const id = match[0] ?? '';
  const page = h('section', { class: 'page page-trace', 'data-testid': 'page-trace', 'data-trace-id': id }, note('Loading trace…'));
  root.append(page);
  api.trace(id, ctx.signal).then(
    (t) => render(page, t, ctx),
    (err) => {
      if (ctx.signal.aborted) return;
      replace(page, h('div', { class: 'page-head' }, h('h1', null, 'Trace'), h('p', { class: 'mono' }, id)),
        note(err?.status === 404 ? `Trace ${id} was not found. It may have expired, or not arrived yet.` : `Could not load the trace: ${err.message}`, 'error'),
        h('p', null, h('a', { href: '/traces' }, '← Search traces')));
    },
  );
}

function buildTree(spans: Span[]): Node[] {
  const byId = new Map<string, Node>();
  for (const s of spans) byId.set(s.span_id, { span: s, children: [], depth: 0 });
  const roots: Node[] = [];
  for (const n of byId.values()) {
    const parent = n.span.parent_span_id ? byId.get(n.span.parent_span_id) : undefined;
    if (parent && parent !== n) parent.children.push(n);
    else roots.push(n);
  }
  const order = (a: Node, b: Node) => a.span.start_us - b.span.start_us || a.span.name.localeCompare(b.span.name);
  const walk = (n: Node, depth: number, seen: Set<Node>) => {
    n.depth = depth;
    n.children.sort(order);
    for (const c of n.children) if (!seen.has(c)) { seen.add(c); walk(c, depth + 1, seen); }
  };
  roots.sort(order);
  const seen = new Set<Node>(roots);
  for (const r of roots) walk(r, 0, seen);
  return roots;
}

/** N+1 findings as groups of at least two sibling spans; a span joins one group at most. */
function callGroups(findings: Finding[], nodes: Map<string, Node>, spans: Map<string, Span>): Map<string, CallGroup> {
  const bySpan = new Map<string, CallGroup>();
  for (const f of findings) {
    if (f.kind !== 'n_plus_one') continue;
    const present = f.span_ids.filter((sid) => nodes.has(sid) && !bySpan.has(sid));
    const byParent = new Map<string, Node[]>();
    for (const sid of present) {
      const parent = spans.get(sid)!.parent_span_id;
      const key = parent && parent !== sid && spans.has(parent) ? parent : '';
      byParent.set(key, [...(byParent.get(key) ?? []), nodes.get(sid)!]);
    }
    for (const [parentId, members] of byParent) {
      if (members.length < 2) continue;
      members.sort((a, b) => a.span.start_us - b.span.start_us);
      const whole = members.length === f.span_ids.length;
      const group: CallGroup = { key: `${f.id}/${parentId}`, finding: f, parentId, members, count: whole ? f.count || members.length : members.length };
      for (const m of members) bySpan.set(m.span.span_id, group);
    }
  }
  return bySpan;
}

function badgesFor(findings: Finding[], spans: Map<string, Span>): Map<string, Badge[]> {
  const out = new Map<string, Badge[]>();
  const add = (spanId: string, b: Badge) => out.set(spanId, [...(out.get(spanId) ?? []), b]);
  for (const f of findings) {
    const ids = f.span_ids.filter((s) => spans.has(s)).sort((a, b) => spans.get(a)!.start_us - spans.get(b)!.start_us);
    const title = f.message || `${f.kind} ${f.service} → ${f.target}`;
    ids.forEach((sid, i) => {
      const lead = i === 0;
      let text: string;
      switch (f.kind) {
        case 'n_plus_one':
          text = lead ? `N+1 ×${f.count || ids.length}` : 'N+1';
          break;
        case 'retry_storm':
          text = lead ? `retries ×${f.count || ids.length}` : `retry ${i}/${ids.length - 1}`;
          break;
        case 'slow_db':
        case 'slow_call':
          text = `slow ${fmt.us(spans.get(sid)!.duration_us)}`;
          break;
        default:
          text = lead && ids.length > 1 ? `${fmt.kindLabel(f.kind)} ×${ids.length}` : fmt.kindLabel(f.kind);
      }
      add(sid, { kind: f.kind, text, title, lead });
    });
  }
  return out;
}

function render(page: HTMLElement, t: TraceDetail, ctx: PageContext): void {
  const s = t.summary;
  const spans = new Map(t.spans.map((x) => [x.span_id, x]));
  const roots = buildTree(t.spans);
  const start = Math.min(...t.spans.map((x) => x.start_us));
  const end = Math.max(...t.spans.map((x) => x.start_us + x.duration_us));
  const total = Math.max(1, end - start);
  const critical = new Map((t.critical_path ?? []).map((c) => [c.span_id, c.self_ms]));
  const badges = badgesFor(t.findings ?? [], spans);
  const findingsBySpan = new Map<string, Finding[]>();
  for (const f of t.findings ?? []) for (const sid of f.span_ids) findingsBySpan.set(sid, [...(findingsBySpan.get(sid) ?? []), f]);
  const nodes = new Map<string, Node>();
  const collect = (n: Node) => { nodes.set(n.span.span_id, n); n.children.forEach(collect); };
  roots.forEach(collect);
  const groupOf = callGroups(t.findings ?? [], nodes, spans);
  const groups = [...new Set(groupOf.values())];
  const collapsed = new Set<string>();
  /** Keys of the N+1 groups shown call by call; all start folded. */
  const opened = new Set<string>();
  let showCritical = true;
  let selectedId: string | undefined;
  let filter = '';

  const side = panel(() => {
    selectedId = undefined;
    rows.querySelectorAll('.span-row.selected').forEach((r) => r.classList.remove('selected'));
  });
  side.el.classList.add('span-panel');
  side.el.setAttribute('data-testid', 'side-panel');
  onEscape(ctx.signal, () => side.close());

  // Header.
  const head = h('div', { class: 'trace-head' },
    h('h1', null,
      h('span', { class: 'svc-dot big', style: { background: fmt.serviceColor(s.root_service) }, 'aria-hidden': 'true' }),
      h('span', null, s.root_service || '(no root)'), h('span', { class: 'muted' }, ': '), h('span', { 'data-testid': 'trace-root-op' }, s.root_operation || '(root span missing)')),
    h('dl', { class: 'trace-meta' },
      meta('Trace id', h('span', { class: 'mono', 'data-testid': 'trace-id' }, s.trace_id)),
      meta('Started', fmt.time(s.start_us)),
      meta('Duration', fmt.ms(s.duration_ms)),
      meta('Spans', String(s.span_count)),
      meta('Services', String(s.services.length)),
      meta('Errors', s.error_count ? h('span', { class: 'bad' }, String(s.error_count)) : '0'),
      meta('Status', s.complete ? 'complete' : h('span', { class: 'pill' }, 'in progress')),
      s.correlation_ids.length
        ? meta('Correlation', s.correlation_ids.map((c) => h('a', { class: 'mono corr-link', href: url('/traces', { correlation_id: c, lookback: '7d' }) }, c)))
        : null),
  );

  const findingList = (t.findings ?? []).length
    ? h('section', { class: 'trace-findings', 'data-testid': 'trace-findings' },
        h('h2', null, `Findings (${t.findings.length})`),
        h('ul', null, t.findings.map((f) => h('li', { 'data-testid': 'trace-finding', 'data-kind': f.kind },
          h('span', { class: `kind-badge kind-${f.kind}` }, fmt.kindLabel(f.kind)),
          h('span', { class: `sev sev-${f.severity}` }, f.severity),
          h('span', { class: 'finding-message' }, ...messageText(f.message || `${f.service} → ${f.target}`)),
          h('button', { type: 'button', class: 'link-button', onclick: () => revealSpans(f.span_ids) }, `show ${f.span_ids.length === 1 ? 'span' : `${f.span_ids.length} spans`}`)))))
    : null;

  // Toolbar.
  const find = h('input', { type: 'search', placeholder: 'Find in spans…  ( / )', 'aria-label': 'Find in spans', 'data-search': true, autocomplete: 'off', spellcheck: 'false' });
  const critButton = h('button', { type: 'button', class: 'button toggle', 'aria-pressed': 'true', 'data-testid': 'critical-toggle', title: 'The chain of spans that set the trace duration' }, 'Critical path');
  const matchCount = h('span', { class: 'muted small', role: 'status' });
  const toolbar = h('div', { class: 'toolbar waterfall-toolbar' },
    find, matchCount,
    h('button', { type: 'button', class: 'button', onclick: () => { collapsed.clear(); groups.forEach((g) => opened.add(g.key)); draw(); } }, 'Expand all'),
    h('button', { type: 'button', class: 'button', onclick: () => { walkAll((n) => { if (n.children.length && n.depth >= 1) collapsed.add(n.span.span_id); }); opened.clear(); draw(); } }, 'Collapse all'),
    critButton,
    h('span', { class: 'legend-item small' }, h('span', { class: 'crit-swatch' }), 'critical path'));

  // Ruler.
  const ticks = [0, 0.25, 0.5, 0.75, 1];
  const ruler = h('div', { class: 'wf-ruler', 'aria-hidden': 'true' },
    h('div', { class: 'wf-left' }, 'Service · operation'),
    h('div', { class: 'wf-right' }, ticks.map((f) => h('span', { class: 'tick', style: { left: `${f * 100}%` } }, fmt.us(f * total)))));
  const rows = h('div', { class: 'wf-rows', role: 'tree', 'aria-label': 'Spans', 'data-testid': 'waterfall' });

  const waterfall = h('div', { class: 'waterfall' }, ruler, rows);
  replace(page, head, findingList, toolbar, h('div', { class: 'trace-body' }, waterfall, side.el));

  critButton.addEventListener('click', () => {
    showCritical = !showCritical;
    critButton.setAttribute('aria-pressed', String(showCritical));
    waterfall.classList.toggle('hide-critical', !showCritical);
  });
  find.addEventListener('input', () => {
    filter = find.value.trim().toLowerCase();
    if (filter) {
      // Open every subtree that holds a match so it can be seen.
      walkAll((n) => {
        if (matches(n.span)) reveal(n.span.span_id);
      });
    }
    draw();
  });

  function parentOf(x: Span): Span | undefined {
    return x.parent_span_id ? spans.get(x.parent_span_id) : undefined;
  }
  function walkAll(fn: (n: Node) => void): void {
    const go = (n: Node) => { fn(n); n.children.forEach(go); };
    roots.forEach(go);
  }
  function matches(x: Span): boolean {
    if (!filter) return false;
    if (x.name.toLowerCase().includes(filter) || x.service.toLowerCase().includes(filter) || x.span_id.startsWith(filter)) return true;
    return Object.entries(x.attributes ?? {}).some(([k, v]) => k.toLowerCase().includes(filter) || fmt.value(v).toLowerCase().includes(filter));
  }

  /** Opens every subtree and N+1 group above a span so it has a row. */
  function reveal(spanId: string): void {
    for (let x = spans.get(spanId); x; x = parentOf(x)) {
      const g = groupOf.get(x.span_id);
      if (g) opened.add(g.key);
      if (x.span_id !== spanId) collapsed.delete(x.span_id);
    }
  }

  function revealSpans(ids: string[]): void {
    ids.forEach(reveal);
    draw();
    rows.querySelectorAll('.span-row.flash').forEach((r) => r.classList.remove('flash'));
    for (const sid of ids) rows.querySelector(`[data-span-id="${CSS.escape(sid)}"]`)?.classList.add('flash');
    const first = rows.querySelector<HTMLElement>(`[data-span-id="${CSS.escape(ids[0] ?? '')}"]`);
    first?.scrollIntoView({ block: 'center', behavior: 'smooth' });
    first?.querySelector<HTMLButtonElement>('.span-label')?.focus({ preventScroll: true });
  }

  function row(n: Node, depth: number): HTMLElement {
    const x = n.span;
    const left = ((x.start_us - start) / total) * 100;
    const width = Math.max(0.15, (x.duration_us / total) * 100);
    const color = fmt.serviceColor(x.service);
    const isCollapsed = collapsed.has(x.span_id);
    const spanBadges = badges.get(x.span_id) ?? [];
    const error = x.status === 'error';
    const crit = critical.get(x.span_id);
    const toggle = n.children.length
      ? h('button', { type: 'button', class: 'wf-toggle', 'aria-label': `${isCollapsed ? 'Expand' : 'Collapse'} ${n.children.length} child spans`, 'aria-expanded': String(!isCollapsed), onclick: () => { if (isCollapsed) collapsed.delete(x.span_id); else collapsed.add(x.span_id); draw(spanSelector(x.span_id)); } }, isCollapsed ? '▸' : '▾')
      : h('span', { class: 'wf-toggle-space' });
    const classes = ['span-row'];
    if (error) classes.push('error');
    if (crit !== undefined) classes.push('critical');
    if (spanBadges.some((b) => b.kind === 'n_plus_one')) classes.push('in-n1');
    if (spanBadges.some((b) => b.kind === 'retry_storm')) classes.push('in-retry');
    if (spanBadges.some((b) => b.kind === 'slow_db' || b.kind === 'slow_call')) classes.push('in-slow');
    if (spanBadges.length) classes.push('has-finding');
    if (selectedId === x.span_id) classes.push('selected');
    if (filter && matches(x)) classes.push('match');
    const label = h('button', { type: 'button', class: 'span-label', 'data-testid': 'span-label', title: `${x.service}: ${x.name}` },
      h('span', { class: 'span-svc' }, x.service), ' ', h('span', { class: 'span-name' }, x.name));
    label.addEventListener('click', () => select(x.span_id));
    label.addEventListener('keydown', (e) => keyNav(e,
      n.children.length && !isCollapsed ? () => { collapsed.add(x.span_id); draw(spanSelector(x.span_id)); } : undefined,
      isCollapsed ? () => { collapsed.delete(x.span_id); draw(spanSelector(x.span_id)); } : undefined));
    return h('div', {
      class: classes.join(' '),
      role: 'treeitem',
      'aria-level': String(depth + 1),
      'aria-expanded': n.children.length ? String(!isCollapsed) : null,
      'data-testid': 'span-row',
      'data-span-id': x.span_id,
      'data-critical': crit !== undefined ? 'true' : null,
      'data-findings': spanBadges.length ? [...new Set(spanBadges.map((b) => b.kind))].join(' ') : null,
    },
      h('div', { class: 'wf-left', style: { paddingLeft: `${6 + depth * 14}px` } },
        h('span', { class: 'svc-stripe', style: { background: color }, 'aria-hidden': 'true' }),
        toggle,
        label,
        isCollapsed ? h('span', { class: 'pill small' }, `+${countDescendants(n)}`) : null,
        error ? h('span', { class: 'err-icon', title: x.status_message || 'error', 'aria-label': 'error' }, '!') : null,
        spanBadges.map((b) => h('span', { class: `finding-badge kind-${b.kind}${b.lead ? ' lead' : ''}`, 'data-testid': 'finding-badge', 'data-kind': b.kind, title: b.title }, b.text))),
      h('div', { class: 'wf-right', onclick: () => select(x.span_id) },
        h('div', { class: 'wf-bar', style: { left: `${left}%`, width: `${width}%`, background: color }, title: `${fmt.us(x.duration_us)}${crit !== undefined ? ` · ${fmt.ms(crit)} on the critical path` : ''}` }),
        h('span', { class: 'wf-dur', style: left + width > 85 ? { right: `${100 - left + 0.5}%` } : { left: `${left + width + 0.5}%` } }, fmt.us(x.duration_us))));
  }

  function countDescendants(n: Node): number {
    return n.children.reduce((sum, c) => sum + 1 + countDescendants(c), 0);
  }

  /** One row for the calls of an N+1 group: their extent, a tick per call, the count and total time. */
  function groupRow(g: CallGroup, depth: number): HTMLElement {
    const isOpen = opened.has(g.key);
    const first = g.members[0]!.span;
    const from = first.start_us;
    const to = Math.max(...g.members.map((m) => m.span.start_us + m.span.duration_us));
    const extent = Math.max(1, to - from);
    const sum = g.members.reduce((acc, m) => acc + m.span.duration_us, 0);
    const names = new Set(g.members.map((m) => m.span.name));
    const name = names.size === 1 ? first.name : g.finding.operation || first.name;
    const left = ((from - start) / total) * 100;
    const width = Math.max(0.15, (extent / total) * 100);
    const color = fmt.serviceColor(first.service);
    const onCritical = g.members.some((m) => critical.has(m.span.span_id));
    const errors = g.members.filter((m) => m.span.status === 'error').length;
    const summary = `N+1 ×${g.count}, ${fmt.us(sum)} total`;
    const toggle = () => {
      if (isOpen) opened.delete(g.key);
      else opened.add(g.key);
      draw(groupSelector(g));
    };
    const label = h('button', {
      type: 'button',
      class: 'span-label group-label',
      'data-testid': 'n1-group-label',
      'aria-expanded': String(isOpen),
      title: `${first.service}: ${name} (${isOpen ? 'fold' : 'show'} the ${g.members.length} calls)`,
    },
      h('span', { class: 'span-svc' }, first.service), ' ', h('span', { class: 'span-name' }, name),
      h('span', { class: 'sr-only' }, ` — ${summary}`));
    label.addEventListener('click', toggle);
    label.addEventListener('keydown', (e) => keyNav(e, isOpen ? toggle : undefined, isOpen ? undefined : toggle));
    const classes = ['span-row', 'n1-group'];
    if (isOpen) classes.push('open');
    if (onCritical) classes.push('critical');
    if (filter && g.members.some((m) => matches(m.span))) classes.push('match');
    return h('div', {
      class: classes.join(' '),
      role: 'treeitem',
      'aria-level': String(depth + 1),
      'aria-expanded': String(isOpen),
      'data-testid': 'n1-group',
      'data-group': g.key,
      'data-finding-id': g.finding.id,
      'data-count': String(g.count),
      'data-calls': String(g.members.length),
    },
      h('div', { class: 'wf-left', style: { paddingLeft: `${6 + depth * 14}px` } },
        h('span', { class: 'svc-stripe', style: { background: color }, 'aria-hidden': 'true' }),
        h('span', { class: 'wf-toggle group-caret', 'aria-hidden': 'true', onclick: toggle }, isOpen ? '▾' : '▸'),
        label,
        h('span', { class: 'finding-badge kind-n_plus_one lead', 'data-testid': 'group-badge', title: g.finding.message || 'N+1' }, `N+1 ×${g.count}`),
        h('span', { class: 'group-total', 'aria-hidden': 'true' }, `${fmt.us(sum)} total`),
        errors ? h('span', { class: 'err-icon', title: `${errors} of the calls failed`, 'aria-label': `${errors} errors` }, '!') : null),
      h('div', { class: 'wf-right', onclick: toggle },
        h('div', { class: 'wf-group', style: { left: `${left}%`, width: `${width}%`, borderColor: color }, title: `${g.members.length} calls over ${fmt.us(extent)}, ${fmt.us(sum)} in total` },
          g.members.map((m) => h('span', {
            class: `wf-call${critical.has(m.span.span_id) ? ' crit' : ''}${m.span.status === 'error' ? ' error' : ''}`,
            style: { left: `${((m.span.start_us - from) / extent) * 100}%`, width: `${(m.span.duration_us / extent) * 100}%`, background: color },
          }))),
        h('span', { class: 'wf-dur', style: left + width > 85 ? { right: `${100 - left + 0.5}%` } : { left: `${left + width + 0.5}%` } }, `${g.members.length} calls in ${fmt.us(extent)}`)));
  }

  function groupSelector(g: CallGroup): string {
    return `[data-group="${CSS.escape(g.key)}"] .span-label`;
  }

  /** The rows to draw: open subtrees, each N+1 group at its first call, its calls below it when open. */
  function visible(): Item[] {
    const out: Item[] = [];
    const go = (n: Node, depth: number) => {
      out.push({ node: n, depth });
      if (!collapsed.has(n.span.span_id)) children(n.children, n.span.span_id, depth + 1);
    };
    const children = (list: Node[], parentId: string, depth: number) => {
      const shown = new Set<CallGroup>();
      for (const c of list) {
        const g = groupOf.get(c.span.span_id);
        if (!g || g.parentId !== parentId) { go(c, depth); continue; }
        if (shown.has(g)) continue;
        shown.add(g);
        out.push({ group: g, depth });
        if (opened.has(g.key)) g.members.forEach((m) => go(m, depth + 1));
      }
    };
    children(roots, '', 0);
    return out;
  }

  function draw(focusSelector?: string): void {
    const list = visible();
    replace(rows, list.map((it) => ('group' in it ? groupRow(it.group, it.depth) : row(it.node, it.depth))));
    matchCount.textContent = filter ? `${t.spans.filter(matches).length} match` : '';
    if (focusSelector) rows.querySelector<HTMLElement>(focusSelector)?.focus();
  }

  function spanSelector(spanId: string): string {
    return `[data-span-id="${CSS.escape(spanId)}"] .span-label`;
  }

  /** Up/Down move between rows; Left folds and Right opens the row, where it can. */
  function keyNav(e: KeyboardEvent, fold?: () => void, open?: () => void): void {
    const labels = [...rows.querySelectorAll<HTMLButtonElement>('.span-label')];
    const i = labels.indexOf(e.currentTarget as HTMLButtonElement);
    if (e.key === 'ArrowDown') labels[Math.min(labels.length - 1, i + 1)]?.focus();
    else if (e.key === 'ArrowUp') labels[Math.max(0, i - 1)]?.focus();
    else if (e.key === 'ArrowLeft' && fold) fold();
    else if (e.key === 'ArrowRight' && open) open();
    else return;
    e.preventDefault();
  }

  function select(spanId: string): void {
    selectedId = spanId;
    rows.querySelectorAll('.span-row.selected').forEach((r) => r.classList.remove('selected'));
    rows.querySelector(`[data-span-id="${CSS.escape(spanId)}"]`)?.classList.add('selected');
    const x = spans.get(spanId)!;
    const fs = findingsBySpan.get(spanId) ?? [];
    const crit = critical.get(spanId);
    const parent = parentOf(x);
    side.open(
      x.name,
      h('span', null, h('span', { class: 'svc-dot', style: { background: fmt.serviceColor(x.service) } }), x.service, ` · ${x.kind}`),
      h('div', { 'data-testid': 'span-detail', 'data-span-id': x.span_id },
        stats([
          ['Duration', fmt.us(x.duration_us)],
          ['Starts at', `+${fmt.us(x.start_us - start)}`],
          ['Status', x.status + (x.status_message ? `: ${x.status_message}` : ''), x.status === 'error' ? 'bad' : ''],
          ['Kind', x.kind],
          ['Service', x.service],
          ['Critical path', crit !== undefined ? `${fmt.ms(crit)} self time` : 'no'],
          ['Span id', h('span', { class: 'mono' }, x.span_id)],
          ['Parent', parent ? h('button', { type: 'button', class: 'link-button mono', onclick: () => { revealSpans([parent.span_id]); select(parent.span_id); } }, parent.span_id) : h('span', { class: 'mono' }, x.parent_span_id ?? 'none (root)')],
        ]),
        fs.length ? section('Findings', h('ul', { class: 'finding-mini' }, fs.map((f) => h('li', null, h('span', { class: `kind-badge kind-${f.kind}` }, fmt.kindLabel(f.kind)), ' ', ...messageText(f.message))))) : null,
        section('Attributes', kvTable(x.attributes)),
        x.events?.length ? section(`Events (${x.events.length})`, h('ol', { class: 'events' }, x.events.map((ev) => h('li', null,
          h('div', null, h('strong', null, ev.name), h('span', { class: 'muted small' }, ` +${fmt.us(ev.time_us - start)}`)),
          Object.keys(ev.attributes ?? {}).length ? kvTable(ev.attributes) : null)))) : null,
        x.links?.length ? section('Links', h('ul', null, x.links.map((l) => h('li', null, h('a', { class: 'mono', href: `/trace/${encodeURIComponent(l.trace_id)}` }, `${l.trace_id} / ${l.span_id}`))))) : null,
        x.resource && Object.keys(x.resource).length ? section('Resource', kvTable(x.resource)) : null,
      ),
    );
  }

  draw();
}

function meta(label: string, value: Child): HTMLElement {
  return h('div', null, h('dt', null, label), h('dd', null, value));
}

function kvTable(attrs: Record<string, unknown>): HTMLElement {
  const entries = Object.entries(attrs ?? {}).sort(([a], [b]) => a.localeCompare(b));
  if (!entries.length) return h('p', { class: 'muted small' }, 'none');
  return h('table', { class: 'kv' }, h('tbody', null, entries.map(([k, v]) => h('tr', null, h('th', { scope: 'row', class: 'mono' }, k), h('td', { class: 'mono' }, fmt.value(v))))));
}
