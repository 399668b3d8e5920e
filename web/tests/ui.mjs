// Browser checks of the tracemap UI against a server running the bookstore
// demo: what a person would look at first.
// Usage: node web/tests/ui.mjs <base-url> <screenshot-dir>
import { run, check, eventually } from './browser.mjs';

const SERVICES = ['api-gateway', 'auth-service', 'user-service', 'product-catalog', 'order-service', 'search-service', 'payment-service', 'notification-service'];
const DATABASES = ['postgresql', 'redis', 'dynamodb', 'elasticsearch'];

const [base, shots] = process.argv.slice(2);

await run('ui.mjs', base, shots, async ({ page, base, shot, step, api }) => {
  await step('the map shows the bookstore services, their databases, Stripe and a retry storm', async () => {
    await page.goto(`${base}/map?lookback=1h`);
    await page.waitForSelector('[data-testid="page-map"]');
    // The demo may still be warming up: the page refreshes itself every 10 s.
    const map = await eventually('the map to show every bookstore service and a storm edge', () =>
      page.evaluate((services) => {
        const m = window.__tracemap?.map;
        const cy = window.__tracemap?.cy;
        if (!m || !cy) return null;
        const ids = new Set(cy.nodes().map((n) => n.id()));
        if (!services.every((s) => ids.has(s))) return null;
        if (cy.edges('.storm').length === 0) return null;
        return m;
      }, SERVICES), 90_000, 2_000);
    const nodeIds = map.nodes.map((n) => n.id);
    for (const s of SERVICES) check(map.nodes.some((n) => n.id === s && n.type === 'service'), `service node ${s} is missing from the map (nodes: ${nodeIds.join(', ')})`);
    for (const db of DATABASES) check(map.nodes.some((n) => n.type === 'database' && n.system === db), `no database node with system ${db} on the map (nodes: ${nodeIds.join(', ')})`);
    const stripe = map.nodes.find((n) => /stripe/i.test(n.id) || /stripe/i.test(n.name));
    check(stripe, `no Stripe node on the map (nodes: ${nodeIds.join(', ')})`);
    check(stripe.type === 'external', `the Stripe node has type ${stripe.type}, expected external`);
    const storm = map.edges.find((e) => e.storm && e.source === 'payment-service' && e.target === stripe.id);
    check(storm, `the payment-service → ${stripe.id} edge is not a retry storm (storm edges: ${map.edges.filter((e) => e.storm).map((e) => `${e.source}→${e.target}`).join(', ') || 'none'})`);
    const drawn = await page.evaluate((id) => {
      const e = window.__tracemap.cy.getElementById(id);
      return { storm: e.hasClass('storm'), style: e.style('line-style'), width: parseFloat(e.style('width')), label: e.style('label') };
    }, `payment-service\u2192${stripe.id}`);
    check(drawn.storm && drawn.style === 'dashed' && drawn.width >= 4, `the storm edge is not drawn as a thick dashed line: ${JSON.stringify(drawn)}`);
    check(/storm/i.test(drawn.label) && /p95/.test(drawn.label) && /err/.test(drawn.label), `the storm edge label lacks storm/p95/error share: ${drawn.label}`);
    const redis = await page.evaluate(() => window.__tracemap.cy.nodes().filter((n) => n.hasClass('cache')).length);
    check(redis >= 1, 'no node is drawn as a cache (the redis database)');

    // Click order-service: the side panel shows its numbers.
    const pos = await page.evaluate(() => {
      const cy = window.__tracemap.cy;
      const n = cy.getElementById('order-service');
      const r = cy.container().getBoundingClientRect();
      const p = n.renderedPosition();
      return { x: r.left + p.x, y: r.top + p.y };
    });
    await page.mouse.click(pos.x, pos.y);
    const side = page.locator('[data-testid="side-panel"]');
    await side.waitFor({ state: 'visible' });
    const text = await side.innerText();
    check(text.includes('order-service'), `the side panel does not name order-service: ${text.slice(0, 200)}`);
    for (const w of ['Requests', 'Faults', 'p95', 'p99']) check(text.includes(w), `the side panel lacks "${w}"`);
    check(await side.locator('[data-testid="slowest-traces"]').count() === 1, 'the side panel has no link to the slowest traces');
    await page.waitForTimeout(1000);
    await shot('map.png');
    await page.keyboard.press('Escape');
    await side.waitFor({ state: 'hidden' });
  });

  await step('the findings page lists the order-service N+1 first', async () => {
    await page.goto(`${base}/findings`);
    const first = page.locator('[data-testid="finding-row"]').first();
    await eventually('a finding row', async () => (await page.locator('[data-testid="finding-row"]').count()) > 0 || (await page.reload(), false), 60_000, 3_000);
    const kind = await first.getAttribute('data-kind');
    const service = await first.getAttribute('data-service');
    check(kind === 'n_plus_one', `the first findings group is ${kind}, expected n_plus_one`);
    check(service === 'order-service', `the first findings group is in ${service}, expected order-service`);
    const text = await first.innerText();
    check(/select/i.test(text), `the N+1 row shows no SQL statement: ${text}`);
    check(await first.locator('[data-testid="example-trace"]').count() >= 1, 'the N+1 row has no example trace link');
    await shot('findings.png');
  });

  let traceId;
  let correlationId;
  await step('a correlation-id search opens the right trace', async () => {
    const found = await api('/api/v1/traces?service=order-service&finding=n_plus_one&lookback=1h&limit=20');
    const t = found.traces.find((x) => x.correlation_ids.length > 0);
    check(t, 'the API has no order-service trace with an N+1 finding and a correlation id');
    traceId = t.trace_id;
    correlationId = t.correlation_ids[0];
    await page.goto(`${base}/traces`);
    await page.waitForSelector('[data-testid="page-traces"]');
    await page.fill('[data-testid="traces-correlation"]', correlationId);
    await page.click('[data-testid="traces-submit"]');
    await page.waitForURL((u) => u.searchParams.get('correlation_id') === correlationId);
    const row = page.locator(`[data-testid="trace-row"][data-trace-id="${traceId}"]`);
    await row.waitFor();
    const rows = await page.locator('[data-testid="trace-row"]').count();
    check(rows >= 1, 'no trace row for the correlation id');
    check(await page.locator('[data-testid="traces-scatter"] canvas').count() >= 1, 'the duration scatter is not drawn');
    await shot('traces.png');
    await row.click();
    await page.waitForURL(`${base}/trace/${traceId}`);
    await page.waitForSelector('[data-testid="span-row"]');
    const shown = (await page.locator('[data-testid="trace-id"]').innerText()).trim();
    check(shown === traceId, `the trace page shows ${shown}, expected ${traceId}`);
    const corr = await page.locator('.trace-meta').innerText();
    check(corr.includes(correlationId), `the trace page does not show correlation id ${correlationId}`);
  });

  await step('the waterfall folds the N+1 calls into one group row that opens and closes', async () => {
    const detail = await api(`/api/v1/traces/${traceId}`);
    const n1 = detail.findings.filter((f) => f.kind === 'n_plus_one');
    check(n1.length >= 1, `trace ${traceId} has no n_plus_one finding in the API`);
    for (const f of n1) {
      const group = page.locator(`[data-testid="n1-group"][data-finding-id="${f.id}"]`);
      check(await group.count() === 1, `the N+1 of ${f.span_ids.length} calls has ${await group.count()} group rows, expected 1`);
      check(await group.getAttribute('data-count') === String(f.count), `the N+1 group row has data-count="${await group.getAttribute('data-count')}", the finding counts ${f.count}`);
      check(await group.getAttribute('aria-expanded') === 'false', 'the N+1 group row is not folded at first');
      const text = await group.innerText();
      check(text.includes(`×${f.count}`) && /total/.test(text), `the N+1 group row does not say "×${f.count}" and its total time: ${text}`);
      check(await group.locator('.wf-call').count() === f.span_ids.length, `the N+1 group row does not draw a tick for each of its ${f.span_ids.length} calls`);
      for (const id of f.span_ids) check(await page.locator(`[data-testid="span-row"][data-span-id="${id}"]`).count() === 0, `span ${id} has a row while its N+1 group is folded`);
    }
    await shot('trace-folded.png');
    // Open with a click, fold and open again from the keyboard.
    const first = page.locator(`[data-testid="n1-group"][data-finding-id="${n1[0].id}"]`);
    const label = first.locator('[data-testid="n1-group-label"]');
    const firstSpan = page.locator(`[data-testid="span-row"][data-span-id="${n1[0].span_ids[0]}"]`);
    await label.click();
    await firstSpan.waitFor();
    check(await first.getAttribute('aria-expanded') === 'true', 'the N+1 group row does not say it is open after a click');
    await page.keyboard.press('Enter');
    await firstSpan.waitFor({ state: 'detached' });
    check(await first.getAttribute('aria-expanded') === 'false', 'Enter does not fold the N+1 group again');
    await page.keyboard.press('Enter');
    await firstSpan.waitFor();
    for (const f of n1.slice(1)) await page.locator(`[data-testid="n1-group"][data-finding-id="${f.id}"] [data-testid="n1-group-label"]`).click();
  });

  await step('the opened waterfall marks the N+1 spans and the critical path', async () => {
    const detail = await api(`/api/v1/traces/${traceId}`);
    const n1 = detail.findings.filter((f) => f.kind === 'n_plus_one');
    for (const f of n1) {
      for (const id of f.span_ids) {
        const row = page.locator(`[data-testid="span-row"][data-span-id="${id}"]`);
        check(await row.count() === 1, `span ${id} of the N+1 has no waterfall row`);
        const kinds = (await row.getAttribute('data-findings')) ?? '';
        check(kinds.split(' ').includes('n_plus_one'), `span ${id} of the N+1 is not marked (data-findings="${kinds}")`);
        check(await row.locator('[data-testid="finding-badge"][data-kind="n_plus_one"]').count() === 1, `span ${id} of the N+1 has no N+1 badge`);
      }
      const lead = await page.locator('[data-testid="finding-badge"][data-kind="n_plus_one"]', { hasText: `×${f.count}` }).count();
      check(lead >= 1, `no "N+1 ×${f.count}" badge for the group of ${f.span_ids.length} calls`);
    }
    if (detail.critical_path?.length) {
      const crit = await page.locator('[data-testid="span-row"][data-critical="true"]').count();
      check(crit === detail.critical_path.length, `the waterfall marks ${crit} spans on the critical path, the API names ${detail.critical_path.length}`);
    }
    const id = n1[0].span_ids[0];
    await page.locator(`[data-testid="span-row"][data-span-id="${id}"] [data-testid="span-label"]`).click();
    const panel = page.locator('[data-testid="side-panel"]');
    await panel.waitFor({ state: 'visible' });
    check(await panel.locator(`[data-testid="span-detail"][data-span-id="${id}"]`).count() === 1, 'the span panel does not show the clicked span');
    const ptext = await panel.innerText();
    check(/attributes/i.test(ptext) && ptext.includes('N+1'), 'the span panel lacks its attributes or its finding');
    await shot('trace.png');
    await page.keyboard.press('Escape');
    await panel.waitFor({ state: 'hidden' });
  });
});
