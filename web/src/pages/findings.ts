// Findings: the detectors' results grouped across traces (kind, service,
// target, statement), worst first — the list a team works through.
import { api, url, LOOKBACKS, FINDING_KINDS, type Finding, type FindingGroup } from '../api';
import { h, note, options, replace, messageText } from '../dom';
import * as fmt from '../format';
import { navigate, type PageContext } from '../router';

export function findingsPage(root: HTMLElement, ctx: PageContext): void {
  const p = ctx.params;
  const kind = p.get('kind') ?? '';
  const service = p.get('service') ?? '';
  const lookback = p.get('lookback') ?? '1h';

  const kindSelect = h('select', { name: 'kind', 'aria-label': 'Kind', 'data-testid': 'findings-kind' },
    options([['', 'All kinds'], ...FINDING_KINDS.map((k): [string, string] => [k, `${fmt.kindLabel(k)} (${k})`])], kind));
  if (kind && !FINDING_KINDS.includes(kind)) kindSelect.append(...options([[kind, kind]], kind));
  const serviceSelect = h('select', { name: 'service', 'aria-label': 'Service', 'data-testid': 'findings-service' }, options([['', 'All services'], ...(service ? [[service, service] as [string, string]] : [])], service));
  const lookbackSelect = h('select', { name: 'lookback', 'aria-label': 'Time range' }, options(LOOKBACKS.map((l): [string, string] => [l, `Last ${l}`]), lookback));
  const status = h('span', { class: 'status', role: 'status' }, 'Loading…');
  const list = h('div', { class: 'findings-list' });

  const apply = () => navigate(url('/findings', { kind: kindSelect.value, service: serviceSelect.value, lookback: lookbackSelect.value === '1h' ? '' : lookbackSelect.value }), true);
  for (const s of [kindSelect, serviceSelect, lookbackSelect]) s.addEventListener('change', apply);

  root.append(
    h('section', { class: 'page page-findings', 'data-testid': 'page-findings' },
      h('div', { class: 'page-head' },
        h('h1', null, 'Findings'),
        h('p', { class: 'muted' }, 'Patterns found in traces, grouped across traces: the group that cost the most total time first.')),
      h('form', { class: 'toolbar filters', onsubmit: (e: Event) => { e.preventDefault(); apply(); } },
        h('label', null, 'Kind ', kindSelect),
        h('label', null, 'Service ', serviceSelect),
        h('label', null, 'Range ', lookbackSelect),
        status),
      list),
  );

  api.services(ctx.signal).then((services) => {
    replace(serviceSelect, options([['', 'All services'], ...services.map((s): [string, string] => [s, s])], service));
    if (service && !services.includes(service)) serviceSelect.append(...options([[service, service]], service));
  }, () => {});

  api.findingGroups({ kind, service, lookback }, ctx.signal).then(
    (groups) => {
      status.textContent = `${groups.length} group${groups.length === 1 ? '' : 's'}`;
      if (!groups.length) {
        replace(list, note(kind || service ? 'No findings match these filters in this range.' : 'No findings in this range. Good news, or no traffic yet.'));
        return;
      }
      const messages = new Map<FindingGroup, HTMLElement>();
      replace(list, h('table', { class: 'table findings-table', 'data-testid': 'findings-table' },
        h('thead', null, h('tr', null,
          h('th', { scope: 'col' }, 'Kind'),
          h('th', { scope: 'col' }, 'Where and what'),
          h('th', { scope: 'col', class: 'num' }, 'Occurrences'),
          h('th', { scope: 'col', class: 'num' }, 'Traces'),
          h('th', { scope: 'col', class: 'num' }, 'p95'),
          h('th', { scope: 'col' }, 'Last seen'),
          h('th', { scope: 'col' }, 'Examples'))),
        h('tbody', null, groups.map((g, i) => {
          const message = h('p', { class: 'finding-message', 'data-testid': 'finding-message' }, ...messageText(composeMessage(g)));
          messages.set(g, message);
          return h('tr', { 'data-testid': 'finding-row', 'data-kind': g.kind, 'data-service': g.service, 'data-rank': String(i + 1) },
            h('td', null, h('span', { class: `kind-badge kind-${g.kind}`, title: g.kind }, fmt.kindLabel(g.kind))),
            h('td', { class: 'finding-what' },
              h('div', { class: 'finding-where' },
                h('a', { href: url('/map', { service: g.service, depth: '1', lookback: lookback === '1h' ? '' : lookback }), title: 'Show on the map' }, g.service),
                h('span', { class: 'arrow', 'aria-hidden': 'true' }, ' → '),
                h('span', { class: 'sr-only' }, ' calls '),
                h('span', null, g.target || '–')),
              g.statement ? h('code', { class: 'statement', 'data-testid': 'finding-statement' }, g.statement) : null,
              message),
            h('td', { class: 'num' }, fmt.count(g.occurrences)),
            h('td', { class: 'num' }, fmt.count(g.traces)),
            h('td', { class: 'num' }, fmt.ms(g.p95_ms)),
            h('td', { title: fmt.time(g.last_seen_us) }, fmt.ago(g.last_seen_us)),
            h('td', { class: 'examples' },
              g.example_trace_ids.slice(0, 3).map((id, k) => h('a', { href: `/trace/${encodeURIComponent(id)}`, class: 'example-link', 'data-testid': 'example-trace', title: id }, `trace ${k + 1}`)),
              h('a', { class: 'example-link more', href: url('/traces', { service: g.service, finding: g.kind, sort: 'duration', lookback: lookback === '1h' ? '' : lookback }) }, 'all →')));
        }))));
      void fillMessages(groups.slice(0, 40), messages, lookback, ctx.signal);
    },
    (err) => {
      if (ctx.signal.aborted) return;
      status.textContent = '';
      replace(list, note(`Could not load findings: ${err.message}`, 'error'));
    },
  );
}

