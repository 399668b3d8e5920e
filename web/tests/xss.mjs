// The UI shows hostile-looking names as text: opens a trace whose span names
// and attributes hold `<img src=x onerror=window.__xss=1>` and
// `</script><script>window.__xss=2</script>`, plus the trace list and
// findings pages, and checks the text is literal and no script ran.
// Usage: node web/tests/xss.mjs <base-url> <trace-id> [<screenshot-dir>]
import { run, check } from './browser.mjs';

const IMG = '<img src=x onerror=window.__xss=1>';
const SCRIPT = '</script><script>window.__xss=2</script>';
const [base, traceId, shots] = process.argv.slice(2);
if (!traceId) {
  console.error('usage: node web/tests/xss.mjs <base-url> <trace-id> [<screenshot-dir>]');
  process.exit(2);
}

/** No markup from data became elements, and no planted script ran. */
async function clean(page, where) {
  await page.waitForTimeout(500);
  const state = await page.evaluate(() => ({
    xss: window.__xss,
    imgs: [...document.querySelectorAll('img')].map((i) => i.getAttribute('src')),
    scripts: [...document.querySelectorAll('script')].filter((s) => (s.textContent ?? '').includes('__xss')).length,
    handlers: [...document.querySelectorAll('[onerror],[onload],[onclick]')].length,
  }));
  check(state.xss === undefined, `${where}: window.__xss is ${JSON.stringify(state.xss)}: a planted script ran`);
  check(!state.imgs.includes('x'), `${where}: an <img src=x> from the data became an element`);
  check(state.scripts === 0, `${where}: a <script> from the data became an element`);
  check(state.handlers === 0, `${where}: an inline event handler attribute reached the DOM`);
}

await run('xss.mjs', base, shots, async ({ page, base, shot, step, api }) => {
  const detail = await api(`/api/v1/traces/${encodeURIComponent(traceId)}`);
  const hostile = (s) => typeof s === 'string' && (s.includes(IMG) || s.includes(SCRIPT));
  const hostileSpans = detail.spans.filter((s) => hostile(s.name) || Object.entries(s.attributes ?? {}).some(([k, v]) => hostile(k) || hostile(v)));
  check(hostileSpans.length > 0, `trace ${traceId} has no span whose name or attributes hold the test strings`);

  await step('the trace page shows the names and attributes as text', async () => {
    await page.goto(`${base}/trace/${encodeURIComponent(traceId)}`);
    await page.waitForSelector('[data-testid="span-row"]');
    // Repeated calls fold into N+1 group rows: their label shows the name too.
    let body = await page.locator('body').innerText();
    for (const s of hostileSpans.filter((x) => hostile(x.name))) {
      check(body.includes(s.name), `the span name ${JSON.stringify(s.name)} is not shown literally on the trace page`);
    }
    await page.getByRole('button', { name: 'Expand all' }).click();
    body = await page.locator('body').innerText();
    for (const s of hostileSpans.filter((x) => hostile(x.name))) {
      check(body.includes(s.name), `the span name ${JSON.stringify(s.name)} is not shown literally on the trace page`);
    }
    for (const s of hostileSpans) {
      await page.locator(`[data-testid="span-row"][data-span-id="${s.span_id}"] [data-testid="span-label"]`).click();
      const panel = page.locator('[data-testid="side-panel"]');
      await panel.waitFor({ state: 'visible' });
      const text = await panel.innerText();
      for (const [k, v] of Object.entries(s.attributes ?? {})) {
        if (hostile(k)) check(text.includes(k), `the attribute key ${JSON.stringify(k)} is not shown literally`);
        if (hostile(v)) check(text.includes(v), `the attribute value ${JSON.stringify(v)} is not shown literally`);
      }
      for (const ev of s.events ?? []) if (hostile(ev.name)) check(text.includes(ev.name), `the event name ${JSON.stringify(ev.name)} is not shown literally`);
    }
    await clean(page, 'trace page');
    await shot('xss-trace.png');
  });

  await step('the trace list shows the root operation as text', async () => {
    const s = detail.summary;
    // By its correlation id: on a busy server the service alone lists newer traces first.
    const filter = s.correlation_ids?.[0]
      ? `correlation_id=${encodeURIComponent(s.correlation_ids[0])}`
      : `service=${encodeURIComponent(s.root_service)}`;
    await page.goto(`${base}/traces?${filter}&lookback=7d&limit=100`);
    const row = page.locator(`[data-testid="trace-row"][data-trace-id="${detail.summary.trace_id}"]`);
    await row.waitFor();
    const text = await row.innerText();
    check(text.includes(s.root_operation), `the trace row does not show ${JSON.stringify(s.root_operation)} literally: ${text}`);
    await clean(page, 'trace list');
    await shot('xss-traces.png');
  });

  await step('the findings page shows the statements and messages as text', async () => {
    const services = [...new Set((detail.findings ?? []).map((f) => f.service))];
    await page.goto(`${base}/findings?lookback=7d${services[0] ? `&service=${encodeURIComponent(services[0])}` : ''}`);
    await page.waitForSelector('[data-testid="findings-table"], .note');
    await page.waitForTimeout(1500); // the detectors' messages load after the rows
    await clean(page, 'findings page');
    await shot('xss-findings.png');
  });

  await step('the map draws service names as text', async () => {
    await page.goto(`${base}/map?lookback=7d`);
    await page.waitForSelector('[data-testid="map-canvas"]');
    await page.waitForTimeout(1500);
    await clean(page, 'map page');
  });
});