/** The detectors' own sentence for a group, from one of its findings. */
async function fillMessages(groups: FindingGroup[], out: Map<FindingGroup, HTMLElement>, lookback: string, signal: AbortSignal): Promise<void> {
  const pairs = new Map<string, FindingGroup[]>();
  for (const g of groups) {
    const key = `${g.kind}\u0000${g.service}`;
    pairs.set(key, [...(pairs.get(key) ?? []), g]);
  }
  const jobs = [...pairs.values()];
  const worker = async () => {
    for (let job = jobs.shift(); job; job = jobs.shift()) {
      const first = job[0]!;
      let found: Finding[];
      try {
        found = await api.findings({ kind: first.kind, service: first.service, lookback, limit: '50' }, signal);
      } catch {
        if (signal.aborted) return;
        continue;
      }
      for (const g of job) {
        const f = found.find((x) => x.target === g.target && (x.statement ?? null) === (g.statement ?? null)) ?? (job.length === 1 ? found[0] : undefined);
        const el = out.get(g);
        if (f?.message && el) replace(el, ...messageText(f.message));
      }
    }
  };
  await Promise.all([worker(), worker(), worker()]);
}

function composeMessage(g: FindingGroup): string {
  const what = g.statement ? `\`${g.statement}\`` : g.target;
  switch (g.kind) {
    case 'n_plus_one':
      return `${g.service} runs ${what} once per item against ${g.target}, in ${g.traces} traces; batch it.`;
    case 'slow_db':
      return `${g.service} waits ${fmt.ms(g.p95_ms)} (p95) on ${what} (${g.target}); check its plan and indexes.`;
    case 'retry_storm':
      return `${g.service} retries its calls to ${g.target} again and again (${g.occurrences} times in ${g.traces} traces).`;
    case 'slow_call':
      return `${g.service} waits ${fmt.ms(g.p95_ms)} (p95) on ${g.target}.`;
    default:
      return `${fmt.kindLabel(g.kind)}: ${g.service} → ${g.target}.`;
  }
}
